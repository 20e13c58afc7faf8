"""Local models end to end with tiny random-weight Llamas: sharing, caching, resume, refusals."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_ftgate import AdapterMismatchError, RunConfig, SubjectError, UnsafeWeightsError, load_suite, run_gate
from pytest_ftgate.settings.config import SubjectOptions
from pytest_ftgate.stores.cache import Cache
from pytest_ftgate.subjects import Resolver
from pytest_ftgate.subjects.hf.subject import HFSubject
from pytest_ftgate.subjects.hf.engine import HFEngine
from tests.conftest import write

ROOT = Path(__file__).resolve().parents[2]


def suite_file(tmp_path: Path, n: int = 12, kind: str = "format", max_new_tokens: int = 6) -> Path:
    cases = "".join(json.dumps({"id": f"c{i}", "input": "word " * (1 + i % 7) + str(i)}) + "\n" for i in range(n))
    write(tmp_path / "cases.jsonl", cases)
    return write(
        tmp_path / "s.yaml",
        f"kind: {kind}\ncases: cases.jsonl\nprompt: {{system: 'Answer in JSON.'}}\n"
        f"generate: {{max_new_tokens: {max_new_tokens}}}\nscorers: [{{regex: '.'}}]\n",
    )


def count_batches(monkeypatch) -> list[int]:
    sizes: list[int] = []
    original = HFEngine._generate_batch

    def spy(self, prompts, indices, params, *rest):
        sizes.append(len(prompts))
        return original(self, prompts, indices, params, *rest)

    monkeypatch.setattr(HFEngine, "_generate_batch", spy)
    return sizes


def test_adapter_and_baseline_share_one_base_and_differ(tmp_path, tiny_adapter, monkeypatch):
    loads = []
    original = HFEngine.load
    monkeypatch.setattr(HFEngine, "load", lambda self: (loads.append(1) if self._model is None else None, original(self))[1])
    run = run_gate([load_suite(suite_file(tmp_path))], RunConfig(candidate=str(tiny_adapter), cache_dir=tmp_path / "cache", progress=False))
    assert len(loads) == 1  # the baseline is the same loaded base with the adapter disabled
    out = run.outcomes[0]
    base_texts = [r.output.text for r in out.baseline.results]
    cand_texts = [r.output.text for r in out.candidate.results]
    assert base_texts != cand_texts
    assert run.baseline.fingerprint != run.candidate.fingerprint
    assert all(r.output.tokens_out and r.output.tokens_in for r in out.candidate.results)
    assert run.candidate.details["adapter"] == str(tiny_adapter)


def test_batched_generation_matches_one_at_a_time(tmp_path, tiny_base):
    """Left padding and length-sorted batches must not change greedy outputs.

    Both sides come from the same model on the same machine; no text is hard-coded (a seeded
    random model's outputs may differ between CPUs). Padding changes only the float rounding:
    measured on the dev machine, batched and single logits differ by at most 1.5e-7 while the
    closest top-1/top-2 gap on these greedy paths is 1.9e-3, four orders of magnitude of margin.
    """
    suite = load_suite(suite_file(tmp_path, n=9))
    batched = run_gate([suite], RunConfig(baseline=str(tiny_base), cache_dir=None, progress=False,
                                          subject_options=SubjectOptions(batch_size=4)))
    single = run_gate([suite], RunConfig(baseline=str(tiny_base), cache_dir=None, progress=False,
                                         subject_options=SubjectOptions(batch_size=1)))
    assert [r.output.text for r in batched.outcomes[0].baseline.results] == [
        r.output.text for r in single.outcomes[0].baseline.results
    ]


def test_second_run_regenerates_nothing(tmp_path, tiny_adapter, monkeypatch):
    suite = load_suite(suite_file(tmp_path))
    config = RunConfig(candidate=str(tiny_adapter), cache_dir=tmp_path / "cache", progress=False)
    first = run_gate([suite], config)
    batches = count_batches(monkeypatch)
    second = run_gate([suite], config)
    assert batches == []
    assert all(r.output.cached for r in second.outcomes[0].candidate.results)
    assert [r.output.text for r in second.outcomes[0].candidate.results] == [
        r.output.text for r in first.outcomes[0].candidate.results
    ]
    # any change to decoding params misses the cache
    changed = load_suite(suite_file(tmp_path, max_new_tokens=5))
    run_gate([changed], config)
    assert sum(batches) == 2 * len(changed.cases)


def test_a_killed_run_resumes_from_what_it_had(tmp_path, tiny_base):
    suite = suite_file(tmp_path, n=12)
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from pytest_ftgate import RunConfig, SubjectOptions, load_suite, run_gate
        from pytest_ftgate.subjects.hf.engine import HFEngine
        calls = []
        original = HFEngine._generate_batch
        def dying(self, prompts, indices, params, *rest):
            calls.append(len(prompts))
            if len(calls) == 3 and os.environ.get("DIE"):
                os._exit(9)  # a hard kill: no cleanup, no exception handlers
            return original(self, prompts, indices, params, *rest)
        HFEngine._generate_batch = dying
        cfg = RunConfig(baseline={str(tiny_base)!r}, cache_dir={str(tmp_path / "cache")!r}, progress=False,
                        subject_options=SubjectOptions(batch_size=4))
        run_gate([load_suite({str(suite)!r})], cfg)
        print("GENERATED", sum(calls))
    """)
    killed = subprocess.run([sys.executable, "-c", script], env={"DIE": "1", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == 9, killed.stderr[-2000:]
    resumed = subprocess.run([sys.executable, "-c", script], env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "GENERATED 4" in resumed.stdout  # two batches of 4 survived the kill


def test_adapter_on_the_wrong_base_is_refused(tmp_path, tiny_adapter, other_base):
    suite = load_suite(suite_file(tmp_path, n=2))
    config = RunConfig(candidate=str(tiny_adapter), cache_dir=None, progress=False,
                       subject_options=SubjectOptions(base=other_base))
    with pytest.raises(AdapterMismatchError) as err:
        run_gate([suite], config)
    message = str(err.value)
    assert "does not fit base model" in message and "q_proj" in message and "--ftgate-base" in message


def test_manifest_base_hash_is_checked(tmp_path, tiny_base, tiny_adapter):
    import shutil

    adapter = Path(shutil.copytree(tiny_adapter, tmp_path / "adapter"))
    from pytest_ftgate.stores.manifest import BaseModel, Manifest, write_manifest

    write_manifest(adapter, Manifest(method="sft", base_model=BaseModel("/elsewhere", "0" * 64), created_at="2026-11-26"))
    with pytest.raises(AdapterMismatchError, match="another revision or another model"):
        run_gate([load_suite(suite_file(tmp_path, n=2))], RunConfig(candidate=str(adapter), cache_dir=None, progress=False))


def test_pickle_adapter_is_refused(tmp_path, tiny_base):
    from fixtures.tiny_models import build_tiny_adapter

    adapter = build_tiny_adapter(tiny_base, tmp_path / "pickled", safe=False)
    assert (adapter / "adapter_model.bin").exists()
    with pytest.raises(UnsafeWeightsError, match="pickle files can run code"):
        Resolver(SubjectOptions(), Cache(None)).pair(str(adapter), None)


def _adapter_naming(tiny_adapter: Path, tmp_path: Path, base: str) -> Path:
    import shutil

    adapter = Path(shutil.copytree(tiny_adapter, tmp_path / "adapter"))
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = base
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    return adapter


def test_a_hub_id_base_missing_from_the_cache_offline_is_a_clear_error(tmp_path, tiny_adapter, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    adapter = _adapter_naming(tiny_adapter, tmp_path, "HuggingFaceTB/SmolLM2-135M-Instruct")
    with pytest.raises(SubjectError, match="not in the Hugging Face cache .*HF_HUB_OFFLINE is set.*--ftgate-base=PATH"):
        Resolver(SubjectOptions(), Cache(None)).pair(str(adapter), None)


def test_a_hub_id_base_resolves_from_the_local_cache_offline(tmp_path, tiny_base, tiny_adapter, monkeypatch):
    """The adapter names its base as PEFT writes it, by Hub id; the base sits in a cache laid out as
    huggingface_hub lays it out. Nothing is downloaded (HF_HUB_OFFLINE=1)."""
    import shutil

    hub = tmp_path / "hf-home" / "hub"
    revision = "0123456789abcdef0123456789abcdef01234567"
    snapshot = hub / "models--acme--tiny-chat" / "snapshots" / revision
    shutil.copytree(tiny_base, snapshot)
    (hub / "models--acme--tiny-chat" / "refs").mkdir()
    (hub / "models--acme--tiny-chat" / "refs" / "main").write_text(revision)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    adapter = _adapter_naming(tiny_adapter, tmp_path, "acme/tiny-chat")
    run = run_gate([load_suite(suite_file(tmp_path, n=4))], RunConfig(candidate=str(adapter), cache_dir=None, progress=False,
                                                                      suites_dir=tmp_path))
    assert run.baseline.details["base_model"] == str(snapshot)
    assert run.candidate.details["base_model"] == str(snapshot) and run.candidate.details["adapter"] == str(adapter.resolve())
    assert run.verdict in ("promoted", "blocked")  # gated end to end; what the random model says does not matter


def test_subject_generate_for_hand_written_tests(tiny_adapter):
    baseline, candidate = Resolver(SubjectOptions(), Cache(None)).pair(str(tiny_adapter), None)
    assert isinstance(candidate, HFSubject)
    text = candidate.generate("Hello", max_new_tokens=5)
    assert isinstance(text, str)
    assert baseline.info.role == "baseline" and not baseline.adapter_enabled
    assert isinstance(baseline.generate([{"role": "user", "content": "Hello"}], max_new_tokens=5), str)


def test_plugin_gates_a_real_adapter(pytester, tiny_adapter):
    pytester.makefile(".yaml", **{"suites/s": "kind: format\ncases: [{id: a, input: hi}, {id: b, input: there}]\n"
                                              "generate: {max_new_tokens: 4}\nscorers: [{regex: '.'}]\ngate: {min_pass_rate: 0.0}\n"})
    pytester.makepyfile(test_fixture="""
        def test_candidate_fixture(candidate, baseline):
            assert candidate.info.kind == "hf" and baseline.info.role == "baseline"
            assert isinstance(candidate.generate("hi", max_new_tokens=3), str)
    """)
    result = pytester.runpytest(f"--candidate={tiny_adapter}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"candidate: {tiny_adapter} [[]hf *"])


def test_perplexity_scorer_uses_the_subjects_own_model(tmp_path, tiny_adapter):
    write(tmp_path / "p.yaml", "kind: task\ncases:\n  - {id: a, input: 'What is the capital?', expected: 'Paris is the capital.'}\n"
          "  - {id: b, input: 'Say hello', expected: 'Hello, how can I help you today?'}\n"
          "generate: {max_new_tokens: 2}\nscorers: [{perplexity: {max: 1000000}}]\n")
    run = run_gate([load_suite(tmp_path / "p.yaml")], RunConfig(candidate=str(tiny_adapter), cache_dir=None, progress=False))
    out = run.outcomes[0]
    base = [r.scores[0].value for r in out.baseline.results]
    cand = [r.scores[0].value for r in out.candidate.results]
    vocab = 400  # a random model is close to uniform over its vocabulary
    assert all(1 < v < 10 * vocab for v in base + cand)
    assert base != cand  # the adapter changes the distribution

    # reference: transformers' own causal-LM loss on the base model, one row at a time
    import math

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir = json.loads((tiny_adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    tok = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir).eval()
    for result, value in zip(out.baseline.results, base):
        prompt = tok.apply_chat_template(list(result.case.messages), add_generation_prompt=True, tokenize=False)
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        t_ids = tok(result.case.expected, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([p_ids + t_ids])
        labels = torch.tensor([[-100] * len(p_ids) + t_ids])
        with torch.no_grad():
            loss = model(input_ids=ids, labels=labels).loss
        # fp32 promises agreement only to its rounding across batch shapes: the plugin's padded batch and this
        # one-row pass sum in other orders on another CPU's kernels (AMX: 389.864 against 389.904). 1e-3 nats of
        # mean NLL is ten times that, and far below what a label shifted by one token costs (tested below).
        assert math.log(value) == pytest.approx(loss.item(), abs=1e-3)
        shifted = torch.tensor([[-100] * (len(p_ids) - 1) + t_ids + [-100]])  # each target one position early
        with torch.no_grad():
            wrong = model(input_ids=ids, labels=shifted).loss.item()
        assert abs(math.log(value) - wrong) > 1e-2


def test_perplexity_on_an_outputs_subject_is_unscored_and_blocks(tmp_path):
    write(tmp_path / "p.yaml", "kind: task\ncases: [{id: a, input: q, expected: x}]\nscorers: [{perplexity: 10}]\n")
    write(tmp_path / "o.jsonl", '{"id": "a", "output": "x"}\n')
    run = run_gate([load_suite(tmp_path / "p.yaml")], RunConfig(baseline=str(tmp_path / "o.jsonl"), cache_dir=None, progress=False))
    assert run.outcomes[0].decisions[0].status == "error"
    assert "could not be scored" in run.outcomes[0].decisions[0].summary


def test_a_base_is_the_same_model_alone_or_under_an_adapter_whatever_its_tokenizer_files(tiny_base, tiny_adapter, tmp_path):
    """Goldens frozen with --baseline=BASE must count for --candidate=ADAPTER-of-BASE (the adapter's saved
    tokenizer changes the generation fingerprint, not which model the baseline is)."""
    import shutil

    adapter = Path(shutil.copytree(tiny_adapter, tmp_path / "adapter"))
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_base / f, adapter / f)
    (adapter / "tokenizer_config.json").write_text((adapter / "tokenizer_config.json").read_text().replace("{", '{"x": 1, ', 1))
    alone, _ = Resolver(SubjectOptions(), Cache(None)).pair(None, str(tiny_base))
    implied, candidate = Resolver(SubjectOptions(), Cache(None)).pair(str(adapter), None)
    assert implied.info.fingerprint != alone.info.fingerprint  # another tokenizer file: other generations
    assert implied.info.model_identity == alone.info.model_identity and alone.info.identity.startswith("weights:")
    assert candidate.info.model_identity != alone.info.model_identity


@pytest.mark.parametrize(("where", "name", "edit"), [
    ("base", "generation_config.json", lambda d: {**d, "repetition_penalty": 1.3, "no_repeat_ngram_size": 3}),
    ("base", "generation_config.json", lambda d: {**d, "eos_token_id": [d.get("eos_token_id", 0), 5]}),
    ("base", "chat_template.jinja", None),
    ("base", "special_tokens_map.json", None),
    ("base", "added_tokens.json", None),
    ("adapter", "adapter_config.json", lambda d: {**d, "lora_alpha": d["lora_alpha"] * 2}),
])
def test_every_file_that_changes_generation_changes_the_fingerprint(tmp_path, tiny_base, tiny_adapter, where, name, edit):
    """The fingerprint keys the cache and identifies what was gated and promoted: an edit to any of these files
    changes what the model generates, so it must change the key."""
    from pytest_ftgate.settings.config import SubjectOptions
    from pytest_ftgate.stores.cache import Cache
    from pytest_ftgate.subjects import Resolver

    base, adapter = tmp_path / "base", tmp_path / "adapter"
    shutil.copytree(tiny_base, base)
    shutil.copytree(tiny_adapter, adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": str(base)}))

    def fingerprint() -> str:
        return Resolver(SubjectOptions(), Cache(None)).build(str(adapter), "candidate").info.fingerprint

    before = fingerprint()
    path = (base if where == "base" else adapter) / name
    if edit is None:  # a file added, or its text changed
        path.write_text((path.read_text() if path.exists() else "") + "{# edited #}\n" if name.endswith(".jinja")
                        else json.dumps({"<extra>": 400} if name == "added_tokens.json" else {"eos_token": "<edited>"}))
    else:
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    assert fingerprint() != before
