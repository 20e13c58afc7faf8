"""The warnings of `ftgate data check`: what the rows say together, measured against the field guides'
figures (pytest_ftgate.files.field_guide). None of them rejects a row or changes the exit status.

- size: rows in total, and rows per label where the data are labelled;
- lengths: answers far longer or shorter than the rest (modified z-score of the log length, median/MAD);
- duplicate answers: the share of answers equal to an earlier one after normalisation;
- balance (with --production): the labels' mix against production's, as a total variation distance;
- agreement: where rows carry `"annotations": [one label per annotator]`, Cohen's kappa (two annotators)
  or Fleiss' kappa (more), from pytest_ftgate.stats.

How a row's label is found, said in the output every time: with `--label-key KEY`, the answer is a JSON
object and its field KEY is the label; without it, the whole answer is the label when the answers take a
few distinct values (at most MAX_ANSWER_LABELS, each given by MIN_ROWS_PER_ANSWER_LABEL rows on average).
Only the rows that pass the check (not rejected) are measured: they are what would be trained.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..scoring.scorers import normalize
from ..stats import Agreement, cohen_kappa, fleiss_kappa
from . import field_guide as guide
from .field_guide import GuideWarning
from .jsonl import iter_jsonl
from .training import Row


@dataclass(frozen=True)
class Labels:
    """The labels found, and how: `answer` (the whole answer), `key` (a field of a JSON answer), or `none`."""

    how: str
    key: str | None = None
    counts: dict[str, int] = field(default_factory=dict)  # label -> rows, most rows first
    unlabelled: tuple[int, ...] = ()  # lines whose answer gave no label
    note: str = ""  # one line: which labels were found, and how (or why none)


@dataclass(frozen=True)
class Balance:
    """The labels' shares in training against production's (`ftgate logs import`'s production.jsonl)."""

    distance: float  # total variation: half the sum of the share differences
    production_rows: int  # production rows that gave a label
    shares: dict[str, tuple[float, float]]  # label -> (training share, production share)
    over: tuple[str, ...]  # labels with a larger share in training, by BALANCE_NAMED_GAP or more
    under: tuple[str, ...]  # labels with a smaller one


@dataclass
class DataProfile:
    rows: int  # the rows measured: valid and not rejected
    labels: Labels
    duplicate_answers: float | None = None  # share of answers repeating an earlier one; None: not measured
    length_outliers: list[tuple[int, int, float]] = field(default_factory=list)  # (line, chars, modified z)
    balance: Balance | None = None
    agreement: Agreement | None = None
    notes: list[str] = field(default_factory=list)  # what was not measured, and why
    warnings: list[GuideWarning] = field(default_factory=list)

    def warned(self, check: str) -> list[GuideWarning]:
        return [w for w in self.warnings if w.check == check]


def answer_of(row: dict[str, Any]) -> str:
    """The answer a converted row trains: the completion, or a preference row's chosen answer."""
    return (row.get("completion") or row["chosen"])[-1]["content"]


def label_of(answer: str, key: str | None) -> str | None:
    """The label of one answer: its field `key` when the answer is a JSON object, else the whole answer."""
    if key is None:
        return answer.strip() or None
    try:
        data = json.loads(answer)
    except ValueError:
        return None
    value = data.get(key) if isinstance(data, dict) else None
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if isinstance(value, (str, int, float)) and str(value).strip() else None


def find_labels(answers: dict[int, str], key: str | None) -> Labels:
    if key is not None:
        found = {line: label_of(a, key) for line, a in answers.items()}
        counts = Counter(v for v in found.values() if v is not None)
        missing = tuple(line for line, v in found.items() if v is None)
        if not counts:
            return Labels("none", key, note=f"labels: none: no answer is a JSON object with a field `{key}` (--label-key)")
        note = (f"labels: {len(counts)} found in the answers' JSON field `{key}` (--label-key {key}): "
                + _counts_text(counts) + (f"; {len(missing)} answer(s) without it: {_lines_text(missing)}" if missing else ""))
        return Labels("key", key, dict(counts.most_common()), missing, note)
    counts = Counter(a.strip() for a in answers.values())
    if 2 <= len(counts) <= guide.MAX_ANSWER_LABELS and len(answers) >= guide.MIN_ROWS_PER_ANSWER_LABEL * len(counts):
        note = (f"labels: the answers are the labels ({len(counts)} distinct answers over {len(answers)} rows): "
                + _counts_text(counts))
        return Labels("answer", None, dict(counts.most_common()), (), note)
    fields = _label_fields(answers.values())
    hint = ("; the answers are JSON: name the label field with --label-key KEY (fields with few values: "
            + ", ".join(f"{k} ({n} values)" for k, n in fields) + ")") if fields else ""
    return Labels("none", note=f"labels: none: {len(counts)} distinct answer(s) over {len(answers)} rows is not "
                               f"a label set (at most {guide.MAX_ANSWER_LABELS}, each on {guide.MIN_ROWS_PER_ANSWER_LABEL}+ "
                               f"rows on average){hint}")


def _label_fields(answers: Any) -> list[tuple[str, int]]:
    """Fields of JSON-object answers that could be a label: scalar, in half of the answers or more, 2 to
    MAX_ANSWER_LABELS distinct values. Only suggested: the user names one with --label-key."""
    values: dict[str, set[str]] = {}
    seen: Counter[str] = Counter()
    objects = 0
    for text in answers:
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if isinstance(data, dict):
            objects += 1
            for k, v in data.items():
                if isinstance(v, (str, int, bool)):
                    values.setdefault(k, set()).add(str(v))
                    seen[k] += 1
    return [(k, len(v)) for k, v in values.items() if seen[k] * 2 >= objects and 2 <= len(v) <= guide.MAX_ANSWER_LABELS]


def _counts_text(counts: Counter[str] | dict[str, int], limit: int = 8) -> str:
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{_short(k)} {n}" for k, n in items[:limit])
    return text + (f", and {len(items) - limit} more" if len(items) > limit else "")


def _lines_text(lines: tuple[int, ...] | list[int], limit: int = 5) -> str:
    text = "lines " + ", ".join(map(str, lines[:limit]))
    return text + (f" and {len(lines) - limit} more" if len(lines) > limit else "")


def _short(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= width else text[: width - 1] + "…")


# ---- the checks ----------------------------------------------------------------------------------------
def size_warnings(rows: int, labels: Labels) -> list[GuideWarning]:
    found = []
    floor = guide.MIN_ROWS
    if rows < floor.figure:
        found.append(GuideWarning("size", f"{rows} rows, under the floor of {floor.figure:.0f} for a LoRA fine-tune: "
                                          f"{floor.why} ({floor.guides})"))
    per = guide.MIN_ROWS_PER_LABEL
    small = {k: n for k, n in labels.counts.items() if n < per.figure}
    if small:
        found.append(GuideWarning("label-size", f"{len(small)} of {len(labels.counts)} labels have under "
                                                f"{per.figure:.0f} rows ({_counts_text(small)}): {per.why} ({per.guides})"))
    return found


def length_outliers(answers: dict[int, str]) -> list[tuple[int, int, float]]:
    """Answers whose log length lies over LENGTH_OUTLIER_Z robust deviations from the median: (line, chars, z),
    the worst first. Log lengths, so that ten times longer and ten times shorter weigh alike."""
    if len(answers) < guide.MIN_ROWS_FOR_LENGTHS:
        return []
    logs = {line: math.log(max(1, len(a))) for line, a in answers.items()}
    centre = statistics.median(logs.values())
    deviations = [abs(v - centre) for v in logs.values()]
    scale = 1.4826 * statistics.median(deviations)  # MAD, scaled to a normal sd
    if scale == 0:  # more than half the answers of one length: the mean deviation instead (the usual fallback)
        scale = 1.2533 * statistics.fmean(deviations)
    if scale == 0:
        return []
    scored = [(line, len(answers[line]), (v - centre) / scale) for line, v in logs.items()]
    return sorted((s for s in scored if abs(s[2]) > guide.LENGTH_OUTLIER_Z.figure), key=lambda s: -abs(s[2]))


def _length_warning(outliers: list[tuple[int, int, float]], answers: dict[int, str], group: str) -> GuideWarning:
    g = guide.LENGTH_OUTLIER_Z
    median = statistics.median(len(a) for a in answers.values())
    worst = ", ".join(f"line {line} ({chars:,} chars)" for line, chars, _ in outliers[:5])
    return GuideWarning("length", f"{len(outliers)} of {len(answers)} {group} of unusual length, over {g.figure:g} robust "
                                  f"deviations from their median of {median:,.0f} chars: {worst}; {g.why} ({g.guides})",
                        tuple(line for line, _, _ in outliers))


def duplicate_answers(answers: dict[int, str]) -> tuple[float, list[tuple[str, int, int]]]:
    """The share of answers equal (after normalisation) to an earlier one, and the repeated answers:
    (answer, copies, first line), most copies first."""
    groups: dict[str, list[int]] = {}
    for line, a in answers.items():
        groups.setdefault(normalize(a), []).append(line)
    repeated = sorted(((answers[ls[0]], len(ls), ls[0]) for ls in groups.values() if len(ls) > 1), key=lambda r: -r[1])
    return (len(answers) - len(groups)) / len(answers), repeated


def _duplicate_warning(share: float, repeated: list[tuple[str, int, int]], n: int) -> GuideWarning:
    g = guide.DUPLICATE_ANSWERS
    top = ", ".join(f"{_short(a)} x{k} (first on line {line})" for a, k, line in repeated[:3])
    return GuideWarning("duplicate-answers", f"{share:.0%} of {n} answers repeat an earlier one after normalisation, "
                                             f"over {g.figure:.0%} ({top}): {g.why} ({g.guides})",
                        tuple(line for _, _, line in repeated))


def production_labels(path: Path, key: str | None) -> Counter[str]:
    """Labels of production's answers: the `output` of each row of `ftgate logs import`'s production.jsonl."""
    if not path.is_file():
        raise DataError(f"{path}: --production file not found; give the production.jsonl that `ftgate logs import` "
                        "writes (one {\"id\", \"output\"} per line)")
    found: Counter[str] = Counter()
    for line in iter_jsonl(path):
        output = line.value.get("output") if isinstance(line.value, dict) else None
        label = label_of(output, key) if isinstance(output, str) else None
        if label is not None:
            found[label] += 1
    return found


def compare_balance(train: dict[str, int], production: Counter[str]) -> Balance:
    n_train, n_prod = sum(train.values()), sum(production.values())
    labels = sorted(set(train) | set(production), key=lambda k: (-production.get(k, 0), k))
    shares = {k: (train.get(k, 0) / n_train, production.get(k, 0) / n_prod) for k in labels}
    distance = sum(abs(t - p) for t, p in shares.values()) / 2
    gap = guide.BALANCE_NAMED_GAP - 1e-9  # 25% against 20% is a gap of 5 points, whatever the float says
    over = tuple(sorted((k for k, (t, p) in shares.items() if t - p >= gap), key=lambda k: shares[k][1] - shares[k][0]))
    under = tuple(sorted((k for k, (t, p) in shares.items() if p - t >= gap), key=lambda k: shares[k][0] - shares[k][1]))
    return Balance(distance, n_prod, shares, over, under)


def _balance_warning(b: Balance) -> GuideWarning:
    g = guide.BALANCE_DISTANCE

    def named(labels: tuple[str, ...]) -> str:
        return ", ".join(f"{_short(k)} {b.shares[k][0]:.0%} vs {b.shares[k][1]:.0%}" for k in labels[:4]) or "none"

    return GuideWarning("balance", f"label mix differs from production's by {b.distance:.2f} (total variation over "
                                   f"{b.production_rows} production rows), over {g.figure:g}; over-represented in training: "
                                   f"{named(b.over)}; under-represented: {named(b.under)}: {g.why} ({g.guides})")


def annotations(rows: list[Row], keep: set[int]) -> tuple[list[list[Any]], list[int]]:
    """Rows' `"annotations"` lists (one label per annotator, the same annotators in the same order on every row,
    null where one did not label the row), of the most common length; and the lines left out (another length,
    or not a list of labels)."""
    found: dict[int, list[Any]] = {}
    bad: list[int] = []
    for r in rows:
        value = r.data.get("annotations")
        if r.line not in keep or value is None:
            continue
        if isinstance(value, list) and len(value) >= 2 and all(v is None or isinstance(v, (str, int)) for v in value):
            found[r.line] = value
        else:
            bad.append(r.line)
    if not found:
        return [], bad
    width = Counter(len(v) for v in found.values()).most_common(1)[0][0]
    return [v for v in found.values() if len(v) == width], bad + [line for line, v in found.items() if len(v) != width]


def agreement_of(rows: list[list[Any]]) -> Agreement:
    """Cohen's kappa for two annotators (a row with a null is left out), Fleiss' for more (only the rows every
    annotator labelled: Fleiss' needs as many labels on every row)."""
    raters = tuple(f"annotator {i + 1}" for i in range(len(rows[0])))
    if len(raters) == 2:
        return cohen_kappa([(a, b) for a, b in rows], raters)  # type: ignore[arg-type]
    return fleiss_kappa([r for r in rows if all(v is not None for v in r)], raters)


def _agreement_warning(a: Agreement) -> GuideWarning | None:
    share, floor = guide.ANNOTATOR_AGREEMENT, guide.ANNOTATOR_KAPPA
    name = "Cohen's" if a.method.startswith("cohen") else "Fleiss'"
    kappa = "undefined (one label throughout)" if a.kappa is None else f"{a.kappa:.2f}"
    figures = (f"{len(a.raters)} annotators agree on {a.observed:.0%} of {a.cases} rows, {name} kappa {kappa}")
    if a.observed < share.figure:
        return GuideWarning("agreement", f"{figures}: under {share.figure:.0%} agreement: {share.why} ({share.guides})")
    if a.kappa is not None and a.kappa < floor.figure:
        return GuideWarning("agreement", f"{figures}: kappa under {floor.figure:.2f}: {floor.why} ({floor.guides})")
    return None


# ---- all of them ---------------------------------------------------------------------------------------
def profile_data(rows: list[Row], converted: dict[int, dict], rejected: set[int], *, label_key: str | None = None,
                 production: Path | None = None) -> DataProfile:
    """Measure the rows that passed (valid, not rejected) against the field guides' figures."""
    answers = {line: answer_of(row) for line, row in sorted(converted.items()) if line not in rejected}
    labels = find_labels(answers, label_key) if answers else Labels("none", label_key, note="labels: none: no rows passed")
    profile = DataProfile(len(answers), labels)
    profile.warnings += size_warnings(len(answers), labels)
    if not answers:
        return profile

    free = {line: a for line, a in answers.items() if labels.how == "none" or line in labels.unlabelled}
    if labels.how == "answer":
        profile.notes.append("answer lengths and duplicate answers not measured: the answers are the labels")
    elif not free:
        profile.notes.append("duplicate answers not measured: every answer carries a label, so equal answers are expected")
    else:
        share, repeated = duplicate_answers(free)
        profile.duplicate_answers = share
        if share > guide.DUPLICATE_ANSWERS.figure:
            profile.warnings.append(_duplicate_warning(share, repeated, len(free)))
    if labels.how != "answer":
        # labelled answers (JSON) and answers without a label (general replay rows) are two formats: each is
        # measured against its own median, or the smaller group would be all outliers
        groups = [("answers", answers)] if labels.how == "none" else [
            ("labelled answers", {k: a for k, a in answers.items() if k not in free}), ("answers without a label", free)]
        for group, members in groups:
            outliers = length_outliers(members)
            profile.length_outliers += outliers
            if outliers:
                profile.warnings.append(_length_warning(outliers, members, group))
        if len(answers) < guide.MIN_ROWS_FOR_LENGTHS:
            profile.notes.append(f"answer lengths not measured: under {guide.MIN_ROWS_FOR_LENGTHS} rows")

    if production is not None:
        prod = production_labels(production, labels.key)
        if not labels.counts:
            profile.notes.append("label mix not compared with production: no labels found in the training data")
        elif not prod:
            profile.notes.append(f"label mix not compared with production: no answer in {production} gave a label "
                                 + (f"(field `{labels.key}`)" if labels.key else "(whole answers)"))
        else:
            profile.balance = compare_balance(labels.counts, prod)
            if profile.balance.distance > guide.BALANCE_DISTANCE.figure:
                profile.warnings.append(_balance_warning(profile.balance))

    annotated, left_out = annotations(rows, set(answers))
    if left_out:
        profile.notes.append(f"annotations ignored on {_lines_text(left_out)}: not a list of 2+ labels, or another "
                             "number of annotators than most rows")
    agreement = agreement_of(annotated) if annotated else None
    if agreement is not None and agreement.cases < len(annotated):
        profile.notes.append(f"agreement measured on {agreement.cases} of {len(annotated)} annotated rows: the others "
                             "lack a label from an annotator (null)")
    if agreement is not None and agreement.cases:
        profile.agreement = agreement
        found = _agreement_warning(agreement)
        if found is not None:
            profile.warnings.append(found)
    return profile


def profile_lines(profile: DataProfile) -> list[str]:
    lines = [f"  {profile.labels.note}"]
    if profile.balance is not None:
        b = profile.balance
        lines.append(f"  label mix against production ({b.production_rows} rows): distance {b.distance:.2f}")
    if profile.agreement is not None:
        a = profile.agreement
        kappa = "undefined" if a.kappa is None else f"{a.kappa:.2f}"
        lines.append(f"  annotators: {len(a.raters)} on {a.cases} rows, agreement {a.observed:.0%}, {a.method} kappa {kappa}")
    lines += [f"  {note}" for note in profile.notes]
    lines += [f"  warning: {w.message}" for w in profile.warnings]
    return lines
