"""Subjects turn prompts into outputs: a local HF model (+adapter), an OpenAI-compatible
endpoint, or a JSONL of outputs made elsewhere.

Spec strings, as given to --candidate / --baseline:
    path/to/adapter/        a PEFT adapter directory (adapter_config.json); base from its config
    path/to/model/          a full model directory (config.json + safetensors)
    openai:MODEL            an OpenAI-compatible endpoint (base URL from --ftgate-openai-base-url
                            or OPENAI_BASE_URL)
    path/to/outputs.jsonl   {"id": ..., "output": ...} per line, optional "suite"
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .cache import Cache
from .errors import IncompleteDataError, SubjectError
from .hf import HFEngine
from .types import Case, GenerationParams, Output, Request, SubjectInfo

Role = Literal["baseline", "candidate"]
OnBatch = Callable[[list[tuple[int, Output]]], None]


@dataclass(frozen=True)
class Job:
    """A request with the case and suite it serves (outputs files are keyed by case id)."""

    suite: str
    case: Case
    request: Request


class Subject:
    """Base class: `run` produces outputs for jobs; `generate` is the friendly single-call API."""

    info: SubjectInfo
    cacheable: bool = True

    def run(self, jobs: Sequence[Job], on_batch: OnBatch, progress: Any = None) -> None:
        raise NotImplementedError

    def perplexity(self, jobs: Sequence[Job], targets: Sequence[str]) -> list[float | None]:
        """Perplexity of each target as the reply to its job's chat; None where not measurable."""
        return [None] * len(jobs)

    def generate(self, prompt: str | Sequence[dict[str, str]], **params: Any) -> str:
        """Generate one answer, e.g. `candidate.generate("What is 2+2?", max_new_tokens=8)`."""
        messages = ({"role": "user", "content": prompt},) if isinstance(prompt, str) else tuple(prompt)
        request = Request(messages, GenerationParams(**params))
        case = Case(id="adhoc", messages=messages)
        got: list[Output] = []
        self.run([Job("adhoc", case, request)], lambda batch: got.extend(o for _, o in batch))
        return got[0].text


class HFSubject(Subject):
    def __init__(self, engine: HFEngine, role: Role, adapter_enabled: bool):
        self.engine = engine
        self.adapter_enabled = adapter_enabled
        name = str(engine.adapter_dir if adapter_enabled and engine.adapter_dir else engine.base_dir)
        details = {"base_model": str(engine.base_dir), "load_in_4bit": engine.load_in_4bit}
        if adapter_enabled and engine.adapter_dir is not None:
            details["adapter"] = str(engine.adapter_dir)
            manifest = engine.adapter_dir / "ftgate.json"
            if manifest.exists():
                details["manifest"] = json.loads(manifest.read_text())
        self.info = SubjectInfo(role, "hf", name, engine.fingerprint(adapter_enabled), details)

    def run(self, jobs: Sequence[Job], on_batch: OnBatch, progress: Any = None) -> None:
        self.engine.generate(
            [j.request for j in jobs], adapter_enabled=self.adapter_enabled, on_batch=on_batch, progress=progress
        )

    def perplexity(self, jobs: Sequence[Job], targets: Sequence[str]) -> list[float | None]:
        return list(self.engine.perplexity([j.request for j in jobs], targets, adapter_enabled=self.adapter_enabled))


class OutputsSubject(Subject):
    """Outputs produced elsewhere (a batch job on a cluster), keyed by case id."""

    cacheable = False

    def __init__(self, path: Path, role: Role, cache: Cache):
        self.path = path
        self.by_key: dict[tuple[str | None, str], Output] = {}
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    text = row["output"]
                    case_id = str(row["id"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise SubjectError(
                        f'{path}:{lineno}: each line must be a JSON object like {{"id": "t-001", "output": "..."}}'
                        ' (optional "suite", "tokens_in", "tokens_out", "latency_s")'
                    ) from None
                if not isinstance(text, str):
                    raise SubjectError(f"{path}:{lineno}: `output` must be a string")
                out = Output(text, row.get("tokens_in"), row.get("tokens_out"), row.get("latency_s"))
                self.by_key[(row.get("suite"), case_id)] = out
        self.info = SubjectInfo(role, "outputs", str(path), cache.file_sha256(path)[:24], {"file": str(path)})

    def run(self, jobs: Sequence[Job], on_batch: OnBatch, progress: Any = None) -> None:
        found, missing = [], []
        for i, job in enumerate(jobs):
            out = self.by_key.get((job.suite, job.case.id)) or self.by_key.get((None, job.case.id))
            if out is None:
                missing.append(f"{job.suite}/{job.case.id}")
            else:
                found.append((i, out))
        if missing:
            raise IncompleteDataError(
                f"{self.path} has no output for {len(missing)} case(s): {', '.join(missing[:5])}"
                f"{' …' if len(missing) > 5 else ''}. Add a line per case; a gate on missing outputs would lie."
            )
        on_batch(found)


@dataclass(frozen=True)
class SubjectOptions:
    """How to build subjects: from the plugin's Settings or a script."""

    base: str | Path | None = None
    load_in_4bit: bool = False
    batch_size: int = 16
    openai_base_url: str | None = None
    openai_concurrency: int = 8
    timeout_s: float = 120.0


def _is_hf_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "adapter_config.json").exists() or (path / "config.json").exists())


def resolve_subjects(
    candidate: str | None, baseline: str | None, options: SubjectOptions, cache: Cache
) -> tuple[Subject, Subject | None]:
    """Build (baseline, candidate). A baseline defaults to the candidate adapter's base model."""
    engines: dict[tuple[Path, Path | None], HFEngine] = {}
    cand = _build(candidate, "candidate", options, cache, engines) if candidate else None
    if baseline:
        base = _build(baseline, "baseline", options, cache, engines)
    elif isinstance(cand, HFSubject) and cand.engine.adapter_dir is not None:
        base = HFSubject(cand.engine, "baseline", adapter_enabled=False)
    elif cand is None:
        raise SubjectError("nothing to evaluate: pass --baseline (red phase) and/or --candidate")
    else:
        raise SubjectError(
            f"--candidate {candidate} is not a PEFT adapter, so there is no base model to compare "
            "against: pass --baseline (a model directory, openai:MODEL or an outputs .jsonl)"
        )
    return base, cand


def _build(spec: str, role: Role, options: SubjectOptions, cache: Cache, engines: dict) -> Subject:
    flag = f"--{role}"
    if spec.startswith("openai:"):
        from .openai_subject import OpenAISubject

        return OpenAISubject(spec.removeprefix("openai:"), role, options)
    path = Path(spec).expanduser()
    if path.suffix == ".jsonl":
        if not path.is_file():
            raise SubjectError(f"{flag} {spec}: no such outputs file")
        return OutputsSubject(path, role, cache)
    if not path.exists():
        raise SubjectError(
            f"{flag} {spec}: no such file or directory. Give a PEFT adapter directory, a model directory, "
            "openai:MODEL or an outputs .jsonl (models are never downloaded)"
        )
    if not _is_hf_dir(path):
        raise SubjectError(f"{flag} {spec}: neither adapter_config.json nor config.json is in this directory")
    path = path.resolve()
    if (path / "adapter_config.json").exists():
        from .hf import refuse_pickles

        refuse_pickles(path, "adapter")
        base = Path(options.base).resolve() if options.base else _adapter_base(path)
        key = (base, path)
        if key not in engines:
            engines[key] = HFEngine(base, path, options.load_in_4bit, cache, options.batch_size)
        return HFSubject(engines[key], role, adapter_enabled=True)
    for (base_dir, _), engine in engines.items():  # reuse a loaded base: the adapter is switched off
        if base_dir == path:
            return HFSubject(engine, role, adapter_enabled=False)
    engines[(path, None)] = HFEngine(path, None, options.load_in_4bit, cache, options.batch_size)
    return HFSubject(engines[(path, None)], role, adapter_enabled=False)


def _adapter_base(adapter: Path) -> Path:
    try:
        config = json.loads((adapter / "adapter_config.json").read_text())
    except json.JSONDecodeError as exc:
        raise SubjectError(f"{adapter}/adapter_config.json is not valid JSON: {exc}") from None
    name = config.get("base_model_name_or_path")
    if not name:
        raise SubjectError(f"{adapter}/adapter_config.json names no base_model_name_or_path; pass --ftgate-base PATH")
    base = Path(name).expanduser()
    if not base.is_absolute():
        base = (adapter / base) if (adapter / base).exists() else base
    if not base.is_dir():
        raise SubjectError(
            f"the adapter's base model {name!r} is not a local directory (models are never downloaded); "
            "pass --ftgate-base PATH to a local copy of it"
        )
    return base.resolve()
