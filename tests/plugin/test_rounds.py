"""Rounds after the first fine-tune: a promotion record, production as the default baseline (two adapters
on one base load), goldens that follow production with drift bounded across promotions, the history
store, and leakage checked at the gate. Tiny random models: mechanics only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


from pytest_ftgate.cli import main
from pytest_ftgate.errors import EXIT_GATE_ERROR, EXIT_USAGE

# any answer passes but one that starts with BROKEN, which only the outputs files written here give
GOLDEN = "kind: golden\ncases:\n{cases}\ngenerate: {{max_new_tokens: 3}}\nscorers: [{{regex: '^(?!BROKEN)'}}]\n"


def outputs(path: Path, rows: dict[str, str]) -> Path:
    path.write_text("".join(json.dumps({"id": k, "output": v}) + "\n" for k, v in rows.items()))
    return path


def test_two_adapters_on_one_base_share_one_load_and_answer_as_two_loads(tiny_base, tiny_adapter, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM

    from fixtures.tiny_models import build_tiny_adapter
    from pytest_ftgate.settings.config import SubjectOptions
    from pytest_ftgate.stores.cache import Cache
    from pytest_ftgate.subjects import Resolver

    other = build_tiny_adapter(tiny_base, tmp_path / "other-adapter", seed=7)
    loads = []
    original = AutoModelForCausalLM.from_pretrained.__func__
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained",
                        classmethod(lambda cls, *a, **k: loads.append(a[0]) or original(cls, *a, **k)))
    prompts = ["Hello there", "Where is my parcel?", "Route this ticket"]

    def answers(subject):
        return [subject.generate(p, max_new_tokens=4) for p in prompts]

    shared = Resolver(SubjectOptions(), Cache(None))
    production, candidate = shared.pair(str(tiny_adapter), str(other))  # baseline: the "promoted" adapter
    assert production.engine is candidate.engine and len(production.engine.adapters) == 2
    both = (answers(production), answers(candidate), answers(candidate.implied_baseline()))
    assert len(loads) == 1
    alone = [answers(Resolver(SubjectOptions(), Cache(None)).build(spec, "candidate")) for spec in (str(other), str(tiny_adapter))]
    base_alone = answers(Resolver(SubjectOptions(), Cache(None)).build(str(tiny_base), "baseline"))
    assert both == (alone[0], alone[1], base_alone)  # the same greedy answers as separate loads, on this machine
    assert production.info.fingerprint != candidate.info.fingerprint


def _golden_project(root: Path, n: int = 6) -> Path:
    (root / "suites").mkdir(parents=True)
    cases = "\n".join(f"  - {{id: g{i}, input: 'question {i}'}}" for i in range(n))
    (root / "suites/qa.yaml").write_text(GOLDEN.format(cases=cases))
    return root / "suites"


def test_a_promoted_run_becomes_the_default_baseline_and_goldens_follow_production(pytester, tiny_base, tiny_adapter,
                                                                                     tmp_path, own_history, capsys):
    from fixtures.tiny_models import build_tiny_adapter

    suites = _golden_project(pytester.path)
    second = build_tiny_adapter(tiny_base, tmp_path / "round2", seed=11)
    quiet = ("-p", "no:cacheprovider", "-W", "ignore::pytest_ftgate.errors.FtgateWarning")
    assert pytester.runpytest(f"--baseline={tiny_base}", "--ftgate-update-goldens", *quiet).ret == 0
    round1 = pytester.runpytest(f"--candidate={tiny_adapter}", "--ftgate-report-dir=r1", "--ftgate-fail=golden:100%", *quiet)
    assert round1.ret == 0, round1.stdout.str()
    # a blocked or partial run is never promoted
    report = json.loads((pytester.path / "r1/report.json").read_text())
    bad = pytester.path / "bad.json"
    bad.write_text(json.dumps({**report, "verdict": "blocked"}))
    assert main(["promote", str(bad), "--suites", str(suites)]) == EXIT_USAGE
    assert main(["promote", str(pytester.path / "r1/report.json"), "--suites", str(suites)]) == 0
    record = json.loads((suites / "ftgate.promoted.json").read_text())
    assert record["fingerprint"] == report["subjects"]["candidate"]["fingerprint"] and record["report"]["sha256"]
    # round 2: the promoted adapter is the baseline by default; goldens frozen on the base are refused
    result = pytester.runpytest(f"--candidate={second}", "--ftgate-report-dir=r2", *quiet)
    assert result.ret == EXIT_GATE_ERROR
    result.stdout.fnmatch_lines(["NOTE: baseline: the promoted model *", "*was frozen on * and this run's baseline is *Gate against *"])
    # re-frozen on production, the first frozen goldens stay as the origin that bounds drift
    assert pytester.runpytest("--baseline=promoted", "--ftgate-update-goldens", *quiet).ret == 0
    goldens = json.loads((suites / "qa.goldens.json").read_text())
    assert goldens["origin"]["identity"] != goldens["baseline_identity"] and goldens["origin"]["goldens"]
    result = pytester.runpytest(f"--candidate={second}", "--ftgate-report-dir=r2", "--ftgate-fail=golden:100%", *quiet)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*drift since the first frozen goldens*: 0/6 = 0.0% (at most 10.0%)*"])
    r2 = json.loads((pytester.path / "r2/report.json").read_text())
    assert r2["subjects"]["baseline"]["fingerprint"] == record["fingerprint"]
    figures = r2["suites"][0]["decisions"][0]["figures"]
    assert figures["max_drift"] == 0.10 and figures["drift_n"] == 6
    # drift blocks on its own: a candidate that loses 2 of the first model's 6 goldens (33%, over 10%) is blocked
    # though the regressions allowed against production (100% here) would let it pass
    broken = outputs(pytester.path / "broken.jsonl", {f"g{i}": "BROKEN" if i < 2 else "fine" for i in range(6)})
    drifted = pytester.runpytest(f"--candidate={broken}", "--ftgate-report-dir=r2b", "--ftgate-fail=golden:100%", *quiet)
    assert drifted.ret == 1, drifted.stdout.str()
    drifted.stdout.fnmatch_lines(["*drift since the first frozen goldens*: 2/6 = 33.3% (at most 10.0%)*", "verdict: BLOCKED*"])
    assert json.loads((pytester.path / "r2b/report.json").read_text())["suites"][0]["decisions"][0]["figures"]["drift_ids"] \
        == ["g0", "g1"]
    # --baseline=base: the adapter's base model
    base = pytester.runpytest(f"--candidate={second}", "--baseline=base", "--ftgate-report-dir=r3", *quiet)
    assert "baseline: the promoted model" not in base.stdout.str()
    base.stdout.fnmatch_lines(["verdict: * nor could it promote: promotion contract, against-production: the baseline was *"])
    # the promoted adapter changed since it was promoted: refused
    weights = next(Path(tiny_adapter).glob("*.safetensors"))
    backup = tmp_path / "backup.safetensors"
    shutil.copy(weights, backup)
    try:
        weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
        changed = pytester.runpytest(f"--candidate={second}", *quiet)
        assert changed.ret == EXIT_GATE_ERROR
        changed.stdout.fnmatch_lines(["*same-model: the promoted model * is not the model that was promoted*"])
    finally:
        shutil.copy(backup, weights)
    # the history holds every gate run, the promotion marked
    capsys.readouterr()
    assert main(["history", "--history", str(own_history), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["promoted"] for r in runs if r["report_path"] == str(pytester.path / "r1/report.json")] == [True]
    assert len(runs) >= 5 and any(s["suite"] == "qa" for r in runs for s in r["suites"])


def test_history_lists_runs_and_compare_names_the_flipped_cases(pytester, capsys, own_history):
    (pytester.path / "suites").mkdir()
    (pytester.path / "suites/qa.yaml").write_text(
        "kind: format\ncases: [{id: a, input: x}, {id: b, input: y}]\nscorers: [json_valid]\ngate: {min_pass_rate: 0.5}\n")
    outputs(pytester.path / "base.jsonl", {"a": "{}", "b": "no"})
    outputs(pytester.path / "c1.jsonl", {"a": "{}", "b": "{}"})
    outputs(pytester.path / "c2.jsonl", {"a": "no", "b": "{}"})
    for n, cand in enumerate(("c1", "c2")):
        pytester.runpytest("--baseline=base.jsonl", f"--candidate={cand}.jsonl", f"--ftgate-report-dir=r{n}")
    history = str(own_history)
    assert main(["history", "--history", history]) == 0
    out = capsys.readouterr().out
    assert out.count("qa pass rate") == 2 and "c2.jsonl" in out
    rows = [line for line in out.splitlines() if "qa pass rate" in line]
    assert len(rows) == 2 and all("base.jsonl" in line for line in rows)  # whom each candidate was gated against
    assert main(["history", "--history", history, "--json", "--suite", "qa"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["suites"][0]["candidate"] for r in runs] == [0.5, 1.0]  # newest first
    assert main(["compare", str(pytester.path / "r0/report.json"), str(pytester.path / "r1/report.json")]) == 0
    out = capsys.readouterr().out
    assert "qa: 2 case(s) in both; 1 pass->fail, 0 fail->pass" in out and "[PASS->FAIL] a" in out
    html = (pytester.path / "r1/report.html").read_text()
    assert 'id="plot-trend"' in html


def test_a_candidate_trained_on_its_eval_cases_is_blocked_at_the_gate(pytester, tiny_base, tiny_adapter, tmp_path):
    """No `ftgate data check` first: the manifest names the data, and the gate checks it before generating."""
    from pytest_ftgate.stores.cache import sha256_file

    suites = _golden_project(pytester.path, n=3)
    data = pytester.path / "train.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "a"}]}) + "\n"
                            for q in ("question 1", "an unrelated ticket about a refund")))
    adapter = Path(shutil.copytree(tiny_adapter, tmp_path / "leaky"))
    manifest = {"schema_version": 1, "method": "sft", "created_at": "now",
                "base_model": {"path": str(tiny_base), "fingerprint": ""},
                "data": {"train": {"path": "train.jsonl", "sha256": sha256_file(data), "rows": 2}}}
    (adapter / "ftgate.json").write_text(json.dumps(manifest))
    quiet = ("-p", "no:cacheprovider", "-W", "ignore::pytest_ftgate.errors.FtgateWarning")
    assert pytester.runpytest(f"--baseline={tiny_base}", "--ftgate-update-goldens", *quiet).ret == 0
    result = pytester.runpytest(f"--candidate={adapter}", "--ftgate-fail=golden:100%", *quiet)
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*leakage: BLOCK 1 suite case(s) appear in the candidate's training data: qa/g1 = "
                                 "*train.jsonl:1 (exact, trained turn)*"])
    # what `ftgate data check` warns of the same data is said at the gate too
    result.stdout.fnmatch_lines(["NOTE: the candidate's training data *train.jsonl: 2 rows, under the floor of 200 *"])
    # the file changed since training: not checked, said in every report; an error when required
    data.write_text(data.read_text() + json.dumps({"messages": [{"role": "user", "content": "x"},
                                                                {"role": "assistant", "content": "y"}]}) + "\n")
    result = pytester.runpytest(f"--candidate={adapter}", "--ftgate-fail=golden:100%", *quiet)
    result.stdout.fnmatch_lines(["NOTE: leakage not checked: *train.jsonl is not the file it was trained on*"])
    assert json.loads((pytester.path / ".ftgate/report/report.json").read_text())["notices"]
    required = pytester.runpytest(f"--candidate={adapter}", "--ftgate-require-leakage-check", *quiet)
    assert required.ret == EXIT_GATE_ERROR
    # a file with no valid training row was not checked: never "no leak"
    empty = pytester.path / "empty.jsonl"
    empty.write_text('{"not": "a training row"}\n')
    result = pytester.runpytest(f"--candidate={tiny_adapter}", f"--ftgate-train-data={empty}", "--ftgate-fail=golden:100%",
                                "--ftgate-require-leakage-check", *quiet)
    assert result.ret == EXIT_GATE_ERROR
    result.stdout.fnmatch_lines(["*leakage not checked: *empty.jsonl holds no valid SFT or DPO row*"])
    # an adapter from elsewhere names its data on the command line
    result = pytester.runpytest(f"--candidate={tiny_adapter}", f"--ftgate-train-data={data}", "--ftgate-fail=golden:100%", *quiet)
    assert result.ret == 1
    del suites
