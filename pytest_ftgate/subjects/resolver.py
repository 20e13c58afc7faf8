"""One resolver for everything that generates: candidate, baseline and judges are built through the
subject kinds' registry in one shared context, so they share one cache and, where they name the
same weights, one model load (a judge on the baseline's model uses the baseline's engine)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SubjectError
from .base import BuildContext, Role, Subject, SubjectOptions, flag_of, subject_kinds

if TYPE_CHECKING:
    from ..stores.cache import Cache


def canonical_spec(spec: str) -> str:
    """A spec that names the same subject from anywhere: an existing path made absolute, else as given."""
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


class Resolver:
    """Builds the subjects of a run. Each (spec, role) is built once."""

    def __init__(self, options: SubjectOptions, cache: Cache):
        self.context = BuildContext(options, cache)
        self._built: dict[tuple[str, str], Subject] = {}

    @property
    def cache(self) -> Cache:
        return self.context.cache

    def add(self, spec: str, role: Role, subject: Subject) -> None:
        """Use an already built subject for `spec` in `role` (a subject made in code, e.g. in a test)."""
        self._built[(spec, role)] = subject

    def build(self, spec: str, role: Role) -> Subject:
        key = (spec, role)
        if key not in self._built:
            for cls in sorted(subject_kinds().values(), key=lambda c: c.catch_all):
                if cls.claims(spec):
                    subject = cls.build(spec, role, self.context)
                    subject.info = replace(subject.info, spec=canonical_spec(spec))
                    self._built[key] = subject
                    break
            else:  # pragma: no cover - the hf kind claims every spec
                raise SubjectError(f"{flag_of(role)}={spec}: no subject kind understands it")
        return self._built[key]

    def pair(self, candidate: str | None, baseline: str | None) -> tuple[Subject, Subject | None]:
        """(baseline, candidate). Without a baseline, the candidate's implied one (an adapter's base)."""
        cand = self.build(candidate, "candidate") if candidate else None
        if baseline:
            return self.build(baseline, "baseline"), cand
        if cand is None:
            raise SubjectError("nothing to evaluate: pass --baseline (red phase) and/or --candidate")
        implied = cand.implied_baseline()
        if implied is None:
            raise SubjectError(
                f"--candidate={candidate} is not a PEFT adapter, so there is no base model to compare "
                "against: pass --baseline (a model directory, openai:MODEL or an outputs .jsonl)"
            )
        return implied, cand

    def close(self) -> None:
        """Stop what the subjects started (a vLLM server): at the end of the run that built them."""
        for subject in {id(s): s for s in self._built.values()}.values():
            subject.close()

    def judge(self, spec: str) -> Subject:
        """A subject that can judge, from --ftgate-judge or a suite's judge.model."""
        subject = self.build(spec, "judge")
        if not subject.can_judge:
            kinds = ", ".join(sorted(k for k, cls in subject_kinds().items() if cls.can_judge))
            raise SubjectError(f"--ftgate-judge={spec}: a {subject.kind} subject cannot judge (it cannot read a rubric "
                               f"and answer). Name a judge of one of these kinds: {kinds}")
        return subject
