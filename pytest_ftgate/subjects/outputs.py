"""Outputs produced elsewhere (a batch job on a cluster), read from a JSONL file keyed by case id."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import IncompleteDataError, SubjectError
from ..files.jsonl import iter_jsonl
from .base import BuildContext, OnBatch, Role, Subject, flag_of, register_subject

if TYPE_CHECKING:  # imported where used: loading the plugin stays light
    from ..cost.pricing import Pricing, ServingCost, Usage
    from ..types import Output, SubjectInfo

ROW = ('{"id": "t-001", "output": "..."} (optional "suite", "tokens_in", "tokens_out", "latency_s", and "sample": 0, 1, '
       '... for the samples of a suite that sets generate.samples)')


@register_subject
class OutputsSubject(Subject):
    kind = "outputs"
    cacheable = False

    @classmethod
    def claims(cls, spec: str) -> bool:
        return spec.endswith(".jsonl")

    @classmethod
    def build(cls, spec: str, role: Role, ctx: BuildContext) -> Subject:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise SubjectError(f"{flag_of(role)}={spec}: no such outputs file; each line of one is {ROW}")
        return cls(path, role, ctx.cache.file_sha256(path)[:24])

    @classmethod
    def serving_cost(cls, info: SubjectInfo, usage: Usage, pricing: Pricing) -> ServingCost:
        from ..cost.pricing import ServingCost, compute_cost

        if not usage.throughput_rps:
            return ServingCost.unknown("no latency_s in the outputs file, so the compute cost is unknown")
        return compute_cost(pricing, usage)

    def __init__(self, path: Path, role: Role, fingerprint: str):
        from ..types import Output, SubjectInfo

        self.path = path
        self.by_key: dict[tuple[str | None, str, int], Output] = {}
        first_line: dict[tuple[str | None, str, int], int] = {}
        duplicates: list[str] = []
        for line in iter_jsonl(path):
            row = line.value
            if line.error or not isinstance(row, dict) or "output" not in row or "id" not in row:
                raise SubjectError(f"{path}:{line.number}: each line must be a JSON object like {ROW}")
            if not isinstance(row["output"], str):
                raise SubjectError(f"{path}:{line.number}: `output` must be a string")
            for key in ("tokens_in", "tokens_out", "latency_s"):
                value = row.get(key)
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
                                          or (key != "latency_s" and not float(value).is_integer())):
                    kind = "a number of seconds" if key == "latency_s" else "a whole number"
                    raise SubjectError(f"{path}:{line.number}: `{key}` must be {kind} >= 0 or absent, got {value!r}")
            sample = row.get("sample", 0)
            if isinstance(sample, bool) or not isinstance(sample, int) or sample < 0:
                raise SubjectError(f"{path}:{line.number}: `sample` must be a whole number >= 0 or absent, got {sample!r}")
            out = Output(row["output"], row.get("tokens_in"), row.get("tokens_out"), row.get("latency_s"))
            key = (row.get("suite"), str(row["id"]), sample)
            if key in first_line:
                where = f"suite {key[0]!r}, " if key[0] is not None else ""
                which = f" sample {sample}" if sample else ""
                duplicates.append(f"{where}id {key[1]!r}{which} on lines {first_line[key]} and {line.number}")
                continue
            first_line[key] = line.number
            self.by_key[key] = out
        if duplicates:
            raise SubjectError(
                f"{path}: {len(duplicates)} case id(s) appear more than once ({'; '.join(duplicates[:5])}"
                f"{' …' if len(duplicates) > 5 else ''}): which answer counts would be a guess. Keep one line per "
                "case (per suite, with a \"suite\" key, where ids repeat across suites)")
        self.info = SubjectInfo(role, self.kind, str(path), fingerprint, {"file": str(path)})

    def run(self, jobs: Sequence[Any], on_batch: OnBatch, progress: Any = None) -> None:
        found, missing, used = [], [], set()
        for i, job in enumerate(jobs):
            n = getattr(job, "sample", 0)
            key = next((k for k in ((job.suite, job.case.id, n), (None, job.case.id, n)) if k in self.by_key), None)
            if key is None:
                missing.append(f"{job.suite}/{job.case.id}" + (f" sample {n}" if n else ""))
            else:
                used.add(key)
                found.append((i, self.by_key[key]))
        if missing:
            unknown = [(f"{s}/{i}" if s is not None else i) + (f" sample {n}" if n else "")
                       for s, i, n in self.by_key if (s, i, n) not in used]
            extra = (f" It holds {len(unknown)} id(s) that no case asks for: {', '.join(unknown[:5])}"
                     f"{' …' if len(unknown) > 5 else ''} (renamed cases, or another suite's?)." if unknown else "")
            raise IncompleteDataError(
                f"{self.path} has no output for {len(missing)} case(s): {', '.join(missing[:5])}"
                f"{' …' if len(missing) > 5 else ''}.{extra} Add a line per case; a gate on missing outputs would lie."
            )
        on_batch(found)
