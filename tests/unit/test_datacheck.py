"""`ftgate data check`: format, duplicates, PII, leakage into the suites, rejected-rows log, split."""

from __future__ import annotations

import json

import pytest

from pytest_ftgate.cli import main
from pytest_ftgate.files.datacheck import find_pii, luhn_ok
from tests.conftest import write


def chat(user: str, answer: str = "ok") -> str:
    return json.dumps({"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]})


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("write to jane.doe@example.com today", ["email"]),
        ("call me on +1 415-555-0132", ["phone"]),
        ("card 4111 1111 1111 1111 please", ["card"]),
        ("card 4111 1111 1111 1112 please", []),  # fails the Luhn check
        ("my SSN is 123-45-6789", ["ssn"]),
        ("IBAN DE89 3704 0044 0532 0130 00", ["iban"]),
        ("order 12345 arrived after 14 days", []),
    ],
)
def test_pii_scan(text, kinds):
    assert sorted(find_pii(text)) == sorted(kinds)


def test_luhn():
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")


def test_data_check_reports_each_problem_with_its_line(tmp_path, capsys):
    write(tmp_path / "suites/s.yaml", "kind: golden\ncases:\n  - {id: paris, input: 'What is the capital of France?'}\n"
          "  - {id: near, input: 'My Nimbus router order has not arrived after 14 days and I am worried that it got lost in the mail somewhere'}\nscorers: [json_valid]\n")
    rows = [
        chat("How do I reset my password?"),                                             # 1 fine
        chat("How do I reset my password?"),                                             # 2 exact duplicate of 1
        chat("Email me at bob@example.org"),                                              # 3 PII
        chat("what is the capital of france"),                                            # 4 exact leak (normalised)
        chat("My Nimbus router order has not arrived after 14 days and I am worried that it got lost in the mail somewhere, please help"),  # 5 near
        json.dumps({"messages": [{"role": "user", "content": "no answer"}]}),             # 6 bad format
        chat("A completely different question about invoices and refunds for my order"),  # 7 fine
    ]
    data = write(tmp_path / "train.jsonl", "\n".join(rows) + "\n")
    code = main(["data", "check", str(data), "--suites", str(tmp_path / "suites"), "--split", "0.5"])
    out = capsys.readouterr().out
    assert code == 1
    assert f"{data}:2: duplicate of line 1" in out
    assert f"{data}:3: PII: email" in out
    assert f"{data}:4: leak: suite case s/paris (exact, trained turn)" in out
    assert f"{data}:5: leak: suite case s/near (contained, trained turn)" in out
    assert f"{data}:6: format:" in out and "last message must be the assistant's" in out
    assert "LEAKAGE: 2 suite case(s)" in out
    rejected = [json.loads(x) for x in (tmp_path / "train.rejected.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejected] == [2, 3, 4, 5, 6]
    train = (tmp_path / "train.train.jsonl").read_text().splitlines()
    held = (tmp_path / "train.eval.jsonl").read_text().splitlines()
    assert len(train) + len(held) == 2


def test_clean_data_passes_and_says_leakage_was_not_checked_without_suites(tmp_path, capsys):
    data = write(tmp_path / "d.jsonl", chat("first question here") + "\n" + chat("another unrelated line of text") + "\n")
    assert main(["data", "check", str(data)]) == 0
    out = capsys.readouterr().out
    assert "0 rejected" in out
    assert "leakage NOT checked" in out and "--suites DIR" in out
    assert "no suite case appears" not in out


def test_bad_lines_are_rejected_with_their_reason_and_the_check_goes_on(tmp_path, capsys):
    lines = [
        '{"text": "raw"}',                                       # 1 unknown format (the file's format comes from line 2)
        chat("How do I reset my password?"),                    # 2 fine
        '["a", "list"]',                                         # 3 not an object
        chat("Where is my parcel?"),                             # 4 fine
        '{"instruction": "say hi", "output": "hi"}',            # 5 another format
        "",                                                      # blank: skipped
        chat("Can I change my plan?"),                           # 7 fine
        '{"messages": [{"role": "user", "content": "hi"}',       # 8 bad JSON
        chat("How do I reset my password?"),                    # 9 duplicate of 2: found after the bad line
        chat("Mail me at jane@example.org"),                     # 10 PII
    ]
    data = write(tmp_path / "train.jsonl", "\n".join(lines) + "\n")
    code = main(["data", "check", str(data)])
    out = capsys.readouterr().out
    assert code == 1
    assert f"{data}: 9 rows, 6 rejected" in out
    assert f"{data}:1: format: unknown row format" in out
    assert f"{data}:3: not a JSON object (got a list)" in out
    assert f"{data}:5: format: this row is in instruction format but the file is in chat format; one format per file" in out
    assert f"{data}:8: not valid JSON" in out
    assert f"{data}:9: duplicate of line 2" in out
    assert f"{data}:10: PII: email" in out
    rejected = [json.loads(x) for x in (tmp_path / "train.rejected.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejected] == [1, 3, 5, 8, 9, 10]
    assert rejected[3]["text"] == lines[7] and rejected[1]["text"] == lines[2]  # as written: no row to show
    assert rejected[0]["row"] == {"text": "raw"}


def test_the_trainer_stops_at_the_first_bad_line_and_points_at_data_check(tmp_path):
    from pytest_ftgate.errors import DataError
    from pytest_ftgate.files.training import read_jsonl

    data = write(tmp_path / "t.jsonl", chat("fine") + "\n{broken\n[1]\n")
    with pytest.raises(DataError, match=r"t.jsonl:2: not valid JSON .*1 more such lines: `ftgate data check .*t.jsonl` lists"):
        read_jsonl(data)


@pytest.mark.parametrize("data", ["routing-sft.jsonl", "disclaimer-dpo.jsonl"])
def test_bundled_training_data_does_not_leak_into_the_bundled_suites(data, capsys):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = main(["data", "check", str(root / "training/data" / data), "--suites", str(root / "suites"), "--rejected", "/dev/null"])
    out = capsys.readouterr().out
    assert "no suite case appears in the training data" in out and code == 0


GOLDEN = "What is the capital of Australia and why was it chosen over Sydney?"


@pytest.mark.parametrize(("row", "how"), [
    ({"messages": [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello, how can I help?"},
                   {"role": "user", "content": GOLDEN}, {"role": "assistant", "content": "Canberra."}]},
     "exact, trained turn"),  # the case as the last turn after one greeting: found 0 times in 60 before
    ({"messages": [{"role": "user", "content": "You are a geography tutor. Read the question carefully, think, and "
                                               "answer in one line. Question: " + GOLDEN},
                   {"role": "assistant", "content": "Canberra."}]}, "contained, trained turn"),  # behind a preamble
    ({"instruction": "Answer the question.", "input": GOLDEN, "output": "Canberra."}, "contained, trained turn"),
    ({"messages": [{"role": "user", "content": "Quick question: " + GOLDEN}, {"role": "assistant", "content": "x"}]},
     "contained, trained turn"),
    ({"messages": [{"role": "user", "content": GOLDEN}, {"role": "assistant", "content": "Canberra."},
                   {"role": "user", "content": "Thanks! And of New Zealand?"}, {"role": "assistant", "content": "x"}]},
     "exact"),  # an earlier turn: still seen in training
    ({"prompt": [{"role": "user", "content": "Hey"}, {"role": "assistant", "content": "Hi"},
                 {"role": "user", "content": GOLDEN}], "chosen": "Canberra.", "rejected": "Sydney."},
     "exact, trained turn"),
])
def test_a_case_is_found_in_any_turn_of_a_training_row_however_it_is_wrapped(tmp_path, row, how):
    from pytest_ftgate.files.datacheck import find_leaks, training_rows
    from pytest_ftgate.gating.suite import load_suite

    suite = load_suite(write(tmp_path / "g.yaml", f"kind: golden\ncases:\n  - {{id: au, input: '{GOLDEN}'}}\n"
                                                  "scorers: [json_valid]\n"))
    data = write(tmp_path / "train.jsonl", json.dumps(row) + "\n")
    assert find_leaks(training_rows(data), [suite]) == [("g/au", 1, how)]


def test_a_short_case_inside_a_longer_turn_is_not_a_leak(tmp_path):
    from pytest_ftgate.files.datacheck import find_leaks, training_rows
    from pytest_ftgate.gating.suite import load_suite

    suite = load_suite(write(tmp_path / "g.yaml", "kind: golden\ncases:\n  - {id: hi, input: 'Say hello'}\nscorers: [json_valid]\n"))
    data = write(tmp_path / "train.jsonl", json.dumps({"messages": [
        {"role": "user", "content": "Say hello to my grandmother in a short, warm birthday message please"},
        {"role": "assistant", "content": "x"}]}) + "\n")
    assert find_leaks(training_rows(data), [suite]) == []
