"""The trainer on the CPU with tiny models: SFT, QLoRA, DPO, resume, checkpoint gating, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_ftgate.train.config import TrainConfigError, load_recipe
from pytest_ftgate.train.data import DataError
from tests.conftest import write

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def sft_data(tmp_path_factory) -> Path:
    rows = [
        {"messages": [{"role": "system", "content": "Route the ticket as JSON."},
                      {"role": "user", "content": f"My order {i} is late."},
                      {"role": "assistant", "content": json.dumps({"label": "shipping", "priority": "low", "reason": "late"})}]}
        for i in range(20)
    ]
    path = tmp_path_factory.mktemp("data") / "sft.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session")
def dpo_data(tmp_path_factory) -> Path:
    rows = [{"prompt": f"Is stock {i} a good buy?", "chosen": f"Stock {i} may rise. This is not financial advice.",
             "rejected": f"Stock {i} will rise."} for i in range(16)]
    path = tmp_path_factory.mktemp("data") / "dpo.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def recipe_file(tmp_path: Path, base: Path, data: Path, extra: str = "", method: str = "sft") -> Path:
    return write(tmp_path / "recipe.yaml", f"""\
method: {method}
model: {{base: {base}}}
data: {{train: {data}, eval_fraction: 0.2, max_length: 256}}
output_dir: {tmp_path / "out"}
lora: {{r: 4, alpha: 8, target_modules: [q_proj, v_proj]}}
training: {{epochs: 2, per_device_batch_size: 4, effective_batch_size: 4, learning_rate: 5.0e-3, logging_steps: 1}}
{extra}""")


def lora_b_norm(adapter: Path) -> float:
    from safetensors.torch import load_file

    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    return sum(float(t.abs().sum()) for k, t in tensors.items() if "lora_B" in k)


def test_sft_lora_trains_writes_a_manifest_and_loads_in_the_gate(tmp_path, tiny_base, sft_data):
    from pytest_ftgate import RunConfig, load_suite, run_gate
    from pytest_ftgate.train.trainer import train

    result = train(load_recipe(recipe_file(tmp_path, tiny_base, sft_data)))
    out = result.output_dir
    assert (out / "adapter_model.safetensors").exists() and (out / "adapter_config.json").exists()
    assert lora_b_norm(out) > 0  # LoRA B starts at zero: training changed the adapter
    m = json.loads((out / "ftgate.json").read_text())
    assert m["method"] == "sft" and m["seed"] == 42 and m["versions"]["trl"]
    assert m["data"]["train"]["rows"] == 20 and len(m["data"]["train"]["sha256"]) == 64
    assert m["final_eval_loss"] is not None and m["final_train_loss"] is not None
    assert m["checks"]["trained_tokens"]["min_trained_tokens"] > 0
    assert m["base_model"]["fingerprint"] and m["chat_template_sha256"] and m["peak_memory_bytes"] > 0
    assert len(m["eval_losses"]) == 2  # evaluated every epoch
    write(tmp_path / "s.yaml", "kind: format\ncases: [{id: a, input: 'My order 99 is late.'}]\n"
          "generate: {max_new_tokens: 4}\nscorers: [{regex: '.'}]\ngate: {min_pass_rate: 0.0}\n")
    run = run_gate([load_suite(tmp_path / "s.yaml")], RunConfig(candidate=str(out), cache_dir=None, progress=False))
    assert run.candidate.details["manifest"]["method"] == "sft"


def test_qlora_4bit_on_the_cpu(tmp_path, tiny_base, sft_data):
    pytest.importorskip("bitsandbytes")
    from pytest_ftgate.train.trainer import train

    recipe = load_recipe(recipe_file(tmp_path, tiny_base, sft_data), ["model.load_in_4bit=true", "training.epochs=1"])
    result = train(recipe)
    assert lora_b_norm(result.output_dir) > 0
    assert result.manifest["config"]["model"]["load_in_4bit"] is True


def test_dpo_uses_the_base_as_reference_and_changes_the_adapter(tmp_path, tiny_base, dpo_data):
    from pytest_ftgate.train.trainer import train

    result = train(load_recipe(recipe_file(tmp_path, tiny_base, dpo_data, "dpo: {beta: 0.1}\n", method="dpo")))
    assert lora_b_norm(result.output_dir) > 0
    assert result.manifest["method"] == "dpo" and result.manifest["config"]["dpo"]["beta"] == 0.1


def test_training_resumes_from_the_last_checkpoint(tmp_path, tiny_base, sft_data):
    from pytest_ftgate.train.trainer import train

    path = recipe_file(tmp_path, tiny_base, sft_data)
    first = train(load_recipe(path, ["training.epochs=1"]))
    assert first.manifest["checks"]["resumed_from"] is None
    second = train(load_recipe(path, ["training.epochs=2"]))
    assert second.manifest["checks"]["resumed_from"].endswith("checkpoint-4")
    assert {e["epoch"] for e in second.manifest["eval_losses"]} == {1.0, 2.0}


def test_cli_gate_names_the_best_passing_checkpoint(tmp_path, tiny_base, sft_data):
    write(tmp_path / "suites/s.yaml", "kind: format\ncases: [{id: a, input: 'My order 99 is late.'}]\n"
          "generate: {max_new_tokens: 3}\nscorers: [{regex: '.'}]\ngate: {min_pass_rate: 0.0}\n")
    path = recipe_file(tmp_path, tiny_base, sft_data)
    proc = subprocess.run([sys.executable, "-m", "pytest_ftgate.cli", "train", "sft", str(path), "--gate", str(tmp_path / "suites")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "best checkpoint that passes every gate:" in proc.stdout
    m = json.loads((tmp_path / "out/ftgate.json").read_text())
    assert m["gate_selection"]["best_passing"] and len(m["gate_selection"]["checkpoints"]) == 2


def test_two_process_run_on_the_cpu(tmp_path, tiny_base, sft_data):
    """DDP over gloo, launched by accelerate (multi-process on the CPU through ACCELERATE_USE_CPU)."""
    path = recipe_file(tmp_path, tiny_base, sft_data)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "pytest_ftgate.cli", "train", "sft", str(path)]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("adapter:") == 1  # only rank 0 reports and writes the manifest
    m = json.loads((tmp_path / "out/ftgate.json").read_text())
    # 16 training rows, per-device batch 4 on 2 processes: 2 steps per epoch instead of 4
    assert max(e["step"] for e in m["eval_losses"]) == 4


@pytest.mark.parametrize(
    ("extra", "overrides", "needle"),
    [
        ("colour: red\n", [], "unknown key `colour`"),
        ("", ["lora.r=0"], "lora.r must be a positive integer, got 0"),
        ("", ["lora.r=four"], "`lora.r` must be an integer, got 'four'"),
        ("", ["training.learning_rate=2"], "learning_rate must be in (0, 1)"),
        ("", ["training.effective_batch_size=6"], "must be a multiple of per_device_batch_size"),
        ("", ["training.packing=true"], "packed rows attend to each other"),
        ("", ["training.report_to=[comet]"], "is not one of tensorboard, wandb, mlflow"),
        ("", ["training.optim=paged_adamw_8bit"], "needs a GPU"),
        ("", ["data.eval_fraction=0.7"], "eval_fraction must be in [0, 0.5)"),
    ],
)
def test_bad_recipes_name_the_key_and_rule(tmp_path, tiny_base, sft_data, extra, overrides, needle):
    with pytest.raises(TrainConfigError) as err:
        load_recipe(recipe_file(tmp_path, tiny_base, sft_data, extra), overrides)
    assert needle in str(err.value)
    assert str(err.value).startswith(str(tmp_path / "recipe.yaml"))


def test_unknown_key_error_names_its_line(tmp_path, tiny_base, sft_data):
    with pytest.raises(TrainConfigError, match=r"recipe.yaml:7: unknown key `colour`"):
        load_recipe(recipe_file(tmp_path, tiny_base, sft_data, "colour: red\n"))


def test_bf16_on_a_cpu_without_it_is_refused(tmp_path, tiny_base, sft_data, monkeypatch):
    import pytest_ftgate.train.config as config

    monkeypatch.setattr(config, "bf16_supported", lambda device: False)
    with pytest.raises(TrainConfigError, match="training.bf16 is true but this CPU has no bf16 support"):
        load_recipe(recipe_file(tmp_path, tiny_base, sft_data), ["training.bf16=true"])


def test_4bit_without_bitsandbytes_is_refused(tmp_path, tiny_base, sft_data, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    with pytest.raises(TrainConfigError, match="load_in_4bit needs bitsandbytes"):
        load_recipe(recipe_file(tmp_path, tiny_base, sft_data), ["model.load_in_4bit=true"])


def test_method_mismatch(tmp_path, tiny_base, sft_data):
    with pytest.raises(TrainConfigError, match="this recipe is for `sft`.*ftgate train sft"):
        load_recipe(recipe_file(tmp_path, tiny_base, sft_data), method="dpo")


@pytest.mark.parametrize(
    ("rows", "needle", "line"),
    [
        (['{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}', "{broken"], "not valid JSON", 2),
        (['{"messages": [{"role": "user", "content": "hi"}]}'], "the last message must be the assistant's", 1),
        (['{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}]}'], "message is empty", 1),
        (['{"prompt": "p", "chosen": "a", "rejected": "b"}'], "SFT needs messages or instruction/output rows", None),
        (['{"text": "raw"}'], "unknown row format", 1),
        (['{"instruction": "say hi", "output": "hi"}', '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}'],
         "one format per file", 2),
    ],
)
def test_bad_rows_name_their_line(tmp_path, tiny_base, rows, needle, line):
    from pytest_ftgate.train.trainer import train

    data = write(tmp_path / "bad.jsonl", "\n".join(rows) + "\n")
    with pytest.raises(DataError) as err:
        train(load_recipe(recipe_file(tmp_path, tiny_base, data)))
    assert needle in str(err.value)
    if line:
        assert f"bad.jsonl:{line}:" in str(err.value)


def test_row_longer_than_max_length_is_an_error_not_a_silent_truncation(tmp_path, tiny_base):
    from pytest_ftgate.train.trainer import train

    long = json.dumps({"messages": [{"role": "user", "content": "x " * 400}, {"role": "assistant", "content": "ok"}]})
    data = write(tmp_path / "long.jsonl", "\n".join([long] * 5) + "\n")
    with pytest.raises(DataError, match=r"long.jsonl:\d+: \d+ tokens, over data.max_length=256"):
        train(load_recipe(recipe_file(tmp_path, tiny_base, data, ), ["data.eval_fraction=0"]))


def test_a_template_that_drops_eos_from_the_answer_is_refused(tmp_path, tiny_base, sft_data):
    from pytest_ftgate.train.trainer import train

    template = write(tmp_path / "t.jinja", "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}\n{% endfor %}"
                     "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    with pytest.raises(DataError, match="end-of-turn token '<|im_end|>' is not in the trained answer span"):
        train(load_recipe(recipe_file(tmp_path, tiny_base, sft_data), [f"model.chat_template={template}"]))


def test_a_tokenizer_without_a_chat_template_is_refused(tmp_path, tiny_base, sft_data):
    import shutil

    from pytest_ftgate.errors import ConfigError
    from pytest_ftgate.train.trainer import train

    base = Path(shutil.copytree(tiny_base, tmp_path / "base"))
    (base / "chat_template.jinja").unlink()
    cfg = json.loads((base / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (base / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="has no chat template.*model.chat_template"):
        train(load_recipe(recipe_file(tmp_path, base, sft_data)))


def test_preference_rows_must_differ(tmp_path, tiny_base):
    from pytest_ftgate.train.trainer import train

    data = write(tmp_path / "p.jsonl", '{"prompt": "q", "chosen": "same", "rejected": "same"}\n')
    with pytest.raises(DataError, match=r"p.jsonl:1: chosen and rejected are identical"):
        train(load_recipe(recipe_file(tmp_path, tiny_base, data, method="dpo")))


def test_gpu_benchmark_script_runs_its_cpu_smoke_mode(tmp_path):
    proc = subprocess.run([sys.executable, "training/bench_gpu.py", "--tiny", "--steps", "2", "--warmup", "1",
                           "--workdir", str(tmp_path), "--json", str(tmp_path / "rows.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert {(r["quant"], r["recipe"]) for r in rows} == {("LoRA", "trl-default"), ("LoRA", "ours"), ("QLoRA", "trl-default"), ("QLoRA", "ours")}
    assert all(r["tokens_per_s"] > 0 for r in rows)
