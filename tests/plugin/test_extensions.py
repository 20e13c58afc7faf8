"""Third parties extend ftgate as they extend pytest: a package with entry points in the groups
`ftgate.scorers`, `ftgate.subjects`, `ftgate.kinds` and `ftgate.reports`, found at start-up, written
against the public module pytest_ftgate.extend alone. No file of ours is edited."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from pytest_ftgate.errors import EXIT_USAGE

EXTENSION = '''
from pytest_ftgate.extend import (Criterion, GateKey, Option, Output, ReportFormat, Score, Scorer, ServingCost, Subject,
                                  SubjectInfo, SuiteKind, decide_min_rate, fraction, rate_headline, register_kind,
                                  register_report_format, register_scorer, register_subject)


@register_scorer("shouted")
def shouted(args, suite_dir):
    def score(case, output):
        ok = output.isupper()
        return Score(ok, float(ok), "" if ok else f"not shouted: {output!r}", "shouted")
    return Scorer("shouted", score)


@register_subject
class Echo(Subject):
    """echo:upper or echo:lower answers with the question, shouted or not."""

    kind = "echo"
    options = (Option("--ftgate-echo-suffix", "ftgate_echo_suffix", field="echo_suffix", metavar="TEXT", default="",
                      help="appended to every echo. Default: nothing"),)

    @classmethod
    def claims(cls, spec):
        return spec.startswith("echo:")

    @classmethod
    def build(cls, spec, role, ctx):
        return cls(spec.removeprefix("echo:"), role, ctx.options.echo_suffix)

    @classmethod
    def serving_cost(cls, info, usage, pricing):
        return ServingCost.unknown("an echo costs nothing we can price")

    def __init__(self, mode, role, suffix):
        self.mode, self.suffix = mode, suffix
        self.info = SubjectInfo(role, self.kind, f"echo:{mode}", f"echo-{mode}-{suffix}")

    def run(self, jobs, on_batch, progress=None):
        said = [j.case.messages[-1]["content"] for j in jobs]
        on_batch([(i, Output((s.upper() if self.mode == "upper" else s.lower()) + self.suffix)) for i, s in enumerate(said)])


# a suite kind: the share of answers a support desk may send as they are, against its own gate key
register_kind(SuiteKind(
    name="sendable",
    description="the share of answers that can be sent to a customer as they are",
    gate_keys=(GateKey("min_sendable", fraction, "least share of answers that can be sent", 0.9),),
    main_key="min_sendable",
    criteria=lambda gate, suite: (Criterion("sendable", lambda ctx: decide_min_rate(ctx, "sendable", ctx.gate["min_sendable"])),),
    headline=rate_headline("sendable"),
))


# a report format: one line per suite, for a chat message
def _chat(view):
    return "".join(f"{row.suite}: {row.decision}\\n" for row in view.rows) + f"verdict: {view.verdict}\\n"


register_report_format(ReportFormat("chat", "report.chat.txt", _chat, "one line per suite"))
'''


def install(site: Path, name: str, module: str, entry_points: str) -> None:
    """A distribution on sys.path as pip would leave it: the module and its dist-info with entry points."""
    (site / f"{name}.py").write_text(module)
    info = site / f"{name.replace('_', '-')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def site(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = pytester.path / "site"
    site.mkdir()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p))
    return site


def test_an_installed_package_adds_a_scorer_a_subject_kind_a_suite_kind_and_a_report_format(pytester, site):
    install(site, "ftgate_echo", EXTENSION, "[ftgate.scorers]\nshouted = ftgate_echo\n\n[ftgate.subjects]\necho = ftgate_echo\n\n"
                                            "[ftgate.kinds]\nsendable = ftgate_echo\n\n[ftgate.reports]\nchat = ftgate_echo\n")
    (pytester.path / "suites").mkdir()
    (pytester.path / "suites/loud.yaml").write_text(
        "kind: format\ncases:\n  - {id: a, input: 'Where is my order?'}\n  - {id: b, input: 'Refund please'}\n"
        "scorers: [shouted]\ngate: {min_pass_rate: 1.0}\n")
    (pytester.path / "suites/desk.yaml").write_text(
        "kind: sendable\ncases:\n  - {id: c, input: 'Hello'}\nscorers: [shouted]\ngate: {min_sendable: 1.0}\n")
    helped = pytester.runpytest_subprocess("--help", "-p", "no:cacheprovider")
    assert "--ftgate-echo-suffix" in helped.stdout.str(), helped.stderr.str()
    result = pytester.runpytest_subprocess("--baseline=echo:lower", "--candidate=echo:upper", "--ftgate-echo-suffix=!",
                                           "--ftgate-report-format=chat,markdown", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["candidate: echo:upper [[]echo *", "*desk::sendable: PASS candidate 1/1*",
                                 "*loud::pass_rate: PASS candidate 2/2*", "verdict: PROMOTED"])
    out = pytester.path / ".ftgate/report"
    assert sorted(p.name for p in out.iterdir()) == ["report.chat.txt", "report.json", "report.md"]  # json always
    assert (out / "report.chat.txt").read_text() == "desk: passed\nloud: passed\nverdict: promoted\n"
    report = json.loads((out / "report.json").read_text())
    assert [s["kind"] for s in report["suites"]] == ["sendable", "format"]
    cases = report["suites"][1]["cases"]
    assert [c["candidate"]["output"] for c in cases] == ["WHERE IS MY ORDER?!", "REFUND PLEASE!"]  # its own option
    assert [c["baseline"]["scores"][0]["detail"] for c in cases][0] == "not shouted: 'where is my order?!'"
    blocked = pytester.runpytest_subprocess("--baseline=echo:upper", "--candidate=echo:lower", "-p", "no:cacheprovider")
    assert blocked.ret == 1
    blocked.stdout.fnmatch_lines(["*desk::sendable: BLOCK*"])
    unknown = pytester.runpytest_subprocess("--baseline=echo:upper", "--ftgate-report-format=pdf", "-p", "no:cacheprovider")
    assert unknown.ret == EXIT_USAGE
    unknown.stderr.fnmatch_lines(["*--ftgate-report-format pdf: no such report format; the formats are chat, github-summary, "
                                  "html, json, markdown*"])


def test_a_broken_extension_is_named_not_a_traceback(pytester, site):
    install(site, "ftgate_broken", "raise ImportError('needs torch-nightly')\n", "[ftgate.scorers]\nbroken = ftgate_broken\n")
    (pytester.path / "suites").mkdir()
    (pytester.path / "suites/s.yaml").write_text("kind: format\ncases: [{id: a, input: x}]\nscorers: [json_valid]\n")
    result = pytester.runpytest_subprocess("--baseline=echo:x", "-p", "no:cacheprovider")
    assert result.ret == EXIT_USAGE
    result.stderr.fnmatch_lines(["*the ftgate.scorers extension broken = ftgate_broken (from ftgate-broken 0.1) failed to "
                                 "load: ImportError: needs torch-nightly*"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    # a project's ordinary tests never hear of it; `ftgate check` names it as the gate does
    pytester.makepyfile(test_ok="def test_ok():\n    pass\n")
    assert pytester.runpytest_subprocess("test_ok.py", "-p", "no:cacheprovider").ret == 0
    check = pytester.run(sys.executable, "-m", "pytest_ftgate.cli", "check", "suites")
    assert check.ret == EXIT_USAGE
    check.stderr.fnmatch_lines(["*the ftgate.scorers extension broken = ftgate_broken*failed to load*"])
