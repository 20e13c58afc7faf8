"""The promotion contract (pytest_ftgate/contract.py): each way around it that ordinary actions found, tried and
refused, at the verdict and at `ftgate promote`, with the clause named. Outputs files as subjects: the verdicts
here do not depend on any model's arithmetic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_ftgate.cli import main
from pytest_ftgate.errors import EXIT_PARTIAL, EXIT_USAGE
from tests.conftest import write

TASK = "kind: task\ncases: {name}.jsonl\nscorers: [exact]\n"


def project(root: Path) -> Path:
    """suites/ with two task suites of 10 cases each (a0.., b0..), and three outputs files: base.jsonl (right on 4
    of 10 per suite), good.jsonl (8 of 10), better.jsonl (10 of 10)."""
    suites = root / "suites"
    for name in ("a", "b"):
        write(suites / f"{name}.yaml", TASK.format(name=name))
        write(suites / f"{name}.jsonl", "".join(json.dumps({"id": f"{name}{i}", "input": f"q{i}", "expected": f"x{i}"})
                                                + "\n" for i in range(10)))
    for subject, right in (("base", 4), ("good", 8), ("better", 10)):
        write(root / f"{subject}.jsonl", "".join(json.dumps({"id": f"{n}{i}", "output": f"x{i}" if i < right else "?"})
                                                 + "\n" for n in "ab" for i in range(10)))
    return suites


def gate(root: Path, *args: str, paths: tuple[str, ...] = ()) -> int:
    return main(["gate", *(paths or (str(root / "suites"),)), f"--ftgate-suites={root / 'suites'}",
                 f"--ftgate-cache-dir={root / 'cache'}", *args])


def promote(root: Path, report: str) -> int:
    return main(["promote", str(root / report / "report.json"), "--suites", str(root / "suites")])


def test_naming_one_suite_file_is_for_looking_never_a_promotion(pytester, capsys):
    root = pytester.path
    project(root)
    looked = pytester.runpytest("suites/a.yaml", "--baseline=base.jsonl", "--candidate=good.jsonl", "--ftgate-report-dir=r1",
                                "-p", "no:cacheprovider")
    assert looked.ret == EXIT_PARTIAL
    looked.stdout.fnmatch_lines(["verdict: PARTIAL *promotion contract, coverage: this run did not gate 1 of the 2 "
                                 "suite(s) in *suites: b.yaml*"])
    report = json.loads((root / "r1/report.json").read_text())
    assert report["verdict"] == "partial" and [b["clause"] for b in report["contract"]["breaches"]] == ["coverage"]
    assert main(["promote", str(root / "r1/report.json"), "--suites", str(root / "suites")]) == EXIT_USAGE
    assert "its verdict is 'partial'" in capsys.readouterr().err
    # the whole suites directory (no path named): promoted, and `ftgate promote` takes it
    full = pytester.runpytest("--baseline=base.jsonl", "--candidate=good.jsonl", "--ftgate-report-dir=r2", "-p", "no:cacheprovider")
    assert full.ret == 0
    full.stdout.fnmatch_lines(["verdict: PROMOTED"])
    assert set(json.loads((root / "r2/report.json").read_text())["contract"]["gated"]) == {"a.yaml", "b.yaml"}
    assert main(["promote", str(root / "r2/report.json"), "--suites", str(root / "suites")]) == 0


def test_promote_holds_the_report_against_the_project_as_it_is_now(tmp_path, capsys):
    suites = project(tmp_path)
    assert gate(tmp_path, "--baseline=" + str(tmp_path / "base.jsonl"), "--candidate=" + str(tmp_path / "good.jsonl"),
                f"--ftgate-report-dir={tmp_path / 'r'}") == 0
    # a suite edited since the run (a case's expected answer): the report no longer describes the project
    cases = (suites / "b.jsonl").read_text()
    (suites / "b.jsonl").write_text(cases.replace('"x9"', '"y9"'))
    assert promote(tmp_path, "r") == EXIT_USAGE
    said = capsys.readouterr().err
    assert "promotion contract" in said and "coverage: 1 suite(s)" in said and "b.yaml" in said
    (suites / "b.jsonl").write_text(cases)
    # another project's suites directory: the report gated none of its suites
    other = project(tmp_path / "other")
    write(other / "c.yaml", TASK.format(name="a"))
    assert main(["promote", str(tmp_path / "r/report.json"), "--suites", str(other)]) == EXIT_USAGE
    assert "coverage: the gated run did not gate 1 of the 3 suite(s)" in capsys.readouterr().err
    assert promote(tmp_path, "r") == 0


def test_an_edited_report_is_refused_by_its_history_record(tmp_path, capsys):
    project(tmp_path)
    base, good = str(tmp_path / "base.jsonl"), str(tmp_path / "good.jsonl")
    assert gate(tmp_path, f"--baseline={good}", f"--candidate={base}", f"--ftgate-report-dir={tmp_path / 'r'}") == 1
    path = tmp_path / "r/report.json"
    report = json.loads(path.read_text())
    path.write_text(json.dumps({**report, "verdict": "promoted"}))  # a blocked run, its verdict edited
    assert promote(tmp_path, "r") == EXIT_USAGE
    assert "intact-record:" in (said := capsys.readouterr().err) and "it was edited since" in said
    assert not (tmp_path / "suites/ftgate.promoted.json").exists()


def test_a_report_whose_history_could_not_be_written_is_never_written(tmp_path, capsys):
    project(tmp_path)
    blocker = write(tmp_path / "file", "a file where the history's directory would be")
    code = gate(tmp_path, f"--baseline={tmp_path / 'base.jsonl'}", f"--candidate={tmp_path / 'good.jsonl'}",
                f"--ftgate-report-dir={tmp_path / 'r'}", f"--ftgate-history={blocker / 'h.sqlite'}")
    assert code == EXIT_USAGE and "cannot open the history store" in capsys.readouterr().err
    assert not (tmp_path / "r/report.json").exists()


def test_a_run_that_freezes_goldens_does_not_promote(tmp_path, capsys):
    suites = project(tmp_path)
    write(suites / "g.yaml", "kind: golden\ncases: a.jsonl\nscorers: [exact]\n")
    args = (f"--baseline={tmp_path / 'base.jsonl'}", f"--candidate={tmp_path / 'better.jsonl'}")
    assert gate(tmp_path, *args, "--ftgate-update-goldens", f"--ftgate-report-dir={tmp_path / 'r1'}") == EXIT_PARTIAL
    assert "promotion contract, no-freeze: this run wrote goldens" in capsys.readouterr().out
    assert gate(tmp_path, *args, f"--ftgate-report-dir={tmp_path / 'r2'}") == 0  # the same run, goldens committed


def test_a_candidate_is_promoted_only_against_production(tmp_path, capsys, own_history):
    project(tmp_path)
    base, good, better = (str(tmp_path / f"{n}.jsonl") for n in ("base", "good", "better"))
    assert gate(tmp_path, f"--baseline={base}", f"--candidate={good}", f"--ftgate-report-dir={tmp_path / 'r1'}") == 0
    assert promote(tmp_path, "r1") == 0
    capsys.readouterr()
    # round 2 against the base: what it measures is said; it is not a promotion
    assert gate(tmp_path, f"--baseline={base}", f"--candidate={better}", f"--ftgate-report-dir={tmp_path / 'r2'}") == EXIT_PARTIAL
    said = capsys.readouterr().out
    assert "against-production: the baseline was" in said and "not the promoted model" in said
    assert promote(tmp_path, "r2") == EXIT_USAGE
    # against production (no --baseline: the promotion record's model): promoted
    assert gate(tmp_path, f"--candidate={better}", f"--ftgate-report-dir={tmp_path / 'r3'}") == 0
    assert "NOTE: baseline: the promoted model" in capsys.readouterr().out
    # a report gated against the production of its day, promoted after production moved on: refused
    assert gate(tmp_path, f"--candidate={better}", f"--ftgate-report-dir={tmp_path / 'r4'}") == 0
    assert promote(tmp_path, "r3") == 0
    capsys.readouterr()
    assert promote(tmp_path, "r4") == EXIT_USAGE
    assert "against-production: the run was gated against" in capsys.readouterr().err
    # the record moved away while the history shows a promotion: an error that names the record, not the base
    record = tmp_path / "suites/ftgate.promoted.json"
    record.rename(tmp_path / "moved.json")
    assert gate(tmp_path, f"--candidate={better}", f"--ftgate-report-dir={tmp_path / 'r5'}") == EXIT_USAGE
    said = capsys.readouterr().err
    assert f"there is no promotion record at {record}" in said and "shows" in said and "promoted" in said
    # another suites directory sharing the history has had no promotion: nothing is missing there
    project(tmp_path / "other")
    assert gate(tmp_path / "other", f"--baseline={base}", f"--candidate={better}",
                f"--ftgate-report-dir={tmp_path / 'r6'}") == 0


@pytest.mark.parametrize("history", ["off"])
def test_promote_without_a_history_cannot_check_the_record(tmp_path, capsys, monkeypatch, history):
    project(tmp_path)
    assert gate(tmp_path, f"--baseline={tmp_path / 'base.jsonl'}", f"--candidate={tmp_path / 'good.jsonl'}",
                f"--ftgate-report-dir={tmp_path / 'r'}") == 0
    monkeypatch.setenv("FTGATE_HISTORY", history)
    assert promote(tmp_path, "r") == EXIT_USAGE
    assert "intact-record: no history store" in capsys.readouterr().err


@pytest.mark.parametrize(("change", "said"), [
    (("scorers: [exact]", "scorers: [{regex: '.'}]"), "scorers (with their arguments)"),
    (("scorers: [exact]", "scorers: [{exact: {normalize: true}}]"), "scorers (with their arguments)"),
    (("kind: golden\n", "kind: golden\nprompt: {system: 'Answer in one word.'}\n"), "prompts"),
    (("kind: golden\n", "kind: golden\ngenerate: {max_new_tokens: 3}\n"), "generation parameters"),
])
def test_goldens_bind_what_decides_a_pass(tmp_path, capsys, change, said):
    """Loosening a golden suite's scorers turned a block into PROMOTED: the golden file binds them now."""
    suites = tmp_path / "suites"
    write(suites / "g.yaml", "kind: golden\ncases: g.jsonl\nscorers: [exact]\n")
    write(suites / "g.jsonl", "".join(json.dumps({"id": f"g{i}", "input": f"q{i}", "expected": f"x{i}"}) + "\n"
                                      for i in range(20)))
    write(tmp_path / "base.jsonl", "".join(json.dumps({"id": f"g{i}", "output": f"x{i}"}) + "\n" for i in range(20)))
    write(tmp_path / "cand.jsonl", "".join(json.dumps({"id": f"g{i}", "output": f"x{i}" if i < 10 else "wrong"}) + "\n"
                                           for i in range(20)))
    base, cand = f"--baseline={tmp_path / 'base.jsonl'}", f"--candidate={tmp_path / 'cand.jsonl'}"
    assert gate(tmp_path, base, "--ftgate-update-goldens", f"--ftgate-report-dir={tmp_path / 'r0'}") == 0
    assert gate(tmp_path, base, cand, f"--ftgate-report-dir={tmp_path / 'r1'}") == 1  # 10 of 20 goldens regressed
    capsys.readouterr()
    (suites / "g.yaml").write_text((suites / "g.yaml").read_text().replace(*change))
    assert gate(tmp_path, base, cand, f"--ftgate-report-dir={tmp_path / 'r2'}") == 6
    out = capsys.readouterr().out
    assert f"what decides a pass changed since g.goldens.json was frozen: the suite's {said}" in out


@pytest.mark.parametrize(("definition", "said"), [
    (None, "does not record what decided a pass"),
    ({}, "the suite's scorers (with their arguments) and suite's prompts and suite's generation parameters"),
])
def test_a_golden_file_whose_definition_is_gone_binds_nothing_and_stops_the_gate(tmp_path, capsys, definition, said):
    """An emptied or removed `definition` must not read as "nothing changed"."""
    suites = golden_project(tmp_path)
    base, nxt = str(tmp_path / "base.jsonl"), str(tmp_path / "next.jsonl")
    assert gate(tmp_path, f"--baseline={base}", "--ftgate-update-goldens", f"--ftgate-report-dir={tmp_path / 'r0'}") == 0
    frozen = json.loads((suites / "g.goldens.json").read_text())
    (suites / "g.goldens.json").write_text(json.dumps({**frozen, "definition": definition}))
    capsys.readouterr()
    assert gate(tmp_path, f"--baseline={base}", f"--candidate={nxt}", f"--ftgate-report-dir={tmp_path / 'r1'}") == 6
    assert said in capsys.readouterr().out


@pytest.fixture
def echo_kind():
    """`echo:NAME`: a subject that answers every case with the system prompt it was given, so what a test reads
    back is the prompt each subject was served with."""
    from tests.conftest import scripted_subject

    def said(job) -> str:
        return next((m["content"] for m in job.request.messages if m["role"] == "system"), "") or "-"

    with scripted_subject("echo", lambda spec: f"echo-{spec}", said) as kind:
        yield kind


def test_production_answers_with_the_prompts_it_was_promoted_with(tmp_path, capsys, echo_kind):
    """Editing the suites' candidate prompt served production a prompt it never shipped with (0%), and a candidate
    worse than production by 20 points was PROMOTED."""
    suites = tmp_path / "suites"
    task = ("kind: task\ncases: r.jsonl\nscorers: [{{contains: SHIP}}]\nprompt:\n  system: 'Answer.'\n"
            "  candidate: {{system: '{candidate}'}}\n")
    write(suites / "r.yaml", task.format(candidate="SHIP the ticket."))
    write(suites / "r.jsonl", "".join(json.dumps({"id": f"r{i}", "input": f"q{i}", "expected": "SHIP"}) + "\n"
                                      for i in range(20)))
    assert gate(tmp_path, "--baseline=echo:base", "--candidate=echo:v1", f"--ftgate-report-dir={tmp_path / 'r1'}") == 0
    assert promote(tmp_path, "r1") == 0
    record = json.loads((suites / "ftgate.promoted.json").read_text())
    assert record["prompts"] == {"r.yaml": {"system": "SHIP the ticket.", "few_shot": []}}
    capsys.readouterr()
    write(suites / "r.yaml", task.format(candidate="Route the ticket."))  # the next round's prompt, worse
    assert gate(tmp_path, "--candidate=echo:v2", f"--ftgate-report-dir={tmp_path / 'r2'}") == 1
    out = capsys.readouterr().out
    assert "production answers with the prompt it shipped with" in out and "verdict: BLOCKED" in out
    report = json.loads((tmp_path / "r2/report.json").read_text())
    assert {c["baseline"]["output"] for c in report["suites"][0]["cases"]} == {"SHIP the ticket."}


def test_a_promoted_model_that_is_not_here_is_said_as_the_records(tmp_path, capsys):
    """It read "--baseline=...: no such directory", though no --baseline was given."""
    project(tmp_path)
    base, good, better = (str(tmp_path / f"{n}.jsonl") for n in ("base", "good", "better"))
    assert gate(tmp_path, f"--baseline={base}", f"--candidate={good}", f"--ftgate-report-dir={tmp_path / 'r1'}") == 0
    assert promote(tmp_path, "r1") == 0
    Path(good).rename(tmp_path / "elsewhere.jsonl")
    capsys.readouterr()
    assert gate(tmp_path, f"--candidate={better}", f"--ftgate-report-dir={tmp_path / 'r2'}") == 6
    said = capsys.readouterr().err
    assert f"the promoted model {good}, which {tmp_path / 'suites/ftgate.promoted.json'} names as production" in said
    assert "--baseline" not in said and "a Hub id" in said and "a path inside the repository" in said


def test_the_trend_draws_one_measure_per_suite(tmp_path):
    """A red-phase "baseline passes" and a gate's "goldens regressed" were drawn on one axis as one series."""
    from pytest_ftgate import RunConfig, load_suite, run_gate
    from pytest_ftgate.report.view import build_view
    from pytest_ftgate.stores.history import TrendPoint

    suites = project(tmp_path)
    run = run_gate([load_suite(suites / "a.yaml")], RunConfig(baseline=str(tmp_path / "base.jsonl"), candidate=str(
        tmp_path / "good.jsonl"), cache_dir=None, progress=False, suites_dir=suites))
    measure = build_view(run).rows[0].measure
    past = {"a": [TrendPoint(1, "t1", 0.9, False, measure="baseline passes"), TrendPoint(2, "t2", 0.5, True, measure=measure)]}
    trend = build_view(run, past).trend["a"]
    assert [p.run_id for p in trend] == [2, 0] and all(p.measure == measure for p in trend)


def _leaky_project(root: Path) -> list[str]:
    questions = [f"How long does a refund for order {i} take to reach my card?" for i in range(6)]
    write(root / "suites/qa.yaml", "kind: format\ncases:\n" + "".join(
        f"  - {{id: q{i}, input: '{q}'}}\n" for i, q in enumerate(questions)) +
        "generate: {max_new_tokens: 3}\nscorers: [{regex: '.'}]\ngate: {min_pass_rate: 0.0}\n")
    return questions


def _train(root: Path, base: Path, data: Path, out: Path, epochs: int = 1):
    from pytest_ftgate.train.config import load_recipe
    from pytest_ftgate.train.trainer import train

    write(root / "recipe.yaml", f"method: sft\nmodel: {{base: {base}}}\n"
          f"data: {{train: {data}, eval_fraction: 0.2, max_length: 256}}\noutput_dir: {out}\n"
          "lora: {r: 4, alpha: 8, target_modules: [q_proj, v_proj]}\n"
          f"training: {{epochs: {epochs}, per_device_batch_size: 4, effective_batch_size: 4, learning_rate: 5.0e-3}}\n")
    return train(load_recipe(root / "recipe.yaml"))


def test_an_adapter_trained_on_suite_cases_behind_a_greeting_is_blocked_at_the_gate(tmp_path, tiny_base, capsys):
    """The bundled trainer, a few steps, on rows whose last user turn is a suite case after one greeting turn: the gate
    joined the user turns and compared whole rows, found none, and said "leakage: PASS"."""
    questions = _leaky_project(tmp_path)
    rows = [{"messages": [{"role": "user", "content": "Hi there!"}, {"role": "assistant", "content": "Hello! How can I help?"},
                          {"role": "user", "content": q}, {"role": "assistant", "content": "About five days."}]}
            for q in questions * 3]
    data = write(tmp_path / "train.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    _train(tmp_path, tiny_base, data, tmp_path / "leaky")
    capsys.readouterr()
    assert gate(tmp_path, f"--candidate={tmp_path / 'leaky'}", f"--ftgate-report-dir={tmp_path / 'r'}") == 1
    out = capsys.readouterr().out
    assert "leakage: BLOCK 6 suite case(s) appear in the candidate's training data: qa/q0 = " in out
    assert "train.jsonl:1 (exact, trained turn)" in out and "verdict: BLOCKED" in out


def test_a_resumed_run_carries_the_data_of_the_run_it_resumed_into_the_gate(tmp_path, tiny_base, capsys):
    """Training into the same directory with other data resumed from a checkpoint trained on exact copies of the
    cases; the manifest named only the new data, and the gate said "leakage: PASS"."""
    from pytest_ftgate.stores.manifest import read_manifest

    questions = _leaky_project(tmp_path)

    def rows(texts):
        return "".join(json.dumps({"messages": [{"role": "user", "content": t}, {"role": "assistant", "content": "ok"}]}) + "\n"
                       for t in texts)

    leaky = write(tmp_path / "leaky.jsonl", rows(questions * 3))
    clean = write(tmp_path / "clean.jsonl", rows(f"My parcel {i} arrived damaged, what now?" for i in range(18)))
    _train(tmp_path, tiny_base, leaky, tmp_path / "run", epochs=1)
    result = _train(tmp_path, tiny_base, clean, tmp_path / "run", epochs=3)
    assert result.resumed_from and result.steps_trained > 0  # the second run continued the first
    lineage = read_manifest(tmp_path / "run").data["lineage"]
    assert [Path(d["path"]).name for d in lineage] == ["leaky.jsonl", "clean.jsonl"]
    capsys.readouterr()
    assert gate(tmp_path, f"--candidate={tmp_path / 'run'}", f"--ftgate-report-dir={tmp_path / 'r'}") == 1
    out = capsys.readouterr().out
    assert "leakage: BLOCK" in out and "qa/q0 = " in out and "leaky.jsonl:1 (exact, trained turn)" in out
    assert "the data of 2 runs" not in out  # a block names the lines; the summary of a clean check names the runs


def golden_project(root: Path, n: int = 20) -> Path:
    suites = root / "suites"
    write(suites / "g.yaml", "kind: golden\ncases: g.jsonl\nscorers: [exact]\n")
    write(suites / "g.jsonl", "".join(json.dumps({"id": f"g{i}", "input": f"q{i}", "expected": f"x{i}"}) + "\n"
                                      for i in range(n)))
    for name, wrong in (("base", ()), ("prod", ()), ("next", (0, 1, 2))):
        write(root / f"{name}.jsonl", "".join(json.dumps({"id": f"g{i}", "output": "no" if i in wrong else f"x{i}",
                                                          "model": name}) + "\n" for i in range(n)))
    return suites


def test_a_golden_file_deleted_and_frozen_again_keeps_its_origin(tmp_path, capsys):
    """Deleting the golden file and freezing again, as the "no golden file" error says, wrote goldens with no origin,
    and max_drift stopped being checked."""
    suites = golden_project(tmp_path)
    base, prod, nxt = (str(tmp_path / f"{n}.jsonl") for n in ("base", "prod", "next"))
    assert gate(tmp_path, f"--baseline={base}", "--ftgate-update-goldens", f"--ftgate-report-dir={tmp_path / 'r0'}") == 0
    assert gate(tmp_path, f"--baseline={base}", f"--candidate={prod}", f"--ftgate-report-dir={tmp_path / 'r1'}") == 0
    assert promote(tmp_path, "r1") == 0
    first = json.loads((suites / "g.goldens.json").read_text())
    (suites / "g.goldens.json").unlink()
    assert gate(tmp_path, "--baseline=promoted", "--ftgate-update-goldens", f"--ftgate-report-dir={tmp_path / 'r2'}") == 0
    again = json.loads((suites / "g.goldens.json").read_text())
    assert again["origin"]["identity"] == first["baseline_identity"] and len(again["origin"]["goldens"]) == 20
    capsys.readouterr()
    # drift is bounded again: the next candidate loses 3 of the first model's 20 goldens (15%, over 10%)
    assert gate(tmp_path, f"--candidate={nxt}", "--ftgate-fail=golden:100%", f"--ftgate-report-dir={tmp_path / 'r3'}") == 1
    assert "drift since the first frozen goldens" in capsys.readouterr().out


def test_drift_in_another_dtype_leaves_out_what_production_fails_there_and_says_so(tmp_path):
    from pytest_ftgate.kinds.golden import decide_goldens
    from pytest_ftgate.stores.goldens import Origin, read_goldens, write_goldens
    from tests.plugin.test_eval_speed import _suite_result

    path = tmp_path / "g.goldens.json"
    origin = Origin("weights:base", "base", "then", {f"c{i}": None for i in range(40)}, "float32")
    frozen = _suite_result("float32", {f"c{i}": True for i in range(40)})
    write_goldens(path, frozen, None, origin)
    data = json.loads(path.read_text())  # the goldens' hashes are the cases' own; the origin's too
    data["origin"]["goldens"] = data["goldens"]
    data["baseline_identity"] = "weights:prod"
    path.write_text(json.dumps(data))
    golden = read_goldens(path)
    # in bfloat16 production fails c0..c4 (and so does the candidate): 5 of 40 is 12.5%, over the 10% drift bound
    baseline = _suite_result("bfloat16", {f"c{i}": i >= 5 for i in range(40)})
    candidate = _suite_result("bfloat16", {f"c{i}": i >= 5 for i in range(40)}, "candidate")
    decision = decide_goldens("g", {"max_regression": 0.05, "max_drift": 0.10}, baseline, candidate, golden)
    assert decision.status == "passed" and decision.figures["drift_k"] == 0 and decision.figures["drift_n"] == 35
    assert any("5 of the first frozen goldens (frozen in float32) that production fails in bfloat16 are not counted" in w
               for w in decision.warnings)


def test_goldens_bind_the_baselines_chat_template(tmp_path, tiny_base, tiny_adapter, capsys):
    shutil.copytree(tiny_base, tmp_path / "base")
    write(tmp_path / "suites/g.yaml", "kind: golden\ncases:\n" + "".join(f"  - {{id: g{i}, input: 'question {i}'}}\n"
                                                                       for i in range(4))
          + "generate: {max_new_tokens: 3}\nscorers: [{regex: '.'}]\n")
    base = f"--baseline={tmp_path / 'base'}"
    assert gate(tmp_path, base, "--ftgate-update-goldens", f"--ftgate-report-dir={tmp_path / 'r0'}") == 0
    assert "template" in json.loads((tmp_path / "suites/g.goldens.json").read_text())["definition"]
    template = tmp_path / "base/chat_template.jinja"
    template.write_text(template.read_text().replace("{{", "{{- ' ' }}{{", 1))  # another layout of every chat
    capsys.readouterr()
    assert gate(tmp_path, f"--candidate={tiny_adapter}", f"--ftgate-base={tmp_path / 'base'}",
                f"--ftgate-report-dir={tmp_path / 'r1'}") == 6
    assert "the baseline's chat template or tokenizer" in capsys.readouterr().out
