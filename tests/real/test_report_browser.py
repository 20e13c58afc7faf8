"""report.html in a real browser: Debian's headless Chromium, driven by Selenium and chromium-driver.

The page is built through the public `ftgate gate` CLI from outputs files, loaded from disk, and
checked in the live DOM after load: the verdict badge, one suite-table row per suite, every plot an
<svg> with a real rendered size, the flipped cases, no network request, no console error.

Why Selenium with Debian's chromium-driver: the driver is built from the same Debian source
package as the browser, so apt keeps the two at the same version (a Playwright wheel pins its own
Chromium build and is not guaranteed against another); WebDriver is a W3C standard; the Python
package is small and pure Python, with no Node runtime. Network requests and console messages come
from chromedriver's `goog:loggingPrefs` performance and browser logs.

Without a browser the tests skip with the install command; with FTGATE_REQUIRE_BROWSER=1 (set by
.ci/run, which installs it) they fail instead, so CI cannot pass by skipping.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import pytest

from pytest_ftgate.cli import main as ftgate
from pytest_ftgate.report.view import STATUS_MARK

APT_INSTALL = "apt-get install -y chromium chromium-driver"
PIP_INSTALL = "pip install 'selenium>=4.20,<5'"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Debian's launcher means to add this on a small /dev/shm (containers) but its check is broken
    "--disable-dev-shm-usage", "--window-size=1280,2000",
)
MIN_PLOT_PX = 50
INLINE_OR_BROWSER_SCHEMES = {"data", "blob", "about", "chrome", "chrome-untrusted", "chrome-extension", "devtools"}

QA = "kind: golden\ncases:\n{cases}\nscorers: [contains]\n"
FMT = """\
kind: format
cases: fmt.jsonl
scorers:
  - json_schema: {schema: {type: object, required: [label], properties: {label: {enum: [a, b]}}}}
"""


def _missing_browser(reason: str, install: str) -> NoReturn:
    message = f"{reason}; the browser check of report.html needs it. Install it with: {install}"
    if os.environ.get("FTGATE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"FTGATE_REQUIRE_BROWSER=1 but {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium for the module, with its network and console logs switched on."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if chromium is None:
        _missing_browser("chromium is not installed", APT_INSTALL)
    if chromedriver is None:
        _missing_browser("chromedriver (Debian's chromium-driver) is not installed", APT_INSTALL)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing_browser("the selenium package is not installed", PIP_INSTALL)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium  # with the driver given too, Selenium Manager never runs (no download)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _write_outputs(path: Path, rows: dict[str, str], latency_s: float) -> None:
    """An outputs file with tokens and latency per case, so the report draws its latency and cost plots."""
    lines = []
    for i, (case_id, text) in enumerate(rows.items()):
        usage = {"tokens_in": 60 + i, "tokens_out": 8 + i % 5, "latency_s": latency_s * (1 + i % 7 / 10)}
        lines.append(json.dumps({"id": case_id, "output": text, **usage}) + "\n")
    path.write_text("".join(lines), encoding="utf-8")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A golden suite of 20 cases (goldens frozen through the CLI), a format suite of 4, three subjects."""
    root = tmp_path_factory.mktemp("project")
    (root / "suites").mkdir()
    cases = "\n".join(f"  - {{id: q{i}, input: 'question {i}', expected: 'a{i}'}}" for i in range(20))
    (root / "suites/qa.yaml").write_text(QA.format(cases=cases), encoding="utf-8")
    (root / "suites/fmt.yaml").write_text(FMT, encoding="utf-8")
    fmt_cases = [json.dumps({"id": f"f{i}", "input": f"route {i}"}) + "\n" for i in range(4)]
    (root / "suites/fmt.jsonl").write_text("".join(fmt_cases), encoding="utf-8")
    fmt_half = {"f0": "nope", "f1": "not json", "f2": '{"label": "a"}', "f3": '{"label": "b"}'}
    fmt_all = {f"f{i}": json.dumps({"label": "ab"[i % 2]}) for i in range(4)}
    _write_outputs(root / "base.jsonl", {f"q{i}": f"it is a{i}" for i in range(20)} | fmt_half, latency_s=0.30)
    _write_outputs(root / "good.jsonl", {f"q{i}": f"a{i}" for i in range(20)} | fmt_all, latency_s=0.20)
    regress_3 = {f"q{i}": "wrong" if i < 3 else f"a{i}" for i in range(20)}
    _write_outputs(root / "bad.jsonl", regress_3 | fmt_all, latency_s=0.20)
    assert _gate(root, "freeze", root / "suites/qa.yaml", "--ftgate-update-goldens") == 0
    assert (root / "suites/qa.goldens.json").exists()
    # an earlier gate of a candidate: the trend draws one measure per suite, and the freeze measured the baseline
    assert _gate(root, "earlier", root / "suites", "--candidate", str(root / "good.jsonl")) == 0
    return root


def _gate(root: Path, name: str, suites: Path, *args: str) -> int:
    """`ftgate gate` as a user runs it (its `main`, in this process, to spare an interpreter start)."""
    return ftgate([
        "gate", str(suites), "--baseline", str(root / "base.jsonl"), *args,
        "--ftgate-cache-dir", str(root / ".ftgate/cache"), "--ftgate-report-dir", str(root / "out" / name),
        "--ftgate-history", str(root / ".ftgate/history.sqlite"),  # the module's runs, one history
    ])


def _report(project: Path, candidate: str, expected_exit: int) -> tuple[Path, dict[str, Any]]:
    name = Path(candidate).stem
    assert _gate(project, name, project / "suites", "--candidate", str(project / candidate)) == expected_exit
    out = project / "out" / name
    return out / "report.html", json.loads((out / "report.json").read_text(encoding="utf-8"))


def _load(driver: Any, page: Path) -> dict[str, Any]:
    """Open the page; return what the browser requested and logged while loading it."""
    for log in ("performance", "browser"):
        driver.get_log(log)  # drop what earlier pages left
    driver.get(page.as_uri())
    assert driver.execute_script("return document.readyState") == "complete"
    requests = [
        m["params"]["request"]["url"]
        for m in (json.loads(e["message"])["message"] for e in driver.get_log("performance"))
        if m["method"] == "Network.requestWillBeSent"
    ]
    # the browser's own UI (its start tab fetches chrome:// icons, late and at random) is not the page's:
    # a page cannot load those schemes anyway; data: and blob: are inline
    fetched = [url for url in requests if urlsplit(url).scheme not in INLINE_OR_BROWSER_SCHEMES]
    return {"requests": fetched, "console": driver.get_log("browser")}


def _rows(driver: Any, table_id: str) -> list[list[str]]:
    return driver.execute_script(
        "return [...document.querySelectorAll(`#${arguments[0]} tr:has(> td)`)]"
        ".map(tr => [...tr.cells].map(td => td.innerText.trim()))", table_id)


def _plots(driver: Any) -> list[dict[str, Any]]:
    return driver.execute_script(
        "const page = document.documentElement.clientWidth;"
        "return [...document.querySelectorAll('figure.plot')].map(f => {"
        "  const svg = f.querySelector(':scope > svg'); if (!svg) return {svg: false};"
        "  const r = svg.getBoundingClientRect();"
        "  return {svg: true, width: r.width, height: r.height, left: r.left, right: r.right, page: page,"
        "          marks: svg.querySelectorAll('path, rect, use').length,"
        "          caption: f.querySelector('figcaption')?.innerText};"
        "})")


def _expected_flips(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    flips = []
    for suite in report["suites"]:
        for case in suite["cases"]:
            before, after = case["baseline"]["passed"], (case["candidate"] or {}).get("passed")
            if before is not None and after is not None and before != after:
                flips.append((suite["name"], case["id"], "pass → fail" if before else "fail → pass"))
    return sorted(flips)


def _check_page(driver: Any, page: Path, report: dict[str, Any]) -> list[list[str]]:
    loaded = _load(driver, page)
    assert loaded["requests"] == [page.as_uri()], f"report.html is not self-contained: it fetched {loaded['requests']}"
    errors = [e for e in loaded["console"] if e["level"] == "SEVERE"]
    assert not errors, f"console errors while loading report.html: {errors}"

    from selenium.webdriver.common.by import By

    badge = driver.find_element(By.ID, "verdict")
    assert badge.is_displayed() and badge.text == report["verdict"]

    suites = _rows(driver, "suites")
    assert [row[0] for row in suites] == [s["name"] for s in report["suites"]]
    assert [row[-1] for row in suites] == [STATUS_MARK[s["summary"]["decision"]] for s in report["suites"]]

    plots = _plots(driver)
    # the subjects report tokens and latency, and the history holds an earlier gate of a candidate: four plots
    assert len(plots) == 4, f"expected the pass rate, latency, trend and cost plots, found {plots}"
    assert any(p["caption"].startswith("Trend:") for p in plots)
    for plot in plots:
        assert plot["svg"], f"a plot figure has no inline <svg>: {plot}"
        assert plot["width"] > MIN_PLOT_PX and plot["height"] > MIN_PLOT_PX, f"plot rendered too small: {plot}"
        assert plot["marks"] > 0, f"plot drew nothing: {plot}"
        assert 0 <= plot["left"] and plot["right"] <= plot["page"], f"plot overflows the page: {plot}"

    flips = _rows(driver, "flips")
    assert sorted((row[0], row[1], row[2]) for row in flips) == _expected_flips(report)
    return flips


def test_promoted_report_renders(browser, project):
    page, report = _report(project, "good.jsonl", expected_exit=0)
    assert report["verdict"] == "promoted"
    flips = _check_page(browser, page, report)
    assert {row[2] for row in flips} == {"fail → pass"}


def test_blocked_report_shows_its_regressions(browser, project):
    page, report = _report(project, "bad.jsonl", expected_exit=1)
    assert report["verdict"] == "blocked"
    flips = _check_page(browser, page, report)
    regressions = [row for row in flips if row[2] == "pass → fail"]
    assert [row[1] for row in regressions] == ["q0", "q1", "q2"]
    assert all(row[4].startswith("it is a") and row[5].startswith("wrong") for row in regressions)


def test_the_trend_marks_a_promotion(browser, project):
    """`ftgate promote` marks its run in the history; the next report's trend stars it."""
    from selenium.webdriver.common.by import By

    _, report = _report(project, "good.jsonl", expected_exit=0)
    assert ftgate(["promote", str(project / "out/good/report.json"), "--suites", str(project / "suites"),
                   "--history", str(project / ".ftgate/history.sqlite")]) == 0
    page, _ = _report(project, "bad.jsonl", expected_exit=1)
    _load(browser, page)
    trend = browser.find_element(By.ID, "plot-trend")
    assert int(trend.get_attribute("data-promoted")) == 1 and int(trend.get_attribute("data-runs")) >= 3
    (project / "suites/ftgate.promoted.json").unlink()  # later tests in this module gate against the base


def test_the_check_sees_a_remote_asset(browser, tmp_path):
    """The detectors above are not vacuous: a page that fetches something is caught by both."""
    page = tmp_path / "leaky.html"
    page.write_text('<!doctype html><title>x</title><img src="http://127.0.0.1:9/pixel.png">', encoding="utf-8")
    loaded = _load(browser, page)
    assert "http://127.0.0.1:9/pixel.png" in loaded["requests"]
    assert any(e["level"] == "SEVERE" for e in loaded["console"])
