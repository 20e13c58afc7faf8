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


# ---- the field guides' warnings: they name the figure, reject nothing, and leave the exit status alone ----
def profile(tmp_path, rows, **options):
    from pytest_ftgate.files.datacheck import check_data

    data = write(tmp_path / "train.jsonl", "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    report, _, _ = check_data(data, **options)
    assert report.ok  # a warning never rejects a row
    return report.profile


def questions(n, answer=lambda i: f"Here is the reply to request {i}, written out in full."):
    return [chat(f"Question {i} about something else entirely?", answer(i)) for i in range(n)]


def test_a_file_under_the_size_floor_is_warned_about_with_its_figure_and_reason(tmp_path, capsys):
    data = write(tmp_path / "d.jsonl", "\n".join(questions(150)) + "\n")
    assert main(["data", "check", str(data)]) == 0  # a warning is not a rejection
    out = capsys.readouterr().out
    assert "warning: 150 rows, under the floor of 200 for a LoRA fine-tune" in out and "overfit" in out


def test_a_file_at_the_size_floor_is_not_warned_about(tmp_path):
    assert profile(tmp_path, questions(200)).warned("size") == []


def test_each_label_under_the_per_label_floor_is_named():
    from pytest_ftgate.files.data_stats import Labels, size_warnings

    low = size_warnings(460, Labels("answer", counts={"yes": 220, "no": 210, "maybe": 30}))
    assert [w.check for w in low] == ["label-size"]
    assert "1 of 3 labels have under 200 rows ('maybe' 30)" in low[0].message


def test_labels_each_at_the_per_label_floor_are_not_warned_about():
    from pytest_ftgate.files.data_stats import Labels, size_warnings

    assert size_warnings(610, Labels("answer", counts={"yes": 200, "no": 210, "maybe": 200})) == []


def test_short_answers_from_a_small_set_are_the_labels_and_the_output_says_so(tmp_path, capsys):
    rows = questions(30, lambda i: ["positive", "negative", "neutral"][i % 3])
    data = write(tmp_path / "d.jsonl", "\n".join(rows) + "\n")
    main(["data", "check", str(data)])
    out = capsys.readouterr().out
    assert "labels: the answers are the labels (3 distinct answers over 30 rows): 'positive' 10" in out
    assert "3 of 3 labels have under 200 rows" in out
    assert "duplicate answers not measured: the answers are the labels" in out


def test_free_text_answers_are_not_labels_and_json_answers_get_their_fields_suggested(tmp_path):
    assert profile(tmp_path, questions(30)).labels.how == "none"
    routed = profile(tmp_path, questions(30, lambda i: json.dumps({"label": ["a", "b"][i % 2], "priority": ["low", "high"][i % 3 == 0],
                                                                 "reason": f"reason {i}"})))
    assert routed.labels.how == "none" and "--label-key KEY (fields with few values: label (2 values), priority (2 values))" in routed.labels.note


def test_label_key_reads_the_label_from_json_answers_and_names_the_rows_without_it(tmp_path):
    rows = questions(12, lambda i: json.dumps({"label": ["billing", "shipping"][i % 2], "reason": f"because {i}"}))
    rows += [chat("What is the capital of France?", "Paris is the capital of France.")]  # a replay row: free text
    p = profile(tmp_path, rows, label_key="label")
    assert (p.labels.how, p.labels.counts, p.labels.unlabelled) == ("key", {"billing": 6, "shipping": 6}, (13,))
    assert "labels: 2 found in the answers' JSON field `label` (--label-key label)" in p.labels.note
    assert "1 answer(s) without it: lines 13" in p.labels.note


def test_answers_far_longer_or_shorter_than_the_rest_are_named_worst_first(tmp_path):
    rows = questions(30, lambda i: f"The order {i} ships in {i % 5 + 2} days from the warehouse.")
    rows[7] = chat("Question 7 about something else entirely?", "Shipping details follow. " * 120)  # a pasted document
    rows[19] = chat("Question 19 about something else entirely?", "ok")  # a placeholder
    p = profile(tmp_path, rows)
    (found,) = p.warned("length")
    assert found.lines == (8, 20)
    assert "2 of 30 answers of unusual length" in found.message and "line 8 (3,000 chars), line 20 (2 chars)" in found.message


def test_answers_of_ordinary_varied_length_have_no_outlier(tmp_path):
    rows = questions(30, lambda i: "word " * (8 + (i * 7) % 25))  # 40 to 160 characters
    assert profile(tmp_path, rows).warned("length") == []


def test_a_large_share_of_repeated_answers_is_warned_about_and_named(tmp_path):
    rows = questions(20, lambda i: "I'm sorry, I can't help with that." if i % 4 == 0 else f"The answer to {i} is {i * 3}.")
    p = profile(tmp_path, rows)
    assert p.duplicate_answers == 0.2  # 5 copies of one answer: 4 repeat an earlier one
    (found,) = p.warned("duplicate-answers")
    assert "20% of 20 answers repeat an earlier one" in found.message and "x5 (first on line 1)" in found.message


def test_a_few_repeated_answers_stay_under_the_duplicate_threshold(tmp_path):
    rows = questions(20, lambda i: "Thanks, done." if i in (3, 9) else f"The answer to {i} is {i * 3}.")
    p = profile(tmp_path, rows)
    assert p.duplicate_answers == 0.05 and p.warned("duplicate-answers") == []


def routed_rows(counts):
    labels = [label for label, n in counts.items() for _ in range(n)]
    return questions(len(labels), lambda i: json.dumps({"label": labels[i], "reason": f"ticket {i}"}))


def production(tmp_path, counts):
    return write(tmp_path / "production.jsonl", "".join(
        json.dumps({"id": f"p{i}", "output": json.dumps({"label": label, "reason": "x"})}) + "\n"
        for i, label in enumerate(label for label, n in counts.items() for _ in range(n))))


def test_a_label_mix_far_from_production_names_the_labels_over_and_under_represented(tmp_path, capsys):
    prod = production(tmp_path, {"billing": 70, "shipping": 20, "account": 10})
    data = write(tmp_path / "d.jsonl", "\n".join(routed_rows({"billing": 10, "shipping": 10, "account": 20})) + "\n")
    assert main(["data", "check", str(data), "--label-key", "label", "--production", str(prod)]) == 0
    out = capsys.readouterr().out
    assert "label mix against production (100 rows): distance 0.45" in out
    assert ("warning: label mix differs from production's by 0.45 (total variation over 100 production rows), over 0.15; "
            "over-represented in training: 'account' 50% vs 10%, 'shipping' 25% vs 20%; under-represented: 'billing' 25% vs 70%") in out


def test_a_label_mix_close_to_production_is_not_warned_about(tmp_path):
    prod = production(tmp_path, {"billing": 45, "shipping": 30, "account": 25})
    p = profile(tmp_path, routed_rows({"billing": 16, "shipping": 12, "account": 12}), label_key="label", production=prod)
    assert p.balance.distance == pytest.approx(0.05) and p.warned("balance") == []


def test_a_production_file_that_is_not_there_is_an_error_that_says_what_to_give(tmp_path, capsys):
    data = write(tmp_path / "d.jsonl", "\n".join(questions(3)) + "\n")
    assert main(["data", "check", str(data), "--production", str(tmp_path / "nope.jsonl")]) == 4
    assert "--production file not found; give the production.jsonl that `ftgate logs import` writes" in capsys.readouterr().err


def annotated(pairs):
    return [{"messages": [{"role": "user", "content": f"Ticket {i}: please route this one?"},
                          {"role": "assistant", "content": labels[0]}], "annotations": list(labels)}
            for i, labels in enumerate(pairs)]


def test_two_annotators_under_90_percent_agreement_are_warned_about_with_cohens_kappa(tmp_path):
    pairs = [("a", "a")] * 10 + [("b", "b")] * 10 + [("a", "b")] * 3 + [("b", "a")] * 2  # 80% agreement
    p = profile(tmp_path, annotated(pairs))
    assert p.agreement.method == "cohen" and p.agreement.observed == 0.8
    (found,) = p.warned("agreement")
    assert found.message.startswith("2 annotators agree on 80% of 25 rows, Cohen's kappa 0.60: under 90% agreement")


def test_high_raw_agreement_on_one_dominant_label_is_still_warned_about_by_its_kappa(tmp_path):
    pairs = [("a", "a")] * 46 + [("a", "b")] * 2 + [("b", "a")] * 2  # 92% agreement, no better than chance
    p = profile(tmp_path, annotated(pairs))
    (found,) = p.warned("agreement")
    assert "agree on 92% of 50 rows" in found.message and "kappa under 0.80" in found.message


def test_three_annotators_who_agree_use_fleiss_kappa_and_raise_no_warning(tmp_path):
    triples = [("a", "a", "a")] * 12 + [("b", "b", "b")] * 12 + [("a", "a", "b")]
    p = profile(tmp_path, annotated(triples))
    assert p.agreement.method == "fleiss" and p.agreement.raters == ("annotator 1", "annotator 2", "annotator 3")
    assert p.agreement.observed == 0.96 and p.agreement.kappa > 0.9 and p.warned("agreement") == []
