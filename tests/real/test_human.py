"""Blind human evaluation through `ftgate human export|import`: a gate report becomes a blind A/B
sheet, raters' files come back, are checked line by line, unblinded, summarised, and stored as the
SUITE.human.jsonl labels that the judge kind calibrates on."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from pytest_ftgate.cli import main as ftgate
from pytest_ftgate.human.export import balanced_order
from pytest_ftgate.stats import wilson_interval

# The form in a real browser: Debian's headless Chromium through Selenium, as for report.html.
from tests.real.test_report_browser import _load, browser  # noqa: F401

QA = "kind: golden\ncases:\n{cases}\nscorers: [contains]\n"
FMT = """\
kind: format
cases: fmt.jsonl
scorers:
  - json_schema: {schema: {type: object, required: [label], properties: {label: {enum: [a, b]}}}}
"""
INJECTION = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'
BASE = {f"q{i}": f"it is a{i}" for i in range(10)} | {
    "f0": "nope", "f1": INJECTION, "f2": '{"label": "a"}', "f3": '=HYPERLINK("x")'}
CAND = {f"q{i}": "wrong" if i < 2 else f"a{i}" for i in range(9)} | {
    "q9": "it is a9",  # the same text as the baseline's: nothing to compare, left out
    "f0": '{"label": "a"}', "f1": '{"label": "b"}', "f2": '{"label": "a"}',  # f2 too
    "f3": "- a list\n- over two lines"}
RATED = ["f0", "f1", "f3"] + [f"q{i}" for i in range(9)]  # suites in file order: fmt, qa
FLIPS = {"q0", "q1", "f0", "f1"}
COLUMNS = ["case", "suite", "input", "reference", "output_a", "output_b",
           "preference", "score_a", "score_b", "comment", "rater", "sheet"]


def _outputs(path: Path, rows: dict[str, str]) -> None:
    path.write_text("".join(json.dumps({"id": k, "output": v}) + "\n" for k, v in rows.items()), encoding="utf-8")


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project gated once from its own directory, so report.json records relative suite paths."""
    root = tmp_path_factory.mktemp("gated")
    (root / "suites").mkdir()
    cases = "\n".join(f"  - {{id: q{i}, input: 'question {i}', expected: 'a{i}'}}" for i in range(10))
    (root / "suites/qa.yaml").write_text(QA.format(cases=cases), encoding="utf-8")
    (root / "suites/fmt.yaml").write_text(FMT, encoding="utf-8")
    fmt_cases = "".join(json.dumps({"id": f"f{i}", "input": f"route {i}"}) + "\n" for i in range(4))
    (root / "suites/fmt.jsonl").write_text(fmt_cases, encoding="utf-8")
    _outputs(root / "base.jsonl", BASE)
    _outputs(root / "cand.jsonl", CAND)
    common = ["--baseline=base.jsonl", "--ftgate-cache-dir=.ftgate/cache"]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        assert ftgate(["gate", "suites/qa.yaml", *common, "--ftgate-update-goldens",
                       "--ftgate-report-dir=out/freeze"]) == 0
        assert ftgate(["gate", "suites", *common, "--candidate=cand.jsonl", "--ftgate-report-dir=out/run"]) == 1
    return root


@pytest.fixture
def project(gated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the gated project; the commands run from elsewhere, as a reviewer's would."""
    root = tmp_path / "project"
    shutil.copytree(gated, root)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    return root


def export(project: Path, *args: str, out: str = "human") -> tuple[Path, dict[str, Any]]:
    assert ftgate(["human", "export", str(project / "out/run/report.json"), "--out", str(project / out), *args]) == 0
    return project / out, json.loads((project / out / "key.json").read_text(encoding="utf-8"))


def human_import(*args: str | Path) -> int:
    return ftgate(["human", "import", *map(str, args)])


def sheet_rows(out: Path) -> list[dict[str, str]]:
    with (out / "sheet.csv").open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def fill(out: Path, path: Path, rate: Callable[[dict[str, str]], dict[str, str]], delimiter: str = ",") -> list[int]:
    """A rater's file: the sheet with rate(row)'s cells filled in. Returns each row's first line number."""
    rows = sheet_rows(out)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), delimiter=delimiter, lineterminator="\r\n")
    writer.writeheader()
    starts = []
    for row in rows:
        starts.append(buf.getvalue().count("\n") + 1)
        writer.writerow(row | rate(row))
    path.write_text(buf.getvalue(), encoding="utf-8")
    return starts


def side(key: dict[str, Any]) -> dict[str, str]:
    return {c["case"]: c["candidate"] for c in key["cases"]}


def other(letter: str) -> str:
    return "B" if letter == "A" else "A"


def pro(key: dict[str, Any]) -> Callable[[dict[str, str]], dict[str, str]]:
    """Prefers the candidate (a tie on f1), scores it 5 and the baseline 2."""
    cand = side(key)

    def rate(row: dict[str, str]) -> dict[str, str]:
        c = cand[row["case"]]
        return {"preference": "tie" if row["case"] == "f1" else c, f"score_{c.lower()}": "5",
                f"score_{other(c).lower()}": "2", "rater": "pro"}
    return rate


def con(key: dict[str, Any]) -> Callable[[dict[str, str]], dict[str, str]]:
    """Prefers the baseline (a tie on q2), gives no scores, leaves the rater column empty."""
    cand = side(key)
    return lambda row: {"preference": "TIE" if row["case"] == "q2" else other(cand[row["case"]]).lower()}


def unblinded(rater: str) -> list[str]:
    """What pro and con said of each case in RATED, in the key's terms."""
    if rater == "pro":
        return ["tie" if c == "f1" else "candidate" for c in RATED]
    return ["tie" if c == "q2" else "baseline" for c in RATED]


def table_row(text: str, scope: str) -> list[str]:
    """A row of the win-rate table: scope, cases, ratings, cand, tie, base, win rate, interval, (method)."""
    line = next(line for line in text.splitlines() if line.split(" ", 1)[0] == scope)
    return line.split(None, 7)


def span(low: float, high: float) -> str:
    return f"{100 * low:.1f}%–{100 * high:.1f}%"


def cohen(a: list[str], b: list[str]) -> float:
    """Cohen's kappa from its definition, a reference for statsmodels."""
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    chance = sum((a.count(k) / n) * (b.count(k) / n) for k in set(a) | set(b))
    return (observed - chance) / (1 - chance)


def labels(path: Path) -> dict[str, dict[str, Any]]:
    """The labels without the digests of the answers they rate (checked in test_labels_name_the_answers_they_rate)."""
    out = {}
    for e in map(json.loads, path.read_text(encoding="utf-8").splitlines()):
        human = dict(e["human"])
        digests = human.pop("outputs", None)
        assert digests is None or set(digests) == {"candidate", "baseline"}
        out[e["id"]] = human
    return out


def test_labels_name_the_answers_they_rate(project, capsys):
    """So that the judge never calibrates on labels of an earlier candidate's answers."""
    from pytest_ftgate.human.ratings import output_digest

    out, key = export(project, "--seed", "7")
    fill(out, project / "pro.csv", pro(key))
    assert human_import(project / "pro.csv", "--key", out / "key.json") == 0
    report = json.loads((project / "out/run/report.json").read_text())
    case = next(c for s in report["suites"] if s["name"] == "qa" for c in s["cases"] if c["id"] == "q0")
    line = next(e for e in map(json.loads, (project / "suites/qa.human.jsonl").read_text().splitlines()) if e["id"] == "q0")
    assert line["human"]["outputs"] == {"candidate": output_digest(case["candidate"]["output"]),
                                        "baseline": output_digest(case["baseline"]["output"])}


def test_round_trip_unblinds_win_rates_and_writes_labels(project, capsys):
    out, key = export(project, "--seed", "7")
    assert [c["case"] for c in key["cases"]] == RATED
    assert key["identical"] == [{"suite": "fmt", "case": "f2"}, {"suite": "qa", "case": "q9"}]
    (project / "suites/qa.human.jsonl").write_text('{"id": "older", "human": {"preference": "tie"}}\n')
    fill(out, project / "pro.csv", pro(key))
    fill(out, project / "con.csv", con(key), delimiter=";")  # a spreadsheet in a ';' locale
    capsys.readouterr()

    assert human_import(project / "pro.csv", "--key", out / "key.json") == 0
    text = capsys.readouterr().out
    qa = wilson_interval(9, 9)
    assert table_row(text, "qa") == ["qa", "9", "9", "9", "0", "0", "100.0%", f"{span(qa.low, qa.high)} (wilson)"]
    overall = wilson_interval(Fraction(23, 2), 12)  # 11 wins and a tie of 12
    assert table_row(text, "overall")[1:] == ["12", "12", "11", "1", "0", "95.8%",
                                              f"{span(overall.low, overall.high)} (wilson, ties half)"]
    assert "the raters prefer the candidate" in text and "agreement: one rater" in text
    qa_labels = labels(project / "suites/qa.human.jsonl")
    assert list(qa_labels) == ["older"] + RATED[3:]  # merged: what was there stays
    assert qa_labels["q0"] == {"preference": "candidate", "score_candidate": 5, "score_baseline": 2, "raters": 1}
    assert labels(project / "suites/fmt.human.jsonl")["f1"] == {
        "preference": "tie", "score_candidate": 5, "score_baseline": 2, "raters": 1}

    assert human_import(project / "con.csv", "--key", out / "key.json") == 0
    text = capsys.readouterr().out
    assert table_row(text, "overall")[1:7] == ["12", "12", "0", "1", "11", "4.2%"]
    assert "the raters prefer the baseline" in text

    assert human_import(project / "pro.csv", project / "con.csv", "--key", out / "key.json") == 0
    text = capsys.readouterr().out
    # per case the mean of two votes: q2 (1 + 1/2)/2, f1 (1/2 + 0)/2, every other case 1/2
    assert table_row(text, "overall")[1:7] == ["12", "24", "11", "2", "11", "50.0%"]
    assert "no preference shown at 95%" in text
    assert f"Cohen's kappa {cohen(unblinded('pro'), unblinded('con')):.2f} over the 12 case(s)" in text, text
    for suite, n in (("qa", 9), ("fmt", 3)):
        assert (f"labels: {project / 'suites' / suite}.human.jsonl: {n} case(s) (0 new): pro's labels {n} replaced "
                f"(rated again); con's labels {n} replaced (rated again)\n") in text, text
    qa_labels = labels(project / "suites/qa.human.jsonl")
    assert qa_labels["q2"] == {"preference": "candidate", "score_candidate": 5, "score_baseline": 2, "raters": 2}
    assert qa_labels["q3"]["preference"] == "tie"
    assert labels(project / "suites/fmt.human.jsonl")["f1"]["preference"] == "baseline"


def test_three_raters_get_fleiss_kappa_and_suites_dir_overrides(project, tmp_path, capsys):
    out, key = export(project, "--seed", "1")
    files = []
    for name, rate in (("p1", pro(key)), ("p2", pro(key)), ("c1", con(key))):
        files.append(project / f"{name}.csv")
        fill(out, files[-1], lambda row, rate=rate, name=name: rate(row) | {"rater": name})
    moved = tmp_path / "moved-suites"
    shutil.copytree(project / "suites", moved)
    assert human_import(*files, "--key", out / "key.json", "--suites", moved) == 0
    text = capsys.readouterr().out
    assert "3 rater(s) (p1, p2, c1), 36 ratings of 12 cases" in text
    assert re.search(r"agreement: Fleiss' kappa -?\d\.\d\d over the 12 case\(s\) all 3 raters rated", text), text
    assert (moved / "qa.human.jsonl").exists() and not (project / "suites/qa.human.jsonl").exists()
    assert labels(moved / "qa.human.jsonl")["q0"]["raters"] == 3


def test_order_is_seeded_balanced_and_the_sheet_is_blind(project):
    out7, key7 = export(project, "--seed", "7", out="s7")
    again, key7b = export(project, "--seed", "7", out="s7b")
    _, key8 = export(project, "--seed", "8", out="s8")
    assert (out7 / "sheet.csv").read_bytes() == (again / "sheet.csv").read_bytes()
    assert side(key7) == side(key7b) and key7["seed"] == 7
    assert side(key7) != side(key8) and key7["sheet"]["id"] != key8["sheet"]["id"]
    for key in (key7, key8):
        for suite in ("qa", "fmt"):
            picks = [c["candidate"] for c in key["cases"] if c["suite"] == suite]
            assert abs(picks.count("A") - picks.count("B")) <= 1, (suite, picks)
    subjects = key7["subjects"]
    secrets = ["baseline", "candidate", "base.jsonl", "cand.jsonl", "report.json",
               subjects["baseline"]["fingerprint"][:8], subjects["candidate"]["fingerprint"][:8]]
    for sheet in ("sheet.csv", "sheet.html"):
        text = (out7 / sheet).read_text(encoding="utf-8").lower()
        assert not [s for s in secrets if s.lower() in text], sheet
    assert sorted(p.name for p in out7.iterdir()) == ["key.json", "sheet.csv", "sheet.html"]
    _, key_default = export(project, out="random")
    assert isinstance(key_default["seed"], int)  # drawn, and recorded so the order can be rebuilt


def test_balanced_order_is_close_to_half_for_any_size():
    for n in range(60):
        flags = balanced_order(n, random.Random(n))
        assert len(flags) == n and abs(2 * sum(flags) - n) <= 1


def test_sheet_columns_suites_and_only_flips(project):
    out, key = export(project, "--seed", "3", "--only-flips")
    rows = sheet_rows(out)
    assert {r["case"] for r in rows} == FLIPS and list(rows[0]) == COLUMNS
    assert all(r["preference"] == r["score_a"] == r["comment"] == "" and r["sheet"] == key["sheet"]["id"] for r in rows)
    out, key = export(project, "--seed", "3", "--suite", "fmt", out="fmt")
    rows = {r["case"]: r for r in sheet_rows(out)}
    assert set(rows) == {"f0", "f1", "f3"} and set(key["suites"]) == {"fmt"}
    f3 = rows["f3"]["output_a"] if side(key)["f3"] == "A" else rows["f3"]["output_b"]
    assert f3 == "'- a list\n- over two lines"  # a leading '-' would be a formula in a spreadsheet
    assert "'=HYPERLINK" in rows["f3"]["output_a"] + rows["f3"]["output_b"]


def test_the_html_form_is_self_contained(project):
    out, _ = export(project, "--seed", "7")
    html = (out / "sheet.html").read_text(encoding="utf-8")
    head, rest = html.split('<script type="application/json" id="sheet-data">')
    payload, tail = rest.split("</script>", 1)
    assert "<" not in payload and "\\u003cscript\\u003edocument.title" in payload  # outputs travel as escaped JSON
    page = head + tail  # the markup and code without the cases' text (f1's output names src=x on purpose)
    assert not re.search(r"https?:|//[a-z0-9]", html, re.IGNORECASE)
    external = r"<(link|img|iframe|object|embed|audio|video|source)\b|\b(src|href)\s*=|@import"
    assert not re.search(external, page, re.IGNORECASE)
    assert not re.search(r"\burl\(", page)  # CSS url(); URL.createObjectURL is the download's own blob
    assert len(re.findall(r"<script\b", page)) == 1  # the inline form script; the other holds the data


BAD_ROWS = {  # the change to q2's row -> the error that names its line
    "unknown case": ({"case": "q99"}, "case 'q99' of suite 'qa' is not in the sheet this key unblinds"),
    "bad preference": ({"preference": "C"}, "preference 'C' for case 'q2' of suite 'qa' is not A, B or tie"),
    "score out of range": ({"score_b": "7"}, "score_b '7' is not a whole number from 1 to 5 (or empty)"),
    "score not a number": ({"score_a": "four"}, "score_a 'four' is not a whole number from 1 to 5 (or empty)"),
    "scores without preference": ({"preference": "", "score_a": "3"},
                                  "case 'q2' of suite 'qa' has scores but no preference: choose A, B or tie"),
    "another sheet": ({"sheet": "0123456789ab"}, "this row is from sheet 0123456789ab, but the key"),
    "edited output": (lambda row: {"output_a": row["output_a"] + " (fixed)"},
                      "case 'q2' of suite 'qa': its input or answers differ from the exported sheet"),
}


@pytest.mark.parametrize("case", BAD_ROWS)
def test_every_bad_row_is_reported_with_file_and_line(project, capsys, case):
    change, message = BAD_ROWS[case]
    out, key = export(project, "--seed", "7")
    path, rate = project / "ratings.csv", pro(key)

    def rate_with_change(row: dict[str, str]) -> dict[str, str]:
        if row["case"] != "q2":
            return rate(row)
        return rate(row) | (change(row) if callable(change) else change)

    starts = fill(out, path, rate_with_change)  # f3's two-line output shifts q2 below its row number
    assert human_import(path, "--key", out / "key.json") == 4
    err = capsys.readouterr().err
    assert f"{path}:{starts[RATED.index('q2')]}: {message}" in err, err
    assert "nothing was imported" in err and "Traceback" not in err
    assert not list(project.glob("suites/*.human.jsonl"))


@pytest.mark.parametrize("case", ["duplicate row", "same rater twice", "missing column", "not utf-8", "empty",
                                  "blank sheet", "short row", "no key", "not a key", "same file twice",
                                  "damaged labels file", "suite file gone"])
def test_bad_files_are_reported(project, capsys, case):
    out, key = export(project, "--seed", "7")
    ratings, key_path = project / "r.csv", out / "key.json"
    starts = fill(out, ratings, pro(key))
    files = [ratings]
    lines = ratings.read_text(encoding="utf-8").splitlines(keepends=True)
    q1 = RATED.index("q1")
    if case == "duplicate row":
        ratings.write_text("".join(lines + lines[starts[q1] - 1:starts[q1 + 1] - 1]), encoding="utf-8")
        expected = (f"{ratings}:{len(lines) + 1}: rater 'pro' rated case 'q1' of suite 'qa' twice "
                    f"(first at {ratings}:{starts[q1]})")
    elif case == "same rater twice":
        files.append(project / "r2.csv")
        fill(out, files[1], pro(key))
        expected = f"{files[1]}:2: rater 'pro' rated case 'f0' of suite 'fmt' twice (first at {ratings}:2)"
    elif case == "missing column":
        ratings.write_text(lines[0].replace("preference", "pref") + "".join(lines[1:]), encoding="utf-8")
        expected = f"{ratings}:1: no column preference: a ratings file is the sheet from `ftgate human export`"
    elif case == "not utf-8":
        ratings.write_bytes("case,suite\nq0,caf\u00e9\n".encode("cp1252"))
        expected = f"{ratings}: not UTF-8 text: save it from the spreadsheet as 'CSV UTF-8'"
    elif case == "empty":
        ratings.write_text("", encoding="utf-8")
        expected = f"{ratings}: empty file"
    elif case == "blank sheet":
        shutil.copy(out / "sheet.csv", ratings)
        expected = f"{ratings}: no row has a preference: fill the preference column (A, B or tie)"
    elif case == "short row":
        ratings.write_text(lines[0] + "q0,qa,oops\r\n", encoding="utf-8")
        expected = f"{ratings}:2: 3 cells where the header has 12"
    elif case == "no key":
        key_path = project / "missing.json"
        expected = f"{key_path}: no such key file"
    elif case == "not a key":
        key_path = project / "out/run/report.json"
        expected = f"{key_path}: not a usable key (it is not a key written by `ftgate human export`)"
    elif case == "same file twice":
        files.append(ratings)
        expected = f"{ratings}: given twice (also as {ratings})"
    elif case == "damaged labels file":  # found before any labels file is written, qa's included
        (project / "suites/fmt.human.jsonl").write_text('{"id": "f0", "human": {}}\n{"id": \n', encoding="utf-8")
        expected = f"{project / 'suites/fmt.human.jsonl'}:2: not valid JSON"
    else:
        shutil.rmtree(project / "suites")
        expected = "suite 'fmt': its file suites/fmt.yaml is not at"
    assert human_import(*files, "--key", key_path) == 4
    err = capsys.readouterr().err
    assert expected in err, err
    assert "Traceback" not in err
    damaged = {"fmt.human.jsonl"} if case == "damaged labels file" else set()
    assert {p.name for p in project.glob("suites/*.human.jsonl")} == damaged  # nothing written
    assert case != "suite file gone" or "give its directory with --suites DIR" in err


def test_bad_export_input_is_a_clear_error(project, capsys):
    report = str(project / "out/run/report.json")
    assert ftgate(["human", "export", str(project / "out/freeze/report.json"), "--out", "x"]) == 4
    assert "this report has no candidate (a baseline-only run)" in capsys.readouterr().err
    assert ftgate(["human", "export", report, "--out", "x", "--suite", "nope"]) == 4
    assert "--suite nope: not in this report; its suites are fmt, qa" in capsys.readouterr().err
    assert ftgate(["human", "export", str(project / "base.jsonl"), "--out", "x"]) == 4
    assert "not a readable report.json of a gate run (not valid JSON" in capsys.readouterr().err


def test_the_command_exits_without_a_traceback(project):
    """The real `ftgate` process, not main() in this one: an error is one message and exit status 4."""
    out, _ = export(project, "--seed", "7")
    path = project / "bad.csv"
    fill(out, path, lambda row: {"preference": "maybe"})
    command = [sys.executable, "-m", "pytest_ftgate.cli", "human", "import", str(path), "--key", str(out / "key.json")]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=project, check=False)
    assert proc.returncode == 4 and "Traceback" not in proc.stderr
    assert (f"ftgate: error: 12 problem(s) in the ratings; nothing was imported:\n"
            f"  {path}:2: preference 'maybe'") in proc.stderr


def _downloaded(folder: Path, timeout_s: float = 20) -> Path:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = [p for p in folder.glob("*.csv") if not p.name.endswith(".crdownload")]
        if done:
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no CSV downloaded into {folder}: {list(folder.iterdir())}")


def test_the_form_in_a_browser_rates_downloads_and_imports(browser, project, tmp_path, capsys):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    out, key = export(project, "--seed", "7")
    page = out / "sheet.html"
    loaded = _load(browser, page)
    assert loaded["requests"] == [page.as_uri()], f"sheet.html fetched {loaded['requests']}"
    assert not [e for e in loaded["console"] if e["level"] == "SEVERE"], loaded["console"]
    assert browser.title.startswith("Blind comparison")  # the markup in f1's output did not run
    f1 = browser.find_element(By.CSS_SELECTOR, 'article[data-case="f1"]').text
    assert "<script>" in f1 and 'onerror="document.title' in f1  # it is shown as text
    assert len(browser.find_elements(By.CSS_SELECTOR, "article.case")) == len(RATED)

    def field(element_id: str) -> Any:  # centred, clear of the fixed download bar at the bottom
        element = browser.find_element(By.ID, element_id)
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        return element

    q0, q1 = RATED.index("q0"), RATED.index("q1")
    field("rater").send_keys("dana")
    field(f"preference-{q0}-A").click()
    Select(field(f"score-a-{q0}")).select_by_value("4")
    field(f"preference-{q1}-tie").click()
    field(f"comment-{q1}").send_keys('both "fine", really')
    assert browser.find_element(By.ID, "progress").text == f"2 of {len(RATED)} cases rated"
    browser.refresh()  # the choices survive a reload (restored by the page's script once it has loaded)
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 10).until(lambda b: field(f"preference-{q0}-A").is_selected())
    assert field("rater").get_attribute("value") == "dana"

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    field("download").click()
    csv_file = _downloaded(downloads)
    assert csv_file.name == f"ratings-dana-{key['sheet']['id']}.csv"

    capsys.readouterr()
    assert human_import(csv_file, "--key", out / "key.json") == 0
    text = capsys.readouterr().out
    assert "1 rater(s) (dana), 2 ratings of 2 cases" in text and f"{len(RATED) - 2} unrated row(s) skipped" in text
    a_is = "candidate" if side(key)["q0"] == "A" else "baseline"
    assert labels(project / "suites/qa.human.jsonl") == {
        "q0": {"preference": a_is, "score_candidate": 4 if a_is == "candidate" else None,
               "score_baseline": None if a_is == "candidate" else 4, "raters": 1},
        "q1": {"preference": "tie", "score_candidate": None, "score_baseline": None, "raters": 1}}
    with csv_file.open(encoding="utf-8-sig", newline="") as fh:
        comment = next(r for r in csv.DictReader(fh) if r["case"] == "q1")["comment"]
    assert comment == 'both "fine", really'


def test_low_kappa_with_high_agreement_is_explained(project, capsys):
    """The prevalence effect: one label dominates, so chance agreement is high and kappa low."""
    out, key = export(project, "--seed", "7")
    cand = side(key)
    base = lambda row: {"preference": other(cand[row["case"]])}  # noqa: E731
    fill(out, project / "ann.csv", lambda row: base(row) | {"rater": "ann"})
    fill(out, project / "ben.csv", lambda row: ({"preference": cand["q0"]} if row["case"] == "q0" else base(row))
         | {"rater": "ben"})
    capsys.readouterr()
    assert human_import(project / "ann.csv", project / "ben.csv", "--key", out / "key.json") == 0
    text = capsys.readouterr().out
    # 11 of 12 cases agree; ann says baseline 12 times, ben 11: p_e = 1 x 11/12, kappa (p_o - p_e)/(1 - p_e) = 0
    assert "Cohen's kappa 0.00 over the 12 case(s) all 2 raters rated (raw agreement 91.7%)" in text, text
    assert ("  why kappa is low: one label dominates ('baseline' in 95.8% of the ratings), so agreement expected "
            "by chance is already high (p_e = 91.7%)") in text, text

    fill(out, project / "ben.csv", lambda row: base(row) | {"rater": "ben"})
    assert human_import(project / "ann.csv", project / "ben.csv", "--key", out / "key.json") == 0
    text = capsys.readouterr().out
    assert "Cohen's kappa undefined (every rating has the same label)" in text
    assert ("  why kappa is undefined: every rating is 'baseline', so agreement expected by chance is "
            "p_e = 100.0%") in text, text

    split = lambda row: {"preference": other(cand[row["case"]]) if row["case"] in ("q5", "q6", "q7", "q8")  # noqa: E731
                         else cand[row["case"]]}
    fill(out, project / "ann.csv", lambda row: split(row) | {"rater": "ann"})
    fill(out, project / "ben.csv", lambda row: split(row) | {"rater": "ben"} | (
        {"preference": other(cand["q0"])} if row["case"] == "q0" else {}))
    assert human_import(project / "ann.csv", project / "ben.csv", "--key", out / "key.json") == 0
    text = capsys.readouterr().out
    # 11 of 12 agree again, but neither label dominates: p_e = (8x7 + 4x5) / 144, kappa 0.82
    assert "Cohen's kappa 0.82 over the 12 case(s) all 2 raters rated (raw agreement 91.7%)" in text, text
    assert "why kappa is" not in text  # kappa above 0.4 says what the raw agreement says


def test_chance_agreement_is_the_one_kappa_corrects_for():
    """p_e, printed to explain a low kappa, against statsmodels' kappa: kappa = (p_o - p_e) / (1 - p_e)."""
    from pytest_ftgate.human.ratings import Rating, agreement

    rng = random.Random(5)
    for raters in (2, 3, 4):
        for _ in range(20):
            picks = [[rng.choice(["candidate", "candidate", "candidate", "baseline", "tie"]) for _ in range(raters)]
                     for _ in range(15)]
            a = agreement([Rating(f"r{j}", "s", f"c{i}", p, "", None, None) for i, row in enumerate(picks)
                           for j, p in enumerate(row)])
            # Fleiss' p_o: the share of agreeing rater pairs per case; for two raters, the share of agreeing cases
            pairs = [sum(row.count(k) * (row.count(k) - 1) for k in set(row)) for row in picks]
            p_o = sum(pairs) / (len(picks) * raters * (raters - 1))
            if a.kappa is not None:
                assert a.kappa == pytest.approx((p_o - a.chance) / (1 - a.chance))
            flat = [p for row in picks for p in row]
            most = max(map(flat.count, set(flat)))
            assert flat.count(a.dominant[0]) == most and a.dominant[1] == pytest.approx(most / len(flat))


def test_a_partly_rated_sheet_names_its_unrated_cases(project, capsys):
    out, key = export(project, "--seed", "7")
    rate = pro(key)
    fill(out, project / "alice.csv",
         lambda row: {} if row["case"] in ("f1", "q3", "q4") else rate(row) | {"rater": "alice"})
    fill(out, project / "bob.csv", lambda row: rate(row) | {"rater": "bob"} if row["case"] == "q0" else {})
    capsys.readouterr()
    assert human_import(project / "alice.csv", project / "bob.csv", "--key", out / "key.json") == 0
    text = capsys.readouterr().out
    assert "2 rater(s) (alice, bob), 10 ratings of 9 cases" in text and "; 14 unrated row(s) skipped" in text
    assert (f"{project / 'alice.csv'}: 3 of 12 rows unrated (fmt/f1, qa/q3, qa/q4): they are not counted "
            "(rate them and import this file again to add them)") in text, text
    later = [f"fmt/{c}" for c in ("f0", "f1", "f3")] + [f"qa/q{i}" for i in range(1, 8)]
    assert f"{project / 'bob.csv'}: 11 of 12 rows unrated ({', '.join(later)}, …): they are not counted" in text, text
    assert "q3" not in labels(project / "suites/qa.human.jsonl")


def test_importing_one_rater_after_another_keeps_both(project, capsys):
    from types import SimpleNamespace

    from pytest_ftgate.kinds.judge import human_labels

    out, key = export(project, "--seed", "7")
    fill(out, project / "pro.csv", pro(key))
    fill(out, project / "con.csv", con(key))  # no rater column: the rater is the file's name, con
    assert human_import(project / "pro.csv", project / "con.csv", "--key", out / "key.json") == 0
    together = labels(project / "suites/qa.human.jsonl")
    for path in project.glob("suites/*.human.jsonl"):
        path.unlink()
    # a label written by hand (no rater) on q8, and one the file had before on a case this sheet leaves out
    (project / "suites/qa.human.jsonl").write_text('{"id": "q8", "human": {"preference": "tie"}}\n'
                                                   '{"id": "older", "human": {"preference": "tie"}}\n')
    capsys.readouterr()

    assert human_import(project / "pro.csv", "--key", out / "key.json") == 0
    text = capsys.readouterr().out
    qa = project / "suites/qa.human.jsonl"
    assert f"labels: {qa}: 9 case(s) (8 new): pro's labels 9 added" in text, text
    assert ("  replaced 1 earlier label(s) that name no rater (q8): written by hand, or by an ftgate that did not "
            "keep labels per rater") in text, text
    assert human_import(project / "con.csv", "--key", out / "key.json") == 0
    text = capsys.readouterr().out
    assert (f"labels: {qa}: 9 case(s) (0 new): con's labels 9 added; kept pro's on 9 (not rated in this import); "
            "each case's label is the consensus of its raters") in text, text
    assert "the win rates and agreement above count this import's files only" in text
    merged = labels(qa)
    assert list(merged) == ["q8", "older", *RATED[3:11]]  # the file's order kept, new cases appended
    assert {k: v for k, v in merged.items() if k != "older"} == together  # as if imported together
    assert merged["q2"] == {"preference": "candidate", "score_candidate": 5, "score_baseline": 2, "raters": 2}
    stored = {e["id"]: e for e in map(json.loads, qa.read_text(encoding="utf-8").splitlines())}
    assert list(stored["q0"]["ratings"]) == ["pro", "con"]
    assert stored["q0"]["ratings"]["con"]["preference"] == "baseline"

    # pro changes their mind on q0: only pro's label is replaced, con's stays
    fill(out, project / "pro.csv", lambda row: pro(key)(row) | ({"preference": "tie"} if row["case"] == "q0" else {}))
    assert human_import(project / "pro.csv", "--key", out / "key.json") == 0
    text = capsys.readouterr().out
    assert f"labels: {qa}: 9 case(s) (0 new): pro's labels 9 replaced (rated again); kept con's on 9" in text, text
    stored = {e["id"]: e for e in map(json.loads, qa.read_text(encoding="utf-8").splitlines())}
    assert {rater: r["preference"] for rater, r in stored["q0"]["ratings"].items()} == {"pro": "tie", "con": "baseline"}

    # the judge calibrates on one consensus label per case, from the same file
    judged = human_labels(SimpleNamespace(cases=[], path=project / "suites/qa.yaml"))
    assert set(judged) == {"q8", "older", *RATED[3:]}
    assert judged["q0"]["preference"] == "baseline" and judged["q0"]["raters"] == 2  # (1/2 + 0) / 2
    assert judged["q2"]["preference"] == "candidate" and judged["q2"]["outputs"] == stored["q2"]["human"]["outputs"]


def test_labels_of_other_answers_are_dropped_and_named(project, capsys):
    """A label for an earlier candidate's answer says nothing about this one: it is not merged in."""
    out, key = export(project, "--seed", "7")
    fill(out, project / "pro.csv", pro(key))
    fill(out, project / "con.csv", con(key))
    assert human_import(project / "con.csv", "--key", out / "key.json") == 0
    qa = project / "suites/qa.human.jsonl"
    lines = [json.loads(line) for line in qa.read_text(encoding="utf-8").splitlines()]
    for e in lines[:2]:
        e["human"]["outputs"]["candidate"] = "0" * 16  # as if con had rated another candidate on q0, q1
    qa.write_text("".join(json.dumps(e) + "\n" for e in lines), encoding="utf-8")
    capsys.readouterr()
    assert human_import(project / "pro.csv", "--key", out / "key.json") == 0
    text = capsys.readouterr().out
    assert ("  dropped con's earlier labels on 2 case(s) (q0, q1): they rate other answers than this sheet's "
            "(an earlier candidate's or baseline's)") in text, text
    assert "kept con's on 7" in text
    stored = {e["id"]: e for e in map(json.loads, qa.read_text(encoding="utf-8").splitlines())}
    assert list(stored["q0"]["ratings"]) == ["pro"] and stored["q0"]["human"]["raters"] == 1
    assert list(stored["q2"]["ratings"]) == ["con", "pro"] and stored["q2"]["human"]["raters"] == 2
