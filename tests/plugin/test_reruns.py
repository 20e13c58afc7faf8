"""Two runs on the same inputs give the same decisions and report; a nondeterministic serving stack
is an infrastructure error, found by --ftgate-rerun-check or the ftgate_rerun_check fixture."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_ftgate.cli import main
from pytest_ftgate.errors import EXIT_GATE_ERROR

COUNTER = itertools.count()


@pytest.fixture
def flaky_kind():
    """`flaky:NAME`: a subject whose answers change from one call to the next, as a batch-variant
    serving stack's do."""
    from tests.conftest import scripted_subject

    with scripted_subject("flaky", lambda spec: f"flaky-{next(COUNTER)}", lambda job: f"answer {next(COUNTER)}") as kind:
        yield kind


def project(root: Path) -> Path:
    (root / "suites").mkdir(parents=True)
    (root / "suites/t.yaml").write_text("kind: task\ncases:\n" + "".join(
        f"  - {{id: c{i}, input: q{i}, expected: a{i}}}\n" for i in range(12)) + "scorers: [exact]\n")
    for name, right in (("base", 5), ("cand", 9)):
        (root / f"{name}.jsonl").write_text("".join(
            json.dumps({"id": f"c{i}", "output": f"a{i}" if i < right else "?", "latency_s": 0.1 + i / 100,
                        "tokens_in": 20, "tokens_out": 3}) + "\n" for i in range(12)))
    return root


def without_timestamps(report: dict[str, Any]) -> dict[str, Any]:
    report = json.loads(json.dumps(report))
    for key in ("finished_at", "duration_s"):
        report["run"].pop(key)
    return report


def test_two_runs_give_the_same_decisions_and_report(tmp_path, capsys):
    root = project(tmp_path)
    reports = []
    for n in (1, 2):
        assert main(["gate", str(root / "suites"), f"--baseline={root / 'base.jsonl'}", f"--candidate={root / 'cand.jsonl'}",
                     f"--ftgate-report-dir={root / f'r{n}'}", f"--ftgate-cache-dir={root / 'cache'}"]) == 0
        reports.append(json.loads((root / f"r{n}/report.json").read_text()))
    capsys.readouterr()
    assert reports[0]["run"]["finished_at"] and without_timestamps(reports[0]) == without_timestamps(reports[1])


def test_two_runs_of_a_local_model_decide_alike(pytester, tiny_adapter):
    (pytester.path / "suites").mkdir()
    (pytester.path / "suites/s.yaml").write_text("kind: format\ncases:\n" + "".join(f"  - {{id: c{i}, input: 'word {i}'}}\n" for i in range(6))
                                                 + "generate: {max_new_tokens: 5}\nscorers: [{regex: '^.{0,12}$'}]\ngate: {min_pass_rate: 0.0}\n")
    reports = []
    for n in (1, 2):  # no cache: each run generates for itself
        result = pytester.runpytest(f"--candidate={tiny_adapter}", "--ftgate-no-cache", f"--ftgate-report-dir=r{n}", "-p", "no:cacheprovider")
        assert result.ret == 0
        reports.append(json.loads((pytester.path / f"r{n}/report.json").read_text()))
    decisions = [[(d["criterion"], d["status"], d["figures"].get("k")) for s in r["suites"] for d in s["decisions"]] for r in reports]
    outputs = [[(c["id"], c["baseline"]["output"], c["candidate"]["output"]) for s in r["suites"] for c in s["cases"]] for r in reports]
    assert decisions[0] == decisions[1] and outputs[0] == outputs[1]


def test_a_nondeterministic_stack_is_an_infrastructure_error(tmp_path, capsys, flaky_kind, tiny_base):
    root = project(tmp_path)
    code = main(["gate", str(root / "suites"), "--baseline=flaky:stack", f"--candidate={root / 'cand.jsonl'}",
                 "--ftgate-rerun-check=4", f"--ftgate-report-dir={root / 'r'}", "--ftgate-no-cache"])
    err = capsys.readouterr().err
    assert code == EXIT_GATE_ERROR and "flaky:stack is not deterministic: 4 of 4 greedy case(s)" in err
    assert "t/c0: 'answer" in err and not (root / "r/report.json").exists()
    # a deterministic model passes the same check and is gated
    (root / "suites/t.yaml").write_text("kind: format\ncases: [{id: a, input: hi}, {id: b, input: there}]\n"
                                        "generate: {max_new_tokens: 4}\nscorers: [{regex: '.*'}]\n")
    assert main(["gate", str(root / "suites"), f"--baseline={tiny_base}", "--ftgate-rerun-check=2",
                 f"--ftgate-report-dir={root / 'r'}", "--ftgate-no-cache"]) == 0  # '.*' passes every answer
    # and the check leaves its trace: what it checked, in the terminal and every report
    said = "rerun check: 2 greedy case(s) of"
    assert said in capsys.readouterr().out
    assert any(n.startswith(said) for n in json.loads((root / "r/report.json").read_text())["notices"])
    assert said in (root / "r/report.md").read_text() and said in (root / "r/report.html").read_text()


def test_the_rerun_check_as_a_fixture(pytester, tiny_base):
    pytester.makepyfile(test_mine="""
        def test_stack_is_deterministic(baseline, ftgate_rerun_check):
            ftgate_rerun_check(baseline, ["hello", "what is two plus two?", "route my ticket"], max_new_tokens=6)
    """)
    result = pytester.runpytest(f"--baseline={tiny_base}", "-p", "no:cacheprovider", "--ftgate-suites=none")
    result.assert_outcomes(passed=1)
