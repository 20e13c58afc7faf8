"""The levers of eval speed, as mechanics: the shared-prefix cache (outputs equal to those without it, on
this machine), the auto batch and its out-of-memory backoff, the dtype choice, and goldens frozen under
another dtype. No timings here: those are in tests/bench/bench_eval.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_ftgate import RunConfig, load_suite, run_gate
from pytest_ftgate.machine import hardware
from pytest_ftgate.settings.config import SubjectOptions
from pytest_ftgate.errors import GenerationError
from pytest_ftgate.kinds.golden import decide_goldens
from pytest_ftgate.report import build_view, terminal_lines, write_reports
from pytest_ftgate.stores.cache import Cache
from pytest_ftgate.stores.goldens import read_goldens, write_goldens
from pytest_ftgate.subjects.hf.engine import HFEngine
from pytest_ftgate.types import GenerationParams, Request
from tests.conftest import write

SYSTEM = "You are a careful assistant. Answer with one short line, in plain words, and nothing else at all."
QUESTIONS = [f"question {i}: " + "word " * (i % 5) + str(i * 7) for i in range(11)]


def requests(max_new_tokens: int = 6, system: str = SYSTEM) -> list[Request]:
    return [Request(({"role": "system", "content": system}, {"role": "user", "content": q}),
                    GenerationParams(max_new_tokens=max_new_tokens)) for q in QUESTIONS]


def engine(base: Path, **kw) -> HFEngine:
    kw.setdefault("batch_size", 4)
    return HFEngine(base, base, False, Cache(None), **kw)


def generate(e: HFEngine, reqs: list[Request]) -> dict[int, object]:
    got: dict[int, object] = {}
    e.generate(reqs, adapter=None, on_batch=lambda batch: got.update(batch))
    return got


def test_the_shared_prefix_cache_changes_no_output(tiny_base, monkeypatch):
    """Prefilled once and copied into each batch (prefix, padding, rest of the prompt), the outputs are those of
    left-padded batches without it: both generated here, on this machine."""
    prefixes = []
    original = HFEngine._shared_prefix
    monkeypatch.setattr(HFEngine, "_shared_prefix", lambda self, p: (r := original(self, p), prefixes.append(r))[0])
    with_prefix = generate(engine(tiny_base, share_prefix=True), requests())
    without = generate(engine(tiny_base, share_prefix=False), requests())
    assert prefixes[0] is not None and len(prefixes[0].ids) >= 8  # the system prompt and the template's head
    assert prefixes[1] is None
    assert [with_prefix[i].text for i in range(len(QUESTIONS))] == [without[i].text for i in range(len(QUESTIONS))]
    assert [with_prefix[i].tokens_in for i in range(len(QUESTIONS))] == [without[i].tokens_in for i in range(len(QUESTIONS))]
    assert any(o.text for o in without.values())


def test_the_prefix_stops_short_of_every_prompts_last_token(tiny_base):
    e = engine(tiny_base)
    e.load()
    prompts = [list(range(3, 20)), list(range(3, 20)) + [40, 41]]
    prefix = e._shared_prefix(prompts)
    assert prefix is not None and len(prefix.ids) == 16  # one token of the shortest prompt left to generate from
    assert e._shared_prefix([list(range(3, 8)), list(range(3, 8))]) is None  # too short to be worth a copy
    assert e._shared_prefix([[5, *range(3, 30)], [6, *range(3, 30)]]) is None  # nothing shared


def test_no_shared_prefix_under_sliding_window_attention(tiny_base):
    """The window counts cache positions, padding included: a prefix with padding after it would see other tokens."""
    from transformers import MistralConfig, Qwen2Config

    from pytest_ftgate.subjects.hf.batching import prefix_safe

    e = engine(tiny_base)
    e.load()
    assert prefix_safe(e._model.config)
    e._model.config.sliding_window = 16
    assert e._shared_prefix([list(range(3, 20)), list(range(3, 20)) + [40]]) is None
    assert not prefix_safe(MistralConfig(sliding_window=4096))
    assert prefix_safe(Qwen2Config(use_sliding_window=False))


def test_auto_batch_backs_off_on_out_of_memory_and_loses_no_case(tiny_base, monkeypatch, capsys):
    reference = generate(engine(tiny_base, batch_size=2), requests())
    e = engine(tiny_base, batch_size=None)
    e.load()
    sizes: list[int] = []
    real = e._model.generate

    def small_memory(*args, **kwargs):
        n = kwargs["input_ids"].shape[0]
        sizes.append(n)
        if n > 3:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:121] DefaultCPUAllocator: can't allocate memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(e._model, "generate", small_memory)
    got = generate(e, requests())
    assert sorted(got) == list(range(len(QUESTIONS)))
    assert [got[i].text for i in sorted(got)] == [reference[i].text for i in sorted(reference)]
    assert sizes[0] == len(QUESTIONS)  # auto: all of them fit the estimate on this machine
    assert max(o.batch_size for o in got.values()) <= 3 and sizes[1:3] == [5, 2]  # halved until it fit
    assert "out of memory at batch 11 on cpu; retrying at 5" in capsys.readouterr().err


def test_a_pinned_batch_that_runs_out_of_memory_is_an_error_naming_the_option(tiny_base, monkeypatch):
    e = engine(tiny_base, batch_size=4)
    e.load()
    monkeypatch.setattr(e._model, "generate", lambda *a, **k: (_ for _ in ()).throw(
        RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")))
    with pytest.raises(GenerationError, match="out of memory generating a batch of 4 .*smaller --ftgate-batch-size"):
        generate(e, requests())


def test_other_generation_failures_are_not_taken_for_memory(tiny_base, monkeypatch):
    e = engine(tiny_base, batch_size=None)
    e.load()
    monkeypatch.setattr(e._model, "generate", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("shape mismatch")))
    with pytest.raises(GenerationError, match="generation failed on a batch of 11: shape mismatch"):
        generate(e, requests())


def test_auto_batch_follows_the_memory_free_and_the_prompt_length(tiny_base, monkeypatch):
    e = engine(tiny_base, batch_size=None)
    e.load()
    row = e._row_bytes(100, 16)
    assert e._row_bytes(400, 16) > row  # longer prompts take more per row
    monkeypatch.setattr(hardware, "free_memory", lambda where: 10 * row * 2)  # half of it is planned on
    assert e._fits(100, 16) == 10
    monkeypatch.setattr(hardware, "free_memory", lambda where: 1)
    assert e._fits(100, 16) == 1  # never below one: a batch of one that does not fit fails with a clear error
    monkeypatch.setattr(hardware, "free_memory", lambda where: 2**50)
    assert e._fits(100, 16) == e.max_batch == 64


@pytest.mark.parametrize(("where", "native", "expected"), [
    ("cpu", True, "bfloat16"), ("cpu", False, "float32"), ("cuda", True, "bfloat16"), ("cuda", False, "float16"),
])
def test_auto_dtype_is_bf16_only_where_the_hardware_computes_it(monkeypatch, where, native, expected):
    monkeypatch.setattr(hardware, "native_bf16", lambda w: native)
    assert hardware.pick_dtype("auto", where) == expected
    assert hardware.pick_dtype("float32", where) == "float32"


def test_the_dtype_keys_the_cache_and_is_in_every_report(tmp_path, tiny_base):
    cases = "".join(json.dumps({"id": f"c{i}", "input": q}) + "\n" for i, q in enumerate(QUESTIONS))
    write(tmp_path / "cases.jsonl", cases)
    suite = load_suite(write(tmp_path / "s.yaml", "kind: format\ncases: cases.jsonl\ngenerate: {max_new_tokens: 4}\n"
                                                   "scorers: [{regex: '.'}]\n"))
    runs = {}
    for dtype in ("float32", "bfloat16"):
        runs[dtype] = run_gate([suite], RunConfig(baseline=str(tiny_base), cache_dir=tmp_path / "cache", progress=False,
                                                  report_dir=tmp_path / dtype,
                                                  subject_options=SubjectOptions(dtype=dtype)))
    f32, bf16 = runs["float32"].baseline, runs["bfloat16"].baseline
    assert f32.fingerprint == bf16.fingerprint  # the same weights: goldens and promotions still apply
    assert f32.cache_key != bf16.cache_key  # outputs computed in another dtype are not reused
    assert not any(r.output.cached for r in runs["bfloat16"].outcomes[0].baseline.results)
    assert bf16.details["dtype"] == "bfloat16" and "bfloat16 on cpu" in bf16.generation
    view = build_view(runs["bfloat16"])
    write_reports(view, tmp_path / "report")
    assert "bfloat16 on cpu" in terminal_lines(view)[0]
    for name in ("report.md", "report.html"):
        assert "bfloat16 on cpu, batch auto (at most 64)" in (tmp_path / "report" / name).read_text()
    subject = json.loads((tmp_path / "report" / "report.json").read_text())["subjects"]["baseline"]
    assert subject["details"]["dtype"] == "bfloat16" and subject["generation"].startswith("bfloat16 on cpu")


def test_a_bad_dtype_names_the_option(pytester):
    pytester.makefile(".yaml", s="kind: format\ncases: []\nscorers: [{regex: '.'}]\n")
    result = pytester.runpytest("s.yaml", "--baseline=x.jsonl", "--ftgate-dtype=fp8")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--ftgate-dtype*'fp8' is not one of auto, float32, bfloat16, float16*"])


# -- goldens frozen in one dtype, gated in another: re-derived in this run, and said ---------------------------

def _suite_result(dtype: str, passed: dict[str, bool], role: str = "baseline"):
    from pytest_ftgate.types import Case, CaseResult, Output, Score, SubjectInfo, SuiteResult

    info = SubjectInfo(role, "hf", "m", "fp", {"dtype": dtype}, identity="weights:x")
    results = tuple(CaseResult(Case(i, ({"role": "user", "content": i},)), Output("x"), (Score(ok),))
                    for i, ok in passed.items())
    return SuiteResult("g", info, results)


@pytest.mark.parametrize(("frozen", "now"), [("float32", "bfloat16"), ("bfloat16", "float32")])
def test_goldens_frozen_in_another_dtype_are_re_derived_and_said(tmp_path, frozen, now):
    path = tmp_path / "g.goldens.json"
    write_goldens(path, _suite_result(frozen, {f"c{i}": True for i in range(40)}))
    golden = read_goldens(path)
    assert golden.dtype == frozen
    # in the other dtype the baseline loses c0 and c1; the candidate loses c1 (the baseline's too) and c5
    baseline = _suite_result(now, {f"c{i}": i not in (0, 1) for i in range(40)})
    candidate = _suite_result(now, {f"c{i}": i not in (1, 5) for i in range(40)}, "candidate")
    decision = decide_goldens("g", {"max_regression": 0.05}, baseline, candidate, golden)
    assert decision.figures["n"] == 38 and decision.figures["regressed_ids"] == ["c5"]  # c5 counts; c0, c1 do not
    assert decision.figures["frozen_dtype"] == frozen and decision.figures["dtype"] == now
    said = " ".join(decision.warnings)
    assert f"frozen with the baseline computing in {frozen}; this run computes in {now}" in said
    assert f"--ftgate-dtype={frozen}" in said and "2 of 40 goldens it fails" in said
    assert decision.figures["stale"]["c0"] == f"the baseline fails it now, in {now} (frozen in {frozen})"


def test_goldens_in_the_same_dtype_say_nothing_about_dtypes(tmp_path):
    path = tmp_path / "g.goldens.json"
    write_goldens(path, _suite_result("float32", {f"c{i}": True for i in range(40)}))
    baseline = _suite_result("float32", {f"c{i}": True for i in range(40)})
    decision = decide_goldens("g", {"max_regression": 0.05}, baseline, baseline, read_goldens(path))
    assert "dtype" not in decision.figures and not any("dtype" in w or "computing in" in w for w in decision.warnings)


def test_a_bad_batch_size_in_the_ini_names_the_key_and_auto(pytester):
    pytester.makeini("[pytest]\nftgate_batch_size = lots\n")
    pytester.makefile(".yaml", s="kind: format\ncases: []\nscorers: [{regex: '.'}]\n")
    result = pytester.runpytest("s.yaml", "--baseline=x.jsonl")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*ftgate_batch_size*'lots' is not an integer; give a positive integer, or auto*"])


def _project_filterwarnings() -> list[str]:
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    return tomllib.loads(pyproject.read_text())["tool"]["pytest"]["ini_options"]["filterwarnings"]


@pytest.mark.parametrize("filters", ["project", "ignore"])
def test_goldens_frozen_in_float32_gated_in_bfloat16_promote_under_an_escalating_filter(pytester, tiny_base, tiny_adapter,
                                                                                        filters):
    """The project's own filterwarnings turn FtgateWarning into an error. A gate's warnings are part of its verdict,
    decided before its items run: shown, never raised, so the verdict line and the exit status agree. bf16 is
    emulated where the CPU lacks it, so this runs on any machine."""
    assert "error::pytest_ftgate.errors.FtgateWarning" in _project_filterwarnings()
    lines = _project_filterwarnings() if filters == "project" else ["ignore::pytest_ftgate.errors.FtgateWarning"]
    pytester.makeini("[pytest]\nfilterwarnings =\n" + "".join(f"    {f}\n" for f in lines))
    cases = "".join(f"  - {{id: g{i}, input: 'question {i}'}}\n" for i in range(6))
    write(pytester.path / "suites/qa.yaml", f"kind: golden\ncases:\n{cases}generate: {{max_new_tokens: 3}}\n"
                                            "scorers: [{regex: '.'}]\ngate: {max_regression: 1.0}\n")
    quiet = ("-p", "no:cacheprovider")
    assert pytester.runpytest(f"--baseline={tiny_base}", "--ftgate-dtype=float32", "--ftgate-update-goldens", *quiet).ret == 0
    assert json.loads((pytester.path / "suites/qa.goldens.json").read_text())["baseline_dtype"] == "float32"
    result = pytester.runpytest(f"--candidate={tiny_adapter}", "--ftgate-dtype=bfloat16", "--ftgate-report-dir=r", *quiet)
    out = result.stdout.str()
    assert result.ret == 0, out[-3000:]
    result.assert_outcomes(passed=1)
    assert "Traceback" not in out and "verdict: PROMOTED" in out
    said = "frozen with the baseline computing in float32; this run computes in bfloat16"
    assert said in out.split("verdict:")[0].split("= ftgate =")[-1]  # in the verdict section, whatever the filter
    summary = out.split("warnings summary")[1].split("= ftgate =")[0] if "warnings summary" in out else ""
    assert (said in summary) == (filters == "project")  # an escalating filter shows it; an ignoring one hides it
    assert json.loads((pytester.path / "r/report.json").read_text())["verdict"] == "promoted"


def test_a_passing_gate_beside_a_failing_test_does_not_read_as_a_promotion(pytester, tiny_base, tiny_adapter):
    cases = "".join(f"  - {{id: g{i}, input: 'question {i}'}}\n" for i in range(3))
    write(pytester.path / "suites/fmt.yaml", f"kind: format\ncases:\n{cases}generate: {{max_new_tokens: 3}}\n"
                                             "scorers: [{regex: '.'}]\ngate: {min_pass_rate: 0.0}\n")
    pytester.makepyfile(test_other="def test_broken():\n    assert 1 == 2\n")
    result = pytester.runpytest("suites", "test_other.py", f"--candidate={tiny_adapter}", "-p", "no:cacheprovider",
                                "-W", "ignore::pytest_ftgate.errors.FtgateWarning")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["verdict: NOT PROMOTED — the gate's criteria passed, but 1 test(s) outside the gate "
                                 "failed or errored, so this session exits 1"])
