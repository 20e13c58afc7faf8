"""Perturbations shrunk by hypothesis: strategies, the search and its shrinking, invariants, the
cache and batching, the gate criterion, reports, suite validation, and a tiny model end to end.

A deterministic test subject answers with a pure function of its input, so every break here is
known in advance; what a random-weight model says is checked for mechanics only."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, find, settings
from hypothesis import strategies as st

from pytest_ftgate.settings.config import RunConfig
from pytest_ftgate.cost.pricing import ServingCost
from pytest_ftgate.errors import EXIT_GATE_ERROR, EXIT_PARTIAL, SuiteError
from pytest_ftgate.report import build_view, terminal_lines
from pytest_ftgate.report.html import render_html
from pytest_ftgate.report.json_report import to_json
from pytest_ftgate.report.markdown import to_markdown
from pytest_ftgate.gating.runner import run_gate
from pytest_ftgate.scoring.perturb import Invariant, PerturbSpec, Probe, isolated_hypothesis, plan, run_subject, search
from pytest_ftgate.scoring.perturb_strategies import (
    HOMOGLYPHS,
    INJECTIONS,
    KEYS,
    MAX_EDITS,
    STRATEGIES,
    describe_change,
)
from pytest_ftgate.scoring.scorers import build_scorer
from pytest_ftgate.stores.cache import Cache
from pytest_ftgate.subjects import Resolver, Subject
from pytest_ftgate.subjects import base as subjects_base
from pytest_ftgate.gating.suite import load_suite
from pytest_ftgate.types import Case, Output, SubjectInfo, content_hash
from tests.conftest import write

FOX = "the quick brown fox jumps over the lazy dog"


def one_swap_in_word3(text: str, original: str = FOX) -> bool:
    """True when `text` is `original` with exactly one pair of adjacent characters swapped, inside word 3."""
    if len(text) != len(original):
        return False
    diff = [i for i, (a, b) in enumerate(zip(text, original)) if a != b]
    start = len(" ".join(original.split(" ")[:2])) + 1
    end = start + len(original.split(" ")[2])
    return (len(diff) == 2 and diff[1] == diff[0] + 1 and start <= diff[0] and diff[1] < end
            and text[diff[0]] == original[diff[1]] and text[diff[1]] == original[diff[0]])


def breaks_on_swap_in_word3(text: str) -> bool:
    """The fake model's weakness: it fails when two adjacent characters of word 3 are swapped (other edits aside)."""
    words, original = text.split(" "), FOX.split(" ")
    if len(words) != len(original):
        return False
    a, b = words[2], original[2]
    diff = [i for i in range(len(b)) if len(a) == len(b) and a[i] != b[i]]
    return len(a) == len(b) and len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]


def fox_case(text: str = FOX, case_id: str = "fox") -> Case:
    return Case(case_id, ({"role": "user", "content": text},), expected="fine")


CONTAINS_FINE = build_scorer({"contains": "fine"}, Path("."))


# ---- strategies ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(STRATEGIES))
def test_each_strategy_is_a_no_op_at_size_zero(name):
    """hypothesis's simplest draw of a strategy (no edits, a cut of 0, no words injected) leaves the text as it is."""
    fn = STRATEGIES[name]
    with isolated_hypothesis():
        simplest = find(st.composite(lambda draw: fn(FOX, draw))(), lambda _: True,
                        settings=settings(database=None, deadline=None, phases=[Phase.generate, Phase.shrink]))
    assert simplest == FOX


PROPERTIES: dict[str, Callable[[str, str], bool]] = {
    "typos": lambda o, t: abs(len(t) - len(o)) <= MAX_EDITS and set(t) - set(o) <= set(KEYS),
    "case": lambda o, t: t.lower() == o.lower() and t != o,
    "whitespace": lambda o, t: "".join(t.split()) == "".join(o.split()),
    "punctuation": lambda o, t: [c for c in t if not unicodedata.category(c).startswith("P")]
    == [c for c in o if not unicodedata.category(c).startswith("P")],
    "confusables": lambda o, t: len(t) == len(o) and all(a == b or b in HOMOGLYPHS.get(a, "") for a, b in zip(o, t)),
    "truncate": lambda o, t: o.startswith(t) and 0 < len(t) < len(o),
    "inject": lambda o, t: any(i.split()[0] in t for i in INJECTIONS) and set(o.split()) <= set(t.split()),
}


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_each_strategy_changes_the_text_its_own_way_and_is_seeded(name):
    text = "Where is my parcel? I ordered the Orbit camera 14 days ago, and paid extra."
    spec = PerturbSpec(strategies=(name,), examples=25)
    drawn = plan("s", [fox_case(text)], spec, seed=7)
    assert len(drawn.probes) >= 15  # distinct perturbed inputs (duplicates of one text are drawn once)
    for p in drawn.probes:
        assert p.text != text and p.strategy == name
        assert PROPERTIES[name](text, p.text), (name, p.text)
    assert plan("s", [fox_case(text)], spec, seed=7) == drawn  # seeded: the same inputs again
    assert plan("s", [fox_case(text)], spec, seed=8).probes != drawn.probes


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_the_smallest_change_of_each_strategy_is_one_edit(name):
    found = search(fox_case(), (name,), 50, seed=1, condition=lambda p: True)
    assert found is not None and found.text != FOX
    assert describe_change(FOX, found.text).count(";") == 0, describe_change(FOX, found.text)


@pytest.mark.parametrize("text", ["ab", "Route: my card was charged twice"])
def test_typos_edit_at_most_three_characters(text):
    for p in plan("s", [fox_case(text)], PerturbSpec(strategies=("typos",), examples=40)).probes:
        assert abs(len(p.text) - len(text)) <= MAX_EDITS


def test_the_budget_is_spread_over_cases_and_deterministic():
    cases = [fox_case(f"{FOX} {i}", f"c{i}") for i in range(7)]
    drawn = plan("s", cases, PerturbSpec(strategies=("typos", "case"), examples=10), seed=3)
    assert sum(drawn.budget.values()) == 10 and set(drawn.budget.values()) == {1, 2}
    assert len(drawn.probes) <= 10 and {p.case.id for p in drawn.probes} == set(drawn.budget)
    assert plan("s", cases, PerturbSpec(strategies=("typos", "case"), examples=10), seed=3) == drawn


def test_an_input_a_strategy_cannot_change_draws_nothing():
    digits = fox_case("2345 678")
    assert plan("s", [digits], PerturbSpec(strategies=("confusables",), examples=5)).probes == ()
    assert search(digits, ("confusables",), 5, seed=0, condition=lambda p: True) is None


def test_describe_change_shows_look_alikes_and_swaps():
    assert describe_change(FOX, FOX.replace("brown", "rbown")) == "'br' -> 'rb' at 10"
    assert describe_change("paris", "p\u0430ris") == "'a' -> '\\u0430' at 1"
    assert describe_change("a", "a") == "no change"


# ---- the search, shrinking and invariants ------------------------------------------------------

def fox_generate(calls: list[int]) -> Callable[[Sequence[Probe]], list[str]]:
    def generate(probes: Sequence[Probe]) -> list[str]:
        calls.append(len(probes))
        return ["broken" if breaks_on_swap_in_word3(p.text) else "fine" for p in probes]

    return generate


def test_shrinking_finds_exactly_one_swap_in_word_three():
    spec = PerturbSpec(strategies=("typos",), examples=60)
    drawn = plan("s", [fox_case()], spec, seed=0)
    calls: list[int] = []
    result = run_subject("baseline", drawn, spec, Invariant("scorers", [CONTAINS_FINE]), {"fox": "fine"},
                         fox_generate(calls))
    assert result.broken >= 1 and result.counted == len(drawn.probes)
    (failure,) = result.failures  # one failing case, shrunk
    assert failure.shrunk and failure.strategy == "typos"
    assert one_swap_in_word3(failure.minimal_input), failure.minimal_input
    assert breaks_on_swap_in_word3(failure.drawn_input)
    assert failure.output == "broken" and failure.original_output == "fine"
    assert failure.original_input == FOX and "contains" in failure.detail
    assert calls[0] == len(drawn.probes)  # the drawn examples in one batch
    assert set(calls[1:]) <= {1} and len(calls) - 1 == failure.generations <= spec.shrink_generations


def test_shrinking_respects_its_generation_budget_and_count():
    spec = PerturbSpec(strategies=("typos",), examples=60, shrink=0)
    drawn = plan("s", [fox_case()], spec, seed=0)
    calls: list[int] = []
    result = run_subject("baseline", drawn, spec, Invariant("scorers", [CONTAINS_FINE]), {"fox": "fine"}, fox_generate(calls))
    assert len(calls) == 1 and not result.failures[0].shrunk  # shrink: 0 shows the failure as drawn
    tight = PerturbSpec(strategies=("typos",), examples=60, shrink_generations=2)
    calls.clear()
    result = run_subject("baseline", drawn, tight, Invariant("scorers", [CONTAINS_FINE]), {"fox": "fine"}, fox_generate(calls))
    assert len(calls) <= 3 and result.failures[0].generations <= 2
    assert breaks_on_swap_in_word3(result.failures[0].minimal_input)  # still a break: the best found in budget


LABEL = build_scorer({"label": {"labels": ["billing", "shipping"], "field": "label"}}, Path("."))


def test_label_unchanged_compares_with_the_original_label_not_the_expected_one():
    case = Case("t", ({"role": "user", "content": "my card was charged twice"},), expected="shipping")
    spec = PerturbSpec(strategies=("punctuation",), examples=30, invariant="label_unchanged")
    drawn = plan("s", [case], spec)

    def generate(probes):  # billing (wrong, but stable) unless a '!' appears
        return ['{"label": "shipping"}' if "!" in p.text else '{"label": "billing"}' for p in probes]

    original = '{"label": "billing"}'
    result = run_subject("baseline", drawn, spec, Invariant("label_unchanged", [LABEL]), {"t": original}, generate)
    assert result.counted == len(drawn.probes) and result.excluded == 0  # the original's label is wrong: still counted
    assert result.broken == sum("!" in p.text for p in drawn.probes) > 0
    (failure,) = result.failures
    assert failure.minimal_input.count("!") == 1 and len(failure.minimal_input) == len(case.messages[0]["content"]) + 1
    assert "'billing' became 'shipping'" in failure.detail
    # under `scorers` the same original fails its scorer (expected shipping): its examples are not counted
    scored = run_subject("baseline", drawn, PerturbSpec(strategies=("punctuation",), examples=30),
                         Invariant("scorers", [LABEL]), {"t": original}, generate)
    assert scored.counted == 0 and scored.excluded == len(drawn.probes)


def test_an_unreadable_label_counts_as_a_change_and_no_original_label_excludes():
    inv = Invariant("label_unchanged", [LABEL])
    case = Case("t", ({"role": "user", "content": "x"},))
    assert inv.reference(case, "not json") is None
    assert inv.broken(case, "billing", "not json")[0] is True
    assert inv.broken(case, "billing", '{"label": "billing"}') == (False, "")


def test_a_generation_fault_during_shrinking_is_raised_not_swallowed_by_hypothesis():
    spec = PerturbSpec(strategies=("typos",), examples=60)
    drawn = plan("s", [fox_case()], spec)

    def generate(probes):
        if len(probes) == 1:
            raise RuntimeError("endpoint gone")
        return ["broken" if breaks_on_swap_in_word3(p.text) else "fine" for p in probes]

    with pytest.raises(RuntimeError, match="endpoint gone"):
        run_subject("baseline", drawn, spec, Invariant("scorers", [CONTAINS_FINE]), {"fox": "fine"}, generate)


# ---- through run_gate: cache, batching, gating, reports ------------------------------------------

class RuleSubject(Subject):
    """A test subject whose answer is a pure function of the case's input; it counts its calls."""

    kind = "rule"

    def __init__(self, role: str, rule: Callable[[str], str], name: str):
        self.rule, self.calls = rule, []
        self.info = SubjectInfo(role, self.kind, name, content_hash(name))

    @classmethod
    def claims(cls, spec: str) -> bool:
        return spec.startswith("rule:")

    @classmethod
    def serving_cost(cls, info: Any, usage: Any, pricing: Any) -> ServingCost:
        return ServingCost.unknown("a test subject")

    def run(self, jobs, on_batch, progress=None) -> None:
        self.calls.append(len(jobs))
        on_batch([(i, Output(self.rule(j.request.messages[-1]["content"]), 5, 2, 0.01, batch_size=len(jobs)))
                  for i, j in enumerate(jobs)])


@pytest.fixture(autouse=True)
def rule_subject_kind(monkeypatch):
    monkeypatch.setitem(subjects_base._KINDS, "rule", RuleSubject)  # its cost model, for the TCO


def fox_suite(tmp_path: Path, perturb: str = "{strategies: [typos], examples: 240}") -> Path:
    cases = "\n".join(f"  - {{id: c{i}, input: '{FOX}', expected: fine}}" if i == 0 else
                      f"  - {{id: c{i}, input: 'ticket number {i} is about my order', expected: fine}}" for i in range(3))
    return write(tmp_path / "suites" / "fox.yaml",
                 f"name: fox\nkind: task\ncases:\n{cases}\nscorers: [contains]\nperturb: {perturb}\n")


def robust(text: str) -> str:
    return "fine"


def fragile(text: str) -> str:
    return "broken" if breaks_on_swap_in_word3(text) else "fine"


def gate(tmp_path: Path, base: Callable[[str], str], cand: Callable[[str], str] | None, perturb: str | None = None,
         cache: str = "cache"):
    suite = load_suite(fox_suite(tmp_path, perturb) if perturb else fox_suite(tmp_path))
    b = RuleSubject("baseline", base, f"base-{base.__name__}")
    c = RuleSubject("candidate", cand, f"cand-{cand.__name__}") if cand else None
    config = RunConfig(baseline="rule:b", candidate="rule:c" if cand else None, cache_dir=tmp_path / cache,
                       report_dir=None, progress=False, suites_dir=suite.path.parent)
    with resolver_of(config, b, c) as resolver:
        run = run_gate([suite], config, resolver)
    return run, b, c


@contextlib.contextmanager
def resolver_of(config: RunConfig, baseline: Subject, candidate: Subject | None):
    """A resolver that hands out subjects made here, for the specs rule:b and rule:c."""
    resolver = Resolver(config.subject_options, Cache(config.cache_dir))
    resolver.add("rule:b", "baseline", baseline)
    if candidate is not None:
        resolver.add("rule:c", "candidate", candidate)
    try:
        yield resolver
    finally:
        resolver.cache.close()


def perturbation(run):
    return next(d for d in run.decisions if d.criterion == "perturbation")


def test_a_candidate_that_breaks_more_often_than_the_baseline_is_blocked(tmp_path):
    run, _, _ = gate(tmp_path, robust, fragile)
    d = perturbation(run)
    assert d.status == "blocked" and "breaks more often than the baseline" in d.summary
    assert d.figures["baseline_broken"] == 0 and d.figures["candidate_broken"] >= 1
    assert [x.criterion for x in run.decisions] == ["vs_baseline", "perturbation"]
    assert run.verdict == "blocked" and all(x.status == "passed" for x in run.decisions if x is not d)


def test_equal_break_rates_pass(tmp_path):
    run, _, _ = gate(tmp_path, fragile, fragile)
    d = perturbation(run)
    assert d.figures["baseline_rate"] == d.figures["candidate_rate"] > 0 and d.status == "passed"
    assert run.verdict == "promoted"


def test_max_increase_tolerates_a_higher_rate(tmp_path):
    run, _, _ = gate(tmp_path, robust, fragile, "{strategies: [typos], examples: 240, max_increase: 0.5}")
    assert perturbation(run).status == "passed"


def test_red_phase_reports_the_rate_and_passes_unless_max_break_rate(tmp_path):
    run, _, _ = gate(tmp_path, fragile, None)
    d = perturbation(run)
    assert d.status == "passed" and d.figures["baseline_broken"] >= 1 and "baseline" in d.summary
    run, _, _ = gate(tmp_path, fragile, None, "{strategies: [typos], examples: 240, max_break_rate: 0.01}")
    d = perturbation(run)
    assert d.status == "blocked" and "above the 1.0% limit" in d.summary


def test_examples_are_generated_in_one_batch_and_a_rerun_generates_nothing(tmp_path):
    run, b, c = gate(tmp_path, fragile, fragile)
    planned = run.outcomes[0].features["perturb"].planned
    failures = run.outcomes[0].features["perturb"].subjects["candidate"].failures
    for subject in (b, c):
        assert subject.calls[0] == 3  # the suite's cases
        assert subject.calls[1] == planned  # every perturbed input, in one batch
        assert set(subject.calls[2:]) <= {1}  # shrinking: single generations
    assert len(c.calls[2:]) == sum(f.generations for f in failures)
    again, b2, c2 = gate(tmp_path, fragile, fragile)
    assert b2.calls == [] and c2.calls == []  # everything from the cache, the shrinks included
    assert summary(again) == summary(run)


def summary(run) -> list[tuple[Any, ...]]:
    """What a perturbation search found, without its timings."""
    result = run.outcomes[0].features["perturb"]
    return [(role, s.counted, s.broken, s.excluded, [(f.case_id, f.drawn_input, f.minimal_input, f.output, f.generations)
                                                    for f in s.failures]) for role, s in result.subjects.items()]


def test_an_outputs_file_cannot_answer_perturbations_and_only_that_criterion_errs(tmp_path):
    suite = load_suite(fox_suite(tmp_path))
    rows = "".join(json.dumps({"id": f"c{i}", "output": "fine"}) + "\n" for i in range(3))
    outputs = write(tmp_path / "base.jsonl", rows)
    run = run_gate([suite], RunConfig(baseline=str(outputs), cache_dir=tmp_path / "cache", report_dir=None, progress=False))
    d = perturbation(run)
    assert d.status == "error" and "outputs file holds answers to the cases only" in d.summary
    assert [x.status for x in run.decisions if x is not d] == ["skipped"]


def test_deselected_perturbation_does_not_search(tmp_path):
    suite = load_suite(fox_suite(tmp_path))
    b = RuleSubject("baseline", fragile, "b")
    config = RunConfig(baseline="rule:b", cache_dir=None, report_dir=None, progress=False)
    with resolver_of(config, b, None) as resolver:
        run = run_gate([suite], config, resolver, selection={suite.path: frozenset({"accuracy"})})
    assert b.calls == [3] and "perturb" not in run.outcomes[0].features
    assert run.not_run == ("fox::vs_baseline", "fox::perturbation")


def test_reports_show_the_minimal_input_beside_the_original(tmp_path):
    run, _, _ = gate(tmp_path, robust, fragile)
    view = build_view(run)
    ((section,),) = [d.sections for d in view.details]
    p = section.view
    (failure,) = p.failures
    assert failure.role == "candidate" and one_swap_in_word3(failure.minimal) and failure.original == FOX
    text = "\n".join(terminal_lines(view))
    assert f"minimal:  {failure.minimal}" in text and f"original: {FOX}" in text and failure.change in text
    assert "output (minimal):  broken" in text
    md = to_markdown(view)
    assert "Perturbations in fox" in md and failure.minimal in md
    data = to_json(view)["suites"][0]["perturbation"]
    assert data["failures"][0]["minimal"] == failure.minimal and data["subjects"]["candidate"]["broken"] >= 1
    html = render_html(view)
    for marker in ('id="verdict"', 'id="suites"', 'class="plot"', 'class="perturbations"', 'Perturbations in fox', failure.minimal):
        assert marker in html


def test_the_search_is_isolated_from_imports_and_from_time():
    """Local source constants and hypothesis's five-minute shrink limit are kept out, and put back after."""
    from hypothesis.internal.conjecture import engine, providers

    before = providers._get_local_constants, engine.MAX_SHRINKING_SECONDS
    with isolated_hypothesis():
        assert len(providers._get_local_constants()) == 0 and engine.MAX_SHRINKING_SECONDS > 10**6
    assert (providers._get_local_constants, engine.MAX_SHRINKING_SECONDS) == before


def test_no_hypothesis_directory_and_no_output_from_a_search(tmp_path):
    """A search with shrinking, in a fresh directory: nothing written there, nothing printed."""
    code = (
        "from tests.unit.test_perturb import *\n"
        "spec = PerturbSpec(strategies=tuple(STRATEGIES), examples=40)\n"
        "drawn = plan('s', [fox_case()], spec)\n"
        "spec = PerturbSpec(strategies=('typos',), examples=60)\n"
        "drawn = plan('s', [fox_case()], spec)\n"
        "r = run_subject('baseline', drawn, spec, Invariant('scorers', [CONTAINS_FINE]), {'fox': 'fine'}, fox_generate([]))\n"
        "assert r.failures[0].shrunk\n"
    )
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == "" and proc.stderr == ""
    assert not (tmp_path / ".hypothesis").exists() and list(tmp_path.iterdir()) == []


# ---- suite validation -----------------------------------------------------------------------------

BASE = "name: s\nkind: task\ncases:\n  - {id: a, input: hi, expected: billing}\nscorers: [{label: [billing, shipping]}]\n"


@pytest.mark.parametrize(("perturb", "line", "message"), [
    ("perturb:\n  strategies: [typos, typoz]\n", 7, "unknown perturbation strategy 'typoz'; known: typos, case"),
    ("perturb:\n  examples: 0\n", 7, "perturb examples must be a positive integer"),
    ("perturb:\n  examples: many\n", 7, "perturb examples must be a positive integer"),
    ("perturb:\n  examples: true\n", 7, "perturb examples must be a positive integer"),
    ("perturb:\n  invariant: robust\n", 7, "perturb invariant must be one of scorers, label_unchanged, got 'robust'"),
    ("perturb:\n  strategy: [typos]\n", 7, "unknown perturb key 'strategy'"),
    ("perturb: [typos]\n", 6, "perturb must be a mapping"),
    ("perturb:\n  strategies: []\n", 7, "perturb strategies must be a non-empty list"),
    ("perturb:\n  max_break_rate: 5\n", 7, "perturb max_break_rate must be a fraction"),
    ("perturb:\n  strategies: [{typos: 1}]\n", 7, "unknown perturbation strategy {'typos': 1}"),
    ("perturb:\n  shrink: -1\n", 7, "perturb shrink must be an integer >= 0"),
])
def test_bad_perturb_blocks_name_file_and_line(tmp_path, perturb, line, message):
    path = write(tmp_path / "s.yaml", BASE + perturb)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert f"{path}:{line}: " in str(info.value) and message in str(info.value)


def test_label_unchanged_needs_a_label_scorer(tmp_path):
    text = "name: s\nkind: task\ncases:\n  - {id: a, input: hi, expected: x}\nscorers: [exact]\nperturb:\n  invariant: label_unchanged\n"
    with pytest.raises(SuiteError, match=r"s.yaml:7: perturb invariant label_unchanged .* add a `label` or `choice` scorer"):
        load_suite(write(tmp_path / "s.yaml", text))


def test_every_perturb_problem_is_reported_at_once(tmp_path):
    path = write(tmp_path / "s.yaml", BASE + "perturb:\n  strategies: [typoz]\n  examples: -1\n  invariant: x\n")
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert [e.line for e in info.value.problems] == [7, 8, 9]


def test_a_valid_perturb_block_is_on_the_suite_with_its_defaults(tmp_path):
    suite = load_suite(write(tmp_path / "s.yaml", BASE + "perturb: {invariant: label_unchanged, examples: 12}\n"))
    assert suite.features["perturb"] == PerturbSpec(strategies=tuple(STRATEGIES), examples=12, invariant="label_unchanged")
    assert load_suite(write(tmp_path / "t.yaml", BASE)).features == {}


# ---- a tiny random-weight model, end to end through pytest ----------------------------------------

TINY = """\
name: tiny
kind: format
cases:
  - {id: a, input: "Route: my card was charged twice"}
  - {id: b, input: "Where is my parcel? It is late."}
  - {id: c, input: "The app crashes when I log in"}
generate: {max_new_tokens: 6}
scorers: [{regex: "[aeiou]"}]
gate: {min_pass_rate: 0.0}
perturb: {examples: 12, shrink: 1, shrink_generations: 8}
"""


@pytest.mark.filterwarnings("ignore")
def test_tiny_model_end_to_end_through_pytest(pytester, tiny_base, tiny_adapter):
    """Mechanics only: which inputs break depends on what random weights say on this CPU."""
    pytester.makefile(".yaml", **{"suites/tiny": TINY})
    args = (f"--candidate={tiny_adapter}", f"--ftgate-base={tiny_base}", "--ftgate-report-dir=out", "-p", "no:cacheprovider")
    result = pytester.runpytest(*args, "-rA")
    result.stdout.fnmatch_lines(["*tiny::perturbation: *", "perturbations in tiny (* inputs by typos, case*"])
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    # random weights: which verdict depends on what they say on this CPU, so it is read from this run's report;
    # the exit is the one that verdict has, and the verdict line says the same
    exits = {"promoted": 0, "blocked": 1, "error": EXIT_GATE_ERROR, "partial": EXIT_PARTIAL}
    assert result.ret == exits[report["verdict"]], result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines([f"verdict: {report['verdict'].upper()}*"])
    (suite,) = report["suites"]
    p = suite["perturbation"]
    assert 0 < p["planned"] <= 12 and set(p["subjects"]) == {"baseline", "candidate"}
    for s in p["subjects"].values():
        assert s["error"] is None and s["counted"] + s["excluded"] + s["unscored"] == p["planned"]
    for f in p["failures"]:
        assert f["minimal"] != f["original"] and f["strategy"] in STRATEGIES
    decision = next(d for d in suite["decisions"] if d["criterion"] == "perturbation")
    counted = {r: s["counted"] for r, s in p["subjects"].items()}
    if counted["baseline"] == 0:
        assert decision["status"] == "error" and "could not be evaluated" in decision["summary"]
    elif counted["candidate"] == 0:
        assert decision["status"] == "skipped" and "checked nothing" in decision["summary"]
    else:  # the one decision these measured rates have: blocked only when the candidate breaks more often
        rate = {r: s["broken"] / s["counted"] for r, s in p["subjects"].items()}
        assert decision["status"] == ("blocked" if rate["candidate"] > rate["baseline"] else "passed")
    assert not (pytester.path / ".hypothesis").exists()
    again = pytester.runpytest(*args)
    assert again.ret == result.ret
    rerun = json.loads((pytester.path / "out" / "report.json").read_text())["suites"][0]["perturbation"]

    def found(p: dict[str, Any]) -> Any:
        return ({r: (s["counted"], s["broken"]) for r, s in p["subjects"].items()},
                [{k: v for k, v in f.items() if k != "seconds"} for f in p["failures"]])

    assert found(rerun) == found(p)  # seeded: the same inputs, breaks and shrunk failures again


def test_a_perturb_block_is_part_of_what_the_suite_is(tmp_path):
    """The promotion contract compares suite hashes: a perturb: block edited after the gate is another suite."""
    strict = load_suite(write(tmp_path / "a.yaml", BASE + "perturb: {examples: 12, max_break_rate: 0.1}\n"))
    loose = load_suite(write(tmp_path / "a.yaml", BASE + "perturb: {examples: 12, max_break_rate: 0.9}\n"))
    plain = load_suite(write(tmp_path / "a.yaml", BASE))
    assert len({strict.hash, loose.hash, plain.hash}) == 3
    assert strict.definition == plain.definition  # what decides a golden's pass is not what a perturbation searches
