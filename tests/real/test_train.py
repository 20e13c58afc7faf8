"""The trainer on the CPU with tiny models: SFT, QLoRA, DPO, resume, reruns, checkpoint gating, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_ftgate.train.config import TrainConfigError, load_recipe
from pytest_ftgate.files.training import DataError
from tests.conftest import write

ROOT = Path(__file__).resolve().parents[2]


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
def tiny_base_4bit(tmp_path_factory) -> Path:
    """A tiny base whose Linear sizes every bitsandbytes 4-bit kernel path accepts."""
    from fixtures.tiny_models import QUANTIZABLE_SIZES, build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-base-4bit", **QUANTIZABLE_SIZES)


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


def test_sft_lora_trains_writes_a_manifest_and_loads_in_the_gate(tmp_path, tiny_base, sft_data, monkeypatch):
    from pytest_ftgate import RunConfig, load_suite, run_gate
    from pytest_ftgate.stores.manifest import base_fingerprint, read_manifest
    from pytest_ftgate.train.trainer import train

    # the recipe names the base relative to where ftgate runs, as the demo's recipes do
    monkeypatch.chdir(tiny_base.parent.parent)
    relative = f"{tiny_base.parent.name}/{tiny_base.name}"
    result = train(load_recipe(recipe_file(tmp_path, Path(relative), sft_data)))
    out = result.output_dir
    assert (out / "adapter_model.safetensors").exists() and (out / "adapter_config.json").exists()
    assert lora_b_norm(out) > 0  # LoRA B starts at zero: training changed the adapter
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_base.resolve())
    m = json.loads((out / "ftgate.json").read_text())  # the keys the gate and older readers know
    assert m["schema_version"] == 1 and m["method"] == "sft" and m["seed"] == 42 and m["versions"]["trl"]
    assert m["data"]["train"]["rows"] == 20 and len(m["data"]["train"]["sha256"]) == 64
    assert m["final_eval_loss"] is not None and m["final_train_loss"] is not None
    assert m["checks"]["trained_tokens"]["min_trained_tokens"] > 0
    assert m["base_model"] == {"path": str(tiny_base.resolve()), "fingerprint": base_fingerprint(tiny_base), "name": relative}
    assert m["chat_template_sha256"] and m["peak_memory_bytes"] > 0 and m["wall_s"] > 0
    assert m["device"]["kind"] == "cpu" and m["device"]["machine"] and "git_commit" in m  # None here: cwd is no repo
    assert len(m["eval_losses"]) == 2  # evaluated every epoch
    assert read_manifest(out) == result.manifest  # written through the typed Manifest
    # gated from another directory: the adapter finds its base by the absolute path it recorded
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "s.yaml", "kind: format\ncases: [{id: a, input: 'My order 99 is late.'}]\n"
          "generate: {max_new_tokens: 4}\nscorers: [{regex: '.'}]\ngate: {min_pass_rate: 0.0}\n")
    run = run_gate([load_suite(tmp_path / "s.yaml")], RunConfig(candidate=str(out), cache_dir=None, progress=False))
    assert run.candidate.details["manifest"]["method"] == "sft"


def test_a_hub_id_base_stays_an_id_in_the_adapter_config(tmp_path, tiny_base, sft_data, monkeypatch):
    import shutil

    from pytest_ftgate.stores.manifest import base_fingerprint
    from pytest_ftgate.train.trainer import train

    # a Hugging Face cache holding the tiny base as `acme/tiny`; nothing is downloaded (offline)
    cache = tmp_path / "hub"
    snapshot = cache / "models--acme--tiny" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_base, snapshot)
    (cache / "models--acme--tiny" / "refs").mkdir()
    (cache / "models--acme--tiny" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    result = train(load_recipe(recipe_file(tmp_path, Path("acme/tiny"), sft_data), ["training.max_steps=1"]))
    config = json.loads((result.output_dir / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "acme/tiny"
    checkpoint = json.loads((result.output_dir / "checkpoint-1" / "adapter_config.json").read_text())
    assert checkpoint["base_model_name_or_path"] == "acme/tiny"
    base = result.manifest.base_model
    assert base.name == "acme/tiny" and Path(base.path) == snapshot and base.fingerprint == base_fingerprint(tiny_base)


def test_a_missing_base_names_the_recipe_and_how_to_fix(tmp_path, sft_data, monkeypatch):
    from pytest_ftgate.train.trainer import train

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TrainConfigError, match=r"recipe.yaml: model.base 'acme/absent' is not in the Hugging Face cache.*"
                                               r"set model.base .*to a local model directory"):
        train(load_recipe(recipe_file(tmp_path, Path("acme/absent"), sft_data)))


def test_qlora_4bit_on_the_cpu(tmp_path, tiny_base_4bit, sft_data):
    bnb = pytest.importorskip("bitsandbytes")
    from pytest_ftgate.train.trainer import _load_model, train

    recipe = load_recipe(recipe_file(tmp_path, tiny_base_4bit, sft_data), ["model.load_in_4bit=true", "training.epochs=1"])
    # every quantized Linear must fit the packed AVX-512 BF16 CPU path (blocks of 64 inputs, 32 outputs)
    quantized = [m for m in _load_model(recipe, "cpu", tiny_base_4bit).modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quantized and all(m.in_features % 64 == 0 and m.out_features % 32 == 0 for m in quantized)
    result = train(recipe)
    assert lora_b_norm(result.output_dir) > 0
    assert result.manifest.config["model"]["load_in_4bit"] is True


@pytest.mark.parametrize(
    ("device", "local_rank", "visible", "expected"),
    [
        ("cuda", 0, 8, {"": 0}),
        ("cuda", 3, 8, {"": 3}),  # rank 3 of `accelerate launch` on one 8-GPU node: its own GPU, not GPU 0
        ("cuda", 3, 1, {"": 0}),  # a launcher that shows each process only its own GPU
        ("cuda", 9, 8, {"": 1}),  # wrapped over the visible GPUs, as accelerate does
        ("cpu", 3, 0, {"": "cpu"}),
    ],
)
def test_a_4bit_base_goes_on_the_process_s_own_gpu(device, local_rank, visible, expected):
    from pytest_ftgate.train.trainer import quantized_device_map

    assert quantized_device_map(device, local_rank, visible) == expected


def test_dpo_uses_the_base_as_reference_and_changes_the_adapter(tmp_path, tiny_base, dpo_data):
    from pytest_ftgate.train.trainer import train

    result = train(load_recipe(recipe_file(tmp_path, tiny_base, dpo_data, "dpo: {beta: 0.1}\n", method="dpo")))
    assert lora_b_norm(result.output_dir) > 0
    assert result.manifest.method == "dpo" and result.manifest.config["dpo"]["beta"] == 0.1


def test_dpo_with_an_sft_term_passes_both_losses_to_trl(tmp_path, tiny_base, dpo_data, monkeypatch):
    import trl

    from pytest_ftgate.train.trainer import train

    seen = {}
    original = trl.DPOTrainer.__init__

    def spy(self, *args, **kwargs):
        seen["loss_type"], seen["loss_weights"] = kwargs["args"].loss_type, kwargs["args"].loss_weights
        original(self, *args, **kwargs)

    monkeypatch.setattr(trl.DPOTrainer, "__init__", spy)
    extra = "dpo: {beta: 0.1, loss_type: [sigmoid, sft], loss_weights: [1.0, 0.5]}\n"
    result = train(load_recipe(recipe_file(tmp_path, tiny_base, dpo_data, extra, method="dpo")))
    assert seen == {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 0.5]}
    assert lora_b_norm(result.output_dir) > 0


def test_rerun_of_a_finished_run_trains_nothing_and_resume_carries_the_earlier_time(tmp_path, tiny_base, sft_data, capsys):
    from pytest_ftgate.cli import main
    from pytest_ftgate.train.lineage import read_cost
    from pytest_ftgate.train.trainer import train

    path = recipe_file(tmp_path, tiny_base, sft_data)
    out = tmp_path / "out"
    first = train(load_recipe(path, ["training.epochs=1"]))
    assert first.steps_trained == 4 and first.manifest.checks["resumed_from"] is None
    cost_at_4 = read_cost(out / "checkpoint-4")
    assert cost_at_4 is not None and 0 < cost_at_4.wall_s <= first.manifest.wall_s

    # the same recipe again: its last checkpoint is the end of the run, so nothing is trained or rewritten
    manifest_bytes, adapter_bytes = (out / "ftgate.json").read_bytes(), (out / "adapter_model.safetensors").read_bytes()
    assert main(["train", "sft", str(path), "--set", "training.epochs=1"]) == 0
    said = capsys.readouterr().out
    assert "nothing trained:" in said and "checkpoint-4 is already at the end of this run" in said and "--no-resume" in said
    assert (out / "ftgate.json").read_bytes() == manifest_bytes
    assert (out / "adapter_model.safetensors").read_bytes() == adapter_bytes

    # a longer run resumes at checkpoint-4: its cost is the first run's time to step 4 plus its own
    second = train(load_recipe(path, ["training.epochs=2"]))
    assert second.steps_trained == 4 and second.manifest.checks["resumed_from"].endswith("checkpoint-4")
    assert second.manifest.checks["wall_s_before_resume"] == cost_at_4.wall_s
    assert second.manifest.wall_s > cost_at_4.wall_s + second.manifest.metrics["train_runtime"]
    assert second.manifest.final_train_loss > 0
    assert {e["epoch"] for e in second.manifest.eval_losses} == {1.0, 2.0}


def test_max_steps_overrides_the_epochs(tmp_path, tiny_base, sft_data):
    from pytest_ftgate.train.trainer import train

    result = train(load_recipe(recipe_file(tmp_path, tiny_base, sft_data), ["training.max_steps=1"]))  # epochs: 2
    assert result.steps_trained == 1 and (result.output_dir / "checkpoint-1").is_dir()
    assert not (result.output_dir / "checkpoint-2").exists()


def _hub_kernel_failure() -> BaseException:
    """What `kernels` really raises for a Hub kernel it cannot get offline (or ModuleNotFoundError without it)."""
    try:
        from kernels import get_kernel

        get_kernel("kernels-community/quantization-bitsandbytes", version=1)
    except Exception as exc:  # noqa: BLE001 - whatever it raises is the point
        return exc
    raise AssertionError("the Hub kernel loaded offline: nothing to drop")  # pragma: no cover


def test_the_hub_kernel_notice_of_bitsandbytes_is_dropped_and_nothing_else(caplog, monkeypatch):
    """Dropped by where the failure came from, never by wording: the messages here are our own."""
    import logging

    from pytest_ftgate.machine.quiet import quiet_kernels_notice

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    quiet_kernels_notice()
    quiet_kernels_notice()  # idempotent
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    assert len(logger.filters) == 1
    with caplog.at_level(logging.WARNING):
        logger.warning("optional kernel A: %s", ModuleNotFoundError("No module named 'kernels'", name="kernels"))
        logger.warning("optional kernel B: %s", _hub_kernel_failure())
        logger.warning("optional kernel C: %s", RuntimeError("hub unreachable"))  # not from kernels: still said
        logger.warning("another bitsandbytes warning")
    said = [r.getMessage() for r in caplog.records]
    assert not any(m.startswith(("optional kernel A", "optional kernel B")) for m in said), said
    assert any("hub unreachable" in m for m in said) and "another bitsandbytes warning" in said


def test_the_kernels_packages_own_offline_notice_is_silenced_only_during_the_attempt(caplog, monkeypatch):
    import logging

    from pytest_ftgate.machine.quiet import hub_kernel_attempt

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with caplog.at_level(logging.WARNING):
        with hub_kernel_attempt():
            _hub_kernel_failure()
        inside = [r for r in caplog.records if r.name.startswith("kernels")]
        _hub_kernel_failure()
    assert inside == []
    assert any(r.name.startswith("kernels") for r in caplog.records)  # outside it, `kernels` speaks as before


def test_cli_gate_names_the_best_passing_checkpoint(tmp_path, tiny_base, sft_data):
    write(tmp_path / "suites/s.yaml", "kind: format\ncases: [{id: a, input: 'My order 99 is late.'}]\n"
          "generate: {max_new_tokens: 3}\nscorers: [{regex: '.'}]\ngate: {min_pass_rate: 0.0}\n")
    path = recipe_file(tmp_path, tiny_base, sft_data)
    proc = subprocess.run([sys.executable, "-m", "pytest_ftgate.cli", "train", "sft", str(path), "--gate", str(tmp_path / "suites")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "best checkpoint that passes every gate:" in proc.stdout
    assert "bitsandbytes" not in proc.stderr  # no notice of an optional Hub kernel, however worded
    m = json.loads((tmp_path / "out/ftgate.json").read_text())
    assert m["gate_selection"]["best_passing"] and len(m["gate_selection"]["checkpoints"]) == 2
    assert m["final_train_loss"] is not None and m["base_model"]["fingerprint"]  # the rest of the record kept


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
        ("", ["training.max_steps=0"], "training.max_steps must be a positive number of optimizer steps"),
        ("", ["training.max_steps=1.5"], "`training.max_steps` must be an integer"),
        ("", ["training.epoch=1"], "unknown key `training.epoch`"),
        ("", ["lora={r: -1}"], "lora.r must be a positive integer, got -1"),  # a whole section from --set
        ("", ["dpo.loss_type=[sigmoid, nonsense]"], "dpo.loss_type: 'nonsense' is not a DPO loss"),
        ("", ["dpo.loss_weights=[1.0]", "dpo.loss_type=[sigmoid, sft]"], "has 1 weights for 2 loss types"),
        ("", ["dpo.loss_type=[]"], "dpo.loss_type is empty"),
    ],
)
def test_bad_recipes_name_the_key_and_rule(tmp_path, tiny_base, sft_data, extra, overrides, needle):
    with pytest.raises(TrainConfigError) as err:
        load_recipe(recipe_file(tmp_path, tiny_base, sft_data, extra), overrides)
    assert needle in str(err.value)
    # a value from the recipe file is blamed on its file and line, one from --set on the --set
    where = f"--set {overrides[0]}: " if overrides else f"{tmp_path / 'recipe.yaml'}:"
    assert str(err.value).startswith(where)


def test_a_bad_value_from_set_names_the_override_not_the_recipe_line(tmp_path, tiny_base, sft_data):
    with pytest.raises(TrainConfigError) as err:
        load_recipe(recipe_file(tmp_path, tiny_base, sft_data), ["training.epochs=abc"])
    assert str(err.value) == "--set training.epochs=abc: `training.epochs` must be a number, got 'abc'"


def test_a_broken_rule_in_the_file_names_the_line_of_its_key(tmp_path, tiny_base, sft_data):
    path = write(tmp_path / "recipe.yaml", f"""\
method: sft
model:
  base: {tiny_base}
data:
  train: {sft_data}
output_dir: {tmp_path / "out"}
training:
  learning_rate: 1.0e-4
  epochs: 0
""")
    with pytest.raises(TrainConfigError, match=r"recipe.yaml:9: training.epochs must be positive, got 0.0"):
        load_recipe(path)
    with pytest.raises(TrainConfigError, match=r"^--set training.epochs=-1: training.epochs must be positive"):
        load_recipe(path, ["training.epochs=-1"])


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
    # FLOPs count each linear layer and the LM head at its logical size, a 4-bit one once (it was counted twice),
    # the embedding lookup not at all; tokens are those of the timed batches, not the data set's mean length
    from training.bench_gpu import SIZES

    c = SIZES["tiny"]
    kv = c["hidden_size"] // c["num_attention_heads"] * c["num_key_value_heads"]
    per_layer = 2 * c["hidden_size"] ** 2 + 2 * c["hidden_size"] * kv + 3 * c["hidden_size"] * c["intermediate_size"]
    assert {r["matmul_params"] for r in rows} == {c["num_hidden_layers"] * per_layer + c["hidden_size"] * c["vocab_size"]}
    for r in rows:
        assert 2 * 4 * 32 <= r["tokens"] <= 2 * 4 * 512  # 2 timed steps of 4 rows of 32-512 tokens
        assert r["model_flops"] > (4 * r["matmul_params"] + 6 * r["lora_params"]) * r["tokens"]  # plus attention


@pytest.mark.parametrize("typed", ["3e-3", "3E-3", "3.0e-3", "0.003", "+3e-3"])
def test_a_learning_rate_written_as_people_write_it_is_a_number(tmp_path, tiny_base, sft_data, typed):
    """YAML 1.1 reads 3e-3 (no dot) as text; a float field takes any numeric literal, from --set or the file."""
    recipe = load_recipe(recipe_file(tmp_path, tiny_base, sft_data), [f"training.learning_rate={typed}"])
    assert recipe.training.learning_rate == pytest.approx(0.003)
    with pytest.raises(TrainConfigError, match="must be a number"):
        load_recipe(recipe_file(tmp_path, tiny_base, sft_data), ["training.learning_rate=fast"])
