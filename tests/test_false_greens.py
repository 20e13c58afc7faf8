"""Each way a gate could read green without having checked what was asked (issue: "no false greens")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_ftgate.cli import main
from pytest_ftgate.errors import EXIT_GATE_ERROR, EXIT_PARTIAL, EXIT_USAGE

GOLDEN = "kind: golden\ncases:\n{cases}\nscorers: [contains]\n"


def outputs(path: Path, rows: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": k, "output": v}) + "\n" for k, v in rows.items()))
    return path


def golden_suite(directory: Path, name: str, ids: list[str]) -> None:
    cases = "\n".join(f"  - {{id: {i}, input: 'q {i}', expected: 'a{i}'}}" for i in ids)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.yaml").write_text(GOLDEN.format(cases=cases))


@pytest.fixture
def two_projects(pytester: pytest.Pytester) -> tuple[Path, Path]:
    """`other`: a project with a pyproject.toml, its own suites, and outputs under .ftgate/.
    `mine`: the user's own directory of suites, without an ini file, where pytest is run."""
    other, mine = pytester.path / "other", pytester.path / "mine"
    golden_suite(other / "suites", "theirs", ["t0", "t1"])
    (other / "pyproject.toml").write_text("[tool.pytest.ini_options]\nftgate_fail = ['golden:50%']\n")
    outputs(other / ".ftgate/runs/cand.jsonl", {"t0": "a0", "t1": "a1", "m0": "wrong", "m1": "wrong"})
    outputs(other / ".ftgate/runs/base.jsonl", {"t0": "a0", "t1": "a1", "m0": "am0", "m1": "am1"})
    golden_suite(mine / "suites", "mine", ["m0", "m1"])
    return other, mine


def test_an_option_value_apart_from_its_flag_never_gates_another_projects_suites(two_projects, pytester, monkeypatch):
    other, mine = two_projects
    cand, base = other / ".ftgate/runs/cand.jsonl", other / ".ftgate/runs/base.jsonl"
    monkeypatch.chdir(mine)
    # `--candidate PATH`: pytest would take PATH for a test path and pick other/pyproject.toml: refused
    result = pytester.runpytest_subprocess("--candidate", str(cand), "--baseline", str(base), "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*took the value of --candidate ({cand}) for a test path*{other / 'pyproject.toml'}*"
                                 f"*--candidate={cand}*"])
    assert "PROMOTED" not in result.stdout.str()
    assert not (other / ".ftgate/report").exists() and not (other / ".pytest_cache").exists()
    # `--candidate=PATH`: the user's suites are gated, and the reports are written here
    outputs(mine / "base.jsonl", {"m0": "am0", "m1": "am1"})
    result = pytester.runpytest_subprocess("--ftgate-update-goldens", "--baseline=base.jsonl", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    result = pytester.runpytest_subprocess(f"--candidate={cand}", "--baseline=base.jsonl", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["ftgate: 1 suite file(s) collected: suites/mine.yaml", "verdict: BLOCKED"])
    assert result.ret == 1
    assert (mine / ".ftgate/report/report.json").exists() and not (other / ".ftgate/report").exists()


def test_an_empty_suites_directory_never_promotes(pytester, tmp_path, capsys):
    (pytester.path / "suites").mkdir()
    outputs(pytester.path / "base.jsonl", {"a": "x"})
    result = pytester.runpytest("--baseline=base.jsonl", "--candidate=base.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no suites found in*suites*a gate that checks nothing cannot promote*"])
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["gate", str(empty), "--baseline", str(pytester.path / "base.jsonl")]) == EXIT_USAGE
    assert main(["check", str(empty)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count(f"no suites found in {empty}") == 2 and "PROMOTED" not in err


def test_a_deselected_criterion_makes_the_run_partial_never_promoted(pytester):
    golden_suite(pytester.path / "suites", "qa", ["q0", "q1"])
    (pytester.path / "suites/fmt.yaml").write_text("kind: format\ncases: [{id: f0, input: x}]\nscorers: [json_valid]\n")
    rows = {"q0": "aq0", "q1": "aq1", "f0": "{}"}
    outputs(pytester.path / "base.jsonl", rows)
    outputs(pytester.path / "cand.jsonl", {**rows, "f0": '{"a": 1}'})
    assert pytester.runpytest("--baseline=base.jsonl", "--ftgate-update-goldens").ret == 0
    summary = pytester.path / "summary.md"
    args = ("--baseline=base.jsonl", "--candidate=cand.jsonl", "-k", "fmt", "-W", "ignore::pytest_ftgate.errors.FtgateWarning")
    result = pytester.runpytest(*args, f"--ftgate-report-dir={pytester.path / 'out'}")
    assert result.ret == EXIT_PARTIAL  # what ran passed, but it is not a promotion, and CI must not read it as one:
    result.stdout.fnmatch_lines(["*qa::regressions: NOT RUN (deselected)", "verdict: PARTIAL*not a promotion*qa::regressions*"])
    report = json.loads((pytester.path / "out/report.json").read_text())
    assert report["verdict"] == "partial" and report["not_run"] == ["qa::regressions"]
    md = (pytester.path / "out/report.md").read_text()
    assert "pytest-ftgate: partial: not a promotion" in md and "pytest-ftgate: promoted" not in md and "`qa::regressions`" in md
    assert summary.exists() is False
    assert pytester.runpytest(*args, "--ftgate-allow-partial").ret == 0  # a selection made on purpose
    # the name people see is the name they select
    result = pytester.runpytest("--baseline=base.jsonl", "--candidate=base.jsonl", "-k", "qa", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["suites/qa.yaml::regressions", "*1/2 tests collected (1 deselected)*"])


def test_an_unknown_suite_in_a_threshold_is_refused(pytester):
    golden_suite(pytester.path / "suites", "qa", ["q0"])
    outputs(pytester.path / "base.jsonl", {"q0": "aq0"})
    result = pytester.runpytest("--baseline=base.jsonl", "--ftgate-fail=nosuchsuite:5%")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*nosuchsuite:0.05*'nosuchsuite' is neither a suite nor a kind. Suites here: qa; kinds: *golden*"])
    pytester.makeini("[pytest]\nftgate_fail = typo:5%\n")
    result = pytester.runpytest("--baseline=base.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini ftgate_fail typo:0.05*neither a suite nor a kind*"])


def test_the_ftgate_fixture_skips_without_subjects_like_candidate(pytester):
    pytester.makepyfile(test_mine=(
        "def test_gate(ftgate):\n    ftgate.run('suites/x.yaml')\n\n"
        "def test_model(candidate):\n    candidate.generate('hi')\n"
    ))
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*no --candidate or --baseline given*"])
    assert "Traceback" not in result.stdout.str()


def test_an_adapter_whose_base_is_missing_is_a_gate_error_not_a_block(pytester, tiny_adapter, monkeypatch):
    import shutil

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    golden_suite(pytester.path / "suites", "qa", ["q0"])
    adapter = Path(shutil.copytree(tiny_adapter, pytester.path / "adapter"))
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(pytester.path / "gone")
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    result = pytester.runpytest("--candidate=adapter")
    assert result.ret == EXIT_GATE_ERROR
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the gate could not run:*gone*no such directory*--ftgate-base=PATH*",
                                 "verdict: ERROR*could not run*"])
    assert "Traceback" not in result.stdout.str()


def test_goldens_frozen_on_another_base_are_never_used(pytester):
    golden_suite(pytester.path / "suites", "qa", ["q0", "q1"])
    outputs(pytester.path / "base.jsonl", {"q0": "aq0", "q1": "aq1"})
    outputs(pytester.path / "other-base.jsonl", {"q0": "aq0", "q1": "aq1", "x": "another model's file"})
    assert pytester.runpytest("--baseline=base.jsonl", "--ftgate-update-goldens").ret == 0
    frozen = json.loads((pytester.path / "suites/qa.goldens.json").read_text())
    result = pytester.runpytest("--baseline=other-base.jsonl", "--candidate=base.jsonl")
    assert result.ret == EXIT_GATE_ERROR
    result.stdout.fnmatch_lines([f"*was frozen on another base model ({frozen['baseline_identity']}) than this baseline*"
                                 "*--ftgate-update-goldens*"])
    assert json.loads((pytester.path / "suites/qa.goldens.json").read_text()) == frozen  # never rewritten by a run
    legacy = {k: v for k, v in frozen.items() if k != "baseline_identity"}
    (pytester.path / "suites/qa.goldens.json").write_text(json.dumps(legacy))
    result = pytester.runpytest("--baseline=base.jsonl", "--candidate=other-base.jsonl")
    assert result.ret == EXIT_GATE_ERROR
    result.stdout.fnmatch_lines(["*does not record which base model it was frozen on*refreeze*"])
    assert pytester.runpytest("--baseline=base.jsonl", "--ftgate-update-goldens").ret == 0  # re-freezing mends it
    quiet = ("-W", "ignore::pytest_ftgate.errors.FtgateWarning")  # two goldens are too few to resolve 5%
    outputs(pytester.path / "cand.jsonl", {"q0": "aq0", "q1": "aq1", "x": "the candidate's file"})
    assert pytester.runpytest("--baseline=base.jsonl", "--candidate=cand.jsonl", *quiet).ret == 0
