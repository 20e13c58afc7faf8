"""A corpus of bad inputs: each gives one clear error naming its file, line or option, a non-zero exit,
and neither a traceback nor a pass. Then fuzzing: random bytes and random structures into the YAML
and JSONL readers, the suite loader and every scorer, and nothing but our own errors comes out."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_ftgate.cli import main
from pytest_ftgate.errors import EXIT_GATE_ERROR, EXIT_USAGE, FtgateError

OK_CASES = '{"id": "a", "input": "x", "expected": "y"}\n'
GOOD = "kind: task\ncases: cases.jsonl\nscorers: [exact]\n"

# (name, suite YAML or bytes, cases JSONL or bytes, what the error must say)
SUITES: list[tuple[str, str | bytes, str | bytes, str]] = [
    ("yaml syntax", "kind: task\ncases: [\n", OK_CASES, "s.yaml:3: invalid YAML"),
    ("yaml binary", bytes(range(256)), OK_CASES, "not UTF-8 text"),
    ("yaml control character", b"kind: task\x00\n", OK_CASES, "s.yaml:1: invalid YAML"),
    ("yaml a list", "- kind: task\n", OK_CASES, "s.yaml:1: a suite file is a YAML mapping"),
    ("yaml empty", "", OK_CASES, "a suite file is a YAML mapping"),
    ("yaml duplicate key", "kind: task\ncases: cases.jsonl\nkind: format\nscorers: [exact]\n", OK_CASES,
     "s.yaml:3: duplicate key 'kind' (first at line 1)"),
    ("yaml nested too deeply", "kind: " + "[" * 5000 + "]" * 5000 + "\n", OK_CASES, "s.yaml"),
    ("yaml non-string key", "kind: task\ncases: cases.jsonl\nscorers: [exact]\n1: x\n", OK_CASES, "s.yaml:4: unknown key 1"),
    ("unknown key", GOOD + "modle: x\n", OK_CASES, "s.yaml:4: unknown key 'modle'"),
    ("unknown kind", GOOD.replace("task", "tsak"), OK_CASES, "s.yaml:1: kind must be one of"),
    ("kind not a string", GOOD.replace("task", "[task]"), OK_CASES, "s.yaml:1: kind must be one of"),
    ("missing cases", "kind: task\nscorers: [exact]\n", OK_CASES, "missing required key `cases:`"),
    ("cases a number", GOOD.replace("cases.jsonl", "7"), OK_CASES, "s.yaml:2: cases must be a JSONL file name or a list"),
    ("cases file missing", GOOD.replace("cases.jsonl", "nope.jsonl"), OK_CASES, "s.yaml:2: cases file 'nope.jsonl' not found"),
    ("cases file outside", GOOD.replace("cases.jsonl", "../../etc/passwd"), OK_CASES, "s.yaml:2: cases file '../../etc/passwd' is outside"),
    ("cases file absolute", GOOD.replace("cases.jsonl", "/etc/hostname"), OK_CASES, "is outside the suite's directory"),
    ("cases binary", GOOD, bytes(range(256)) * 4, "cases.jsonl:2: not UTF-8 text"),
    ("cases bad json", GOOD, OK_CASES + '{"id": "b", "input": \n', "cases.jsonl:2: not valid JSON"),
    ("case not an object", GOOD, OK_CASES + "[1, 2]\n", "cases.jsonl:2: a case is an object"),
    ("case unknown key", GOOD, OK_CASES + '{"id": "b", "inptu": "x", "expected": "y"}\n', "cases.jsonl:2: unknown case key(s) inptu"),
    ("case without input", GOOD, OK_CASES + '{"id": "b", "expected": "y"}\n', "cases.jsonl:2: a case needs exactly one of"),
    ("case input not text", GOOD, OK_CASES + '{"id": "b", "input": 5, "expected": "y"}\n', "cases.jsonl:2: `input` must be a string"),
    ("duplicate ids", GOOD, OK_CASES * 2, "cases.jsonl:2: duplicate case id 'a'"),
    ("no cases", GOOD, "\n\n", "s.yaml:2: the suite has no cases"),
    ("exact without expected", GOOD, '{"id": "a", "input": "x"}\n', "cases.jsonl:1: case 'a' has no `expected`"),
    ("unknown scorer", GOOD.replace("exact", "exactly"), OK_CASES, "s.yaml:3: unknown scorer 'exactly'"),
    ("regex does not compile", GOOD.replace("[exact]", "[{regex: '(('}]"), OK_CASES, "s.yaml:3: regex pattern '((' does not compile"),
    ("schema invalid", GOOD.replace("[exact]", "[{json_schema: {schema: {type: 12}}}]"), OK_CASES, "the JSON schema is itself invalid"),
    ("schema file outside", GOOD.replace("[exact]", "[{json_schema: {schema_file: ../x.json}}]"), OK_CASES,
     "schema_file '../x.json' is outside"),
    ("gate value a string", GOOD + "gate: {min_accuracy: high}\n", OK_CASES, "s.yaml:4: gate min_accuracy must be a fraction"),
    ("gate key of another kind", GOOD + "gate: {max_regression: 0.1}\n", OK_CASES, "s.yaml:4: gate key 'max_regression' does not apply"),
    ("max_new_tokens negative", GOOD + "generate: {max_new_tokens: -3}\n", OK_CASES, "s.yaml:4: max_new_tokens must be a positive integer"),
    ("goldens outside", "kind: golden\ncases: cases.jsonl\nscorers: [exact]\ngoldens: ../g.json\n", OK_CASES,
     "s.yaml:4: goldens file '../g.json' is outside"),
    ("judge without criteria", "kind: judge\ncases: cases.jsonl\njudge: {mode: rubric}\n", OK_CASES, "judge.criteria must say"),
]


def _project(tmp_path: Path, suite: str | bytes, cases: str | bytes) -> Path:
    root = tmp_path / "p" / "suites"
    root.mkdir(parents=True)
    for name, body in (("s.yaml", suite), ("cases.jsonl", cases)):
        (root / name).write_bytes(body if isinstance(body, bytes) else body.encode())
    return root


@pytest.mark.parametrize(("name", "suite", "cases", "needle"), SUITES, ids=[s[0] for s in SUITES])
def test_a_bad_suite_is_one_clear_error_in_check_and_gate(tmp_path, capsys, name, suite, cases, needle):
    root = _project(tmp_path, suite, cases)
    outputs = tmp_path / "out.jsonl"
    outputs.write_text(json.dumps({"id": "a", "output": "y"}) + "\n")
    for argv in (["check", str(root)], ["gate", str(root), f"--baseline={outputs}", f"--candidate={outputs}",
                                        f"--ftgate-report-dir={tmp_path / 'r'}", "--ftgate-no-cache"]):
        assert main(argv) == EXIT_USAGE, argv
        err = capsys.readouterr()
        text = err.out + err.err
        assert needle in text, text
        assert "Traceback" not in text and "PROMOTED" not in text
    assert not (tmp_path / "r" / "report.json").exists()


OTHER: list[tuple[str, list[str], str, int]] = [
    ("candidate does not exist", ["--candidate=nowhere/adapter"], "--candidate=nowhere/adapter", EXIT_GATE_ERROR),
    ("baseline outputs binary", ["--baseline=bin.jsonl", "--candidate=good.jsonl"], "bin.jsonl:1: each line must be", EXIT_GATE_ERROR),
    ("outputs missing a case", ["--baseline=partial.jsonl", "--candidate=good.jsonl"], "has no output for 1 case(s)", EXIT_GATE_ERROR),
    ("threshold not TARGET:VALUE", ["--baseline=good.jsonl", "--ftgate-fail=golden"], "is not TARGET:VALUE", EXIT_USAGE),
    ("threshold over 100%", ["--baseline=good.jsonl", "--ftgate-fail=golden:150%"], "between 0% and 100%", EXIT_USAGE),
    ("threshold for no suite", ["--baseline=good.jsonl", "--ftgate-fail=nosuch:5%"], "'nosuch' is neither a suite nor a kind", EXIT_USAGE),
    ("batch size zero", ["--baseline=good.jsonl", "--ftgate-batch-size=0"], "must be at least 1", EXIT_USAGE),
    ("pricing file broken", ["--baseline=good.jsonl", "--ftgate-pricing=price.yaml"], "price.yaml:1: `requests_per_day`", EXIT_USAGE),
    ("pricing file missing", ["--baseline=good.jsonl", "--ftgate-pricing=gone.yaml"], "pricing file not found", EXIT_USAGE),
    ("judge spec empty", ["--baseline=good.jsonl", "--candidate=good.jsonl", "--ftgate-judge=openai:"], "", EXIT_GATE_ERROR),
    ("judge missing", ["--baseline=good.jsonl", "--candidate=other.jsonl"], "has no judge: set judge.model", EXIT_USAGE),
    ("judge cannot judge", ["--baseline=good.jsonl", "--candidate=other.jsonl", "--ftgate-judge=good.jsonl"],
     "--ftgate-judge=good.jsonl: a outputs subject cannot judge", EXIT_GATE_ERROR),
    ("outputs latency not a number", ["--baseline=lat.jsonl", "--candidate=good.jsonl"],
     "lat.jsonl:1: `latency_s` must be a number of seconds >= 0 or absent, got 'fast'", EXIT_GATE_ERROR),
    ("pricing serving not a mapping", ["--baseline=good.jsonl", "--ftgate-pricing=serving.yaml"],
     "serving.yaml:2: `serving` must be a mapping", EXIT_USAGE),
    ("report dir under a file", ["--baseline=good.jsonl", "--ftgate-report-dir=good.jsonl/r"],
     "--ftgate-report-dir=", EXIT_USAGE),
    ("cache dir under a file", ["--baseline=good.jsonl", "--ftgate-cache-dir=good.jsonl/c"],
     "--ftgate-cache-dir=", EXIT_USAGE),
]


@pytest.mark.parametrize(("name", "args", "needle", "code"), OTHER, ids=[o[0] for o in OTHER])
def test_bad_subjects_and_options_are_clear_errors(pytester, name, args, needle, code):
    (pytester.path / "suites").mkdir()
    (pytester.path / "suites/s.yaml").write_text("kind: task\ncases: [{id: a, input: x, expected: y}]\nscorers: [exact]\n")
    if "judge" in name:
        (pytester.path / "suites/j.yaml").write_text("kind: judge\ncases: [{id: a, input: x}]\n"
                                                     "judge: {mode: rubric, criteria: c, self_test: false}\n")
    (pytester.path / "good.jsonl").write_text(json.dumps({"id": "a", "output": "y"}) + "\n")
    (pytester.path / "other.jsonl").write_text(json.dumps({"id": "a", "output": "z"}) + "\n")
    (pytester.path / "lat.jsonl").write_text(json.dumps({"id": "a", "output": "y", "latency_s": "fast"}) + "\n")
    (pytester.path / "serving.yaml").write_text("requests_per_day: 10\nserving: 3\n")
    (pytester.path / "bin.jsonl").write_bytes(bytes(range(256)))
    (pytester.path / "partial.jsonl").write_text(json.dumps({"id": "zz", "output": "y"}) + "\n")
    (pytester.path / "price.yaml").write_text("requests_per_day: -1\nserving: {usd_per_hour: 1}\n")
    result = pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider")
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == code, text[-3000:]
    assert needle in text and "Traceback" not in text and "PROMOTED" not in text


def test_the_corpus_is_thirty_kinds_or_more():
    assert len(SUITES) + len(OTHER) >= 30


# ---- fuzzing -----------------------------------------------------------------------------------

FUZZ = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
yaml_ish = st.text(alphabet=string.printable + "\u00e9\u200b\u202e{}[]:-&*!|>'\"#", max_size=300)
values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
                      lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                      max_leaves=12)
SUITE_KEYS = ["name", "kind", "cases", "scorers", "gate", "prompt", "generate", "judge", "goldens", "description"]
structures = st.dictionaries(st.sampled_from(SUITE_KEYS), values, max_size=7)


def _load(tmp_path: Path, suite: bytes, cases: bytes | None = None) -> None:
    from pytest_ftgate.gating.suite import load_suite

    (tmp_path / "s.yaml").write_bytes(suite)
    (tmp_path / "cases.jsonl").write_bytes(cases if cases is not None else OK_CASES.encode())
    try:
        load_suite(tmp_path / "s.yaml")
    except FtgateError:
        pass  # our own error, with a message: the only thing allowed out


@FUZZ
@given(text=yaml_ish)
def test_fuzz_the_suite_loader_with_yaml_like_text(tmp_path_factory, text):
    _load(tmp_path_factory.mktemp("f"), text.encode())


@FUZZ
@given(data=st.binary(max_size=400))
def test_fuzz_the_yaml_and_jsonl_readers_with_bytes(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("f")
    _load(tmp, data)
    _load(tmp, GOOD.encode(), data)


@FUZZ
@given(structure=structures)
def test_fuzz_the_suite_loader_with_structures(tmp_path_factory, structure):
    import yaml

    _load(tmp_path_factory.mktemp("f"), yaml.safe_dump(structure, allow_unicode=True).encode())


@FUZZ
@given(lines=st.lists(values, max_size=5))
def test_fuzz_cases_files_with_json_values(tmp_path_factory, lines):
    blob = "".join(json.dumps(v) + "\n" for v in lines).encode()
    _load(tmp_path_factory.mktemp("f"), GOOD.encode(), blob)


SCORER_SPECS = ["exact", {"exact": {"normalize": True}}, "contains", {"contains": "word"}, {"regex": "^a"}, "json_valid",
                {"json_schema": {"schema": {"type": "object", "required": ["label"]}}}, {"label": {"labels": ["a", "b"], "field": "label"}},
                {"choice": ["yes", "no"]}, "refusal", {"refusal": "comply"}, {"length": {"max_words": 3}}, {"rouge": {"metric": "rougeL"}}]


@FUZZ
@given(output=st.text(max_size=200), expected=values)
def test_fuzz_every_scorer_returns_a_score_for_any_output(output, expected):
    from pytest_ftgate.scoring.scorers import build_scorer
    from pytest_ftgate.types import Case, Score

    case = Case("c", ({"role": "user", "content": "q"},), expected)
    for spec in SCORER_SPECS:
        score = build_scorer(spec, Path("."))(case, output)
        assert isinstance(score, Score) and score.passed in (True, False, None)
