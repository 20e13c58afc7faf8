"""The plugin's behaviour through pytester: collection, options, exit codes, goldens, reports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pytest_ftgate.errors import EXIT_GATE_ERROR

QA = """\
kind: golden
cases:
{cases}
scorers: [contains]
"""

FMT = """\
kind: format
cases: fmt.jsonl
scorers:
  - json_schema: {schema: {type: object, required: [label], properties: {label: {enum: [a, b]}}}}
"""


def outputs(path, rows: dict[str, str]) -> None:
    path.write_text("".join(json.dumps({"id": k, "output": v}) + "\n" for k, v in rows.items()))


@pytest.fixture
def project(pytester: pytest.Pytester):
    """A project with a 60-case golden suite, a format suite, and baseline outputs."""
    cases = "\n".join(f"  - {{id: q{i}, input: 'question {i}', expected: 'a{i}'}}" for i in range(60))
    pytester.makefile(".yaml", **{"suites/qa": QA.format(cases=cases), "suites/fmt": FMT})
    (pytester.path / "suites/fmt.jsonl").write_text('{"id": "f1", "input": "x"}\n{"id": "f2", "input": "y"}\n')
    base = {f"q{i}": f"it is a{i}" for i in range(60)} | {"f1": "nope", "f2": '{"label": "a"}'}
    outputs(pytester.path / "base.jsonl", base)
    return pytester


def candidate(pytester, name: str, regress: int, fmt_ok: bool = True) -> str:
    rows = {f"q{i}": ("wrong" if i < regress else f"a{i}") for i in range(60)}
    rows |= {"f1": '{"label": "b"}' if fmt_ok else "no", "f2": '{"label": "a"}'}
    outputs(pytester.path / name, rows)
    return name


def test_help_lists_options(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*pytest-ftgate*", "*--candidate=SPEC*", "*--ftgate-fail=TARGET:VALUE*", "*ftgate_suites*"])


def test_help_and_ordinary_tests_do_not_import_torch(pytester):
    pytester.makepyfile(test_plain="def test_x():\n    assert 1\n")
    code = (
        "import sys, pytest\n"
        "pytest.main(['--help'])\n"
        "assert pytest.main(['-q', 'test_plain.py']) == 0\n"
        "print('TORCH_LOADED' if 'torch' in sys.modules else 'TORCH_ABSENT')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=pytester.path, capture_output=True, text=True, timeout=120)
    assert "TORCH_ABSENT" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_suites_collect_one_item_per_criterion(project):
    result = project.runpytest("suites", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["suites/fmt.yaml::pass_rate", "suites/qa.yaml::regressions"])
    assert result.ret == 0


def test_without_subjects_items_skip(project):
    result = project.runpytest("suites", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*no --candidate or --baseline given*"])


def test_baseline_alone_is_the_red_phase(project):
    result = project.runpytest("--baseline", "base.jsonl", "-rA")
    assert result.ret == 1
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "*BLOCKED: baseline 1/2 = 50.0%*< required 95.0%*",
        "*qa::regressions: SKIP no --candidate: the baseline passes 60/60; goldens not frozen yet*",
        "*baseline fails 1/2 in fmt:*",
        "*f1: nope*",
        "verdict: BASELINE-ONLY*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_golden_lifecycle(project):
    cand = candidate(project, "good.jsonl", regress=3)
    # 1. no golden file: the golden item errors and says how to create it; nothing is written
    result = project.runpytest("--baseline", "base.jsonl", "--candidate", cand)
    result.stdout.fnmatch_lines(["*the gate could not run: no golden file at*--ftgate-update-goldens*"])
    assert result.ret == EXIT_GATE_ERROR and not (project.path / "suites/qa.goldens.json").exists()
    # 2. freeze them explicitly
    result = project.runpytest("--baseline", "base.jsonl", "--ftgate-update-goldens", "-k", "qa")
    assert result.ret == 0
    frozen = json.loads((project.path / "suites/qa.goldens.json").read_text())
    assert len(frozen["goldens"]) == 60 and frozen["schema_version"] == 1
    # 3. a candidate with 3/60 regressions (5.0%) passes; 4/60 is blocked, with the flips shown
    result = project.runpytest("--baseline", "base.jsonl", "--candidate", cand)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*qa::regressions: PASS 3/60 goldens regressed = 5.0%*", "verdict: PROMOTED"])
    bad = candidate(project, "bad.jsonl", regress=4)
    result = project.runpytest("--baseline", "base.jsonl", "--candidate", bad)
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "*BLOCKED: 4/60 goldens regressed = 6.7%*at most 3 may regress at 5.0%*",
        "*flipped cases in qa (4):*",
        "*[[]PASS->FAIL[]] q0: question 0*",
        "*baseline:  it is a0*",
        "*candidate: wrong*",
        "verdict: BLOCKED",
    ])
    # 4. editing a regressed golden never takes it out of the count: the gate stops until re-frozen on purpose
    qa = (project.path / "suites/qa.yaml").read_text().replace("expected: 'a0'", "expected: 'A0!'")
    (project.path / "suites/qa.yaml").write_text(qa)
    result = project.runpytest("--baseline", "base.jsonl", "--candidate", bad)
    assert result.ret == EXIT_GATE_ERROR
    result.stdout.fnmatch_lines(["*1 golden case(s) changed since qa.goldens.json was frozen (q0: edited (*qa.yaml:*)*"
                                 "*--ftgate-update-goldens*"])
    changed = json.loads((project.path / ".ftgate/report/report.json").read_text())["suites"][1]["decisions"][0]["figures"]
    assert list(changed["changed"]) == ["q0"]
    # 5. re-frozen on purpose (q0's new hash; the tolerant scorer still passes the baseline on it): counted again
    assert project.runpytest("--baseline", "base.jsonl", "--ftgate-update-goldens", "-k", "qa").ret == 0
    result = project.runpytest("--baseline", "base.jsonl", "--candidate", cand, "-W", "ignore::pytest_ftgate.errors.FtgateWarning")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*3/60 goldens regressed*"])


def test_thresholds_from_ini_and_command_line(project):
    project.runpytest("--baseline", "base.jsonl", "--ftgate-update-goldens")
    bad = candidate(project, "bad.jsonl", regress=4)
    project.makeini("[pytest]\nftgate_fail = golden:10%\n")
    assert project.runpytest("--baseline", "base.jsonl", "--candidate", bad).ret == 0
    result = project.runpytest("--baseline", "base.jsonl", "--candidate", bad, "--ftgate-fail", "qa:2%")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*at most 1 may regress at 2.0%*"])


def test_bad_threshold_option_is_a_usage_error(project):
    result = project.runpytest("--ftgate-fail", "golden")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*is not TARGET:VALUE; write e.g. golden:5%*"])


def test_bad_suite_is_a_usage_error_without_traceback(project):
    (project.path / "suites/broken.yaml").write_text("kind: golden\ncases: [{input: x}]\nscorers: [exactly]\n")
    result = project.runpytest("--baseline", "base.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = result.stdout.str() + result.stderr.str()
    assert "broken.yaml:3: unknown scorer 'exactly'" in out
    assert "Traceback" not in out


def test_missing_outputs_are_an_error_not_a_pass(project):
    outputs(project.path / "partial.jsonl", {"q0": "a0", "q-old-1": "x", "f-renamed": "y"})
    result = project.runpytest("--baseline", "base.jsonl", "--candidate", "partial.jsonl")
    assert result.ret == EXIT_GATE_ERROR
    # the missing ids, and the ids the file holds that no case asks for (renamed cases?)
    result.stdout.fnmatch_lines(["*partial.jsonl has no output for 61 case(s)*It holds 2 id(s) that no case asks for: "
                                 "q-old-1, f-renamed*a gate on missing outputs would lie*"])
    assert "Traceback" not in result.stdout.str()


def test_k_selects_suites_and_only_they_are_evaluated(project):
    cand = candidate(project, "good.jsonl", regress=0)
    result = project.runpytest("--baseline", "base.jsonl", "--candidate", cand, "-k", "fmt")
    result.assert_outcomes(passed=1, deselected=1)
    report = json.loads((project.path / ".ftgate/report/report.json").read_text())
    assert [s["name"] for s in report["suites"]] == ["fmt"]


def test_reports_junit_and_step_summary(project, monkeypatch):
    summary = project.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    project.runpytest("--baseline", "base.jsonl", "--ftgate-update-goldens")
    cand = candidate(project, "good.jsonl", regress=1)
    result = project.runpytest("--baseline", "base.jsonl", "--candidate", cand, "--junitxml", "junit.xml", "--ftgate-report-dir", "out")
    assert result.ret == 0
    report = json.loads((project.path / "out/report.json").read_text())
    assert report["schema_version"] == 4 and report["verdict"] == "promoted"
    assert report["subjects"]["candidate"]["name"] == "good.jsonl" and report["run"]["machine"]["python"]
    from pytest_ftgate.machine.hardware import cpu_features  # which kernels ran: greedy text can differ between them

    assert report["run"]["machine"]["cpu_features"] == cpu_features()
    qa = next(s for s in report["suites"] if s["name"] == "qa")
    assert qa["comparison"]["pass_to_fail"] == 1 and qa["decisions"][0]["figures"]["n"] == 60
    assert "pytest-ftgate: promoted" in summary.read_text()
    junit = (project.path / "junit.xml").read_text()
    assert 'name="ftgate.qa.regressions.k" value="1"' in junit
    assert 'name="ftgate.qa.regressions.status" value="passed"' in junit
    result.stdout.fnmatch_lines(["report: */out/report.md"])


def test_non_adapter_candidate_needs_a_baseline(project, tiny_base):
    result = project.runpytest(f"--candidate={tiny_base}")
    assert result.ret == EXIT_GATE_ERROR
    result.stdout.fnmatch_lines(["*is not a PEFT adapter*pass --baseline*"])


def test_xdist_is_refused_with_a_reason(project):
    pytest.importorskip("xdist")
    result = project.runpytest("--baseline", "base.jsonl", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
