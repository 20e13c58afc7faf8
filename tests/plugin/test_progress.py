"""Progress on long work: a bar on a terminal whatever the verbosity, whole lines in a CI log."""

from __future__ import annotations

import io

from pytest_ftgate.gating.progress import LineProgress, NoProgress, progress


def test_a_log_gets_a_line_every_tenth_of_the_work_and_the_last():
    out = io.StringIO()
    bar = LineProgress(25, "baseline (golden)", out)
    for _ in range(25):
        bar.update(1)
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("ftgate baseline (golden): 2/25 cases (8%), ") and "left" in lines[0]
    assert lines[-1].startswith("ftgate baseline (golden): 25/25 cases (100%)") and "left" not in lines[-1]
    assert len(lines) == 13 and all("\r" not in line for line in lines)


def test_a_terminal_gets_a_bar_and_off_means_off(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    from tqdm.auto import tqdm

    bar = progress(10, "candidate (golden)", Tty())
    assert isinstance(bar, tqdm)
    bar.close()
    assert isinstance(progress(10, "x", io.StringIO()), LineProgress)
    monkeypatch.setenv("FTGATE_PROGRESS", "off")
    assert isinstance(progress(10, "x", Tty()), NoProgress)


def test_progress_shows_under_quiet_in_a_gate(pytester, tiny_base):
    (pytester.path / "suites").mkdir()
    cases = "\n".join(f"  - {{id: c{i}, input: 'question {i}'}}" for i in range(12))
    (pytester.path / "suites/f.yaml").write_text(f"kind: format\ncases:\n{cases}\ngenerate: {{max_new_tokens: 2}}\n"
                                                 "scorers: [{regex: '.'}]\ngate: {min_pass_rate: 0.0}\n")
    result = pytester.runpytest_subprocess(f"--baseline={tiny_base}", "-q", "--ftgate-batch-size=4", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines(["ftgate baseline (f): 4/12 cases (33%)*", "ftgate baseline (f): 12/12 cases (100%)*"])
