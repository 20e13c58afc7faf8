"""`ftgate export ADAPTER OUT`: the artifact that ships, gated rather than trusted.

A LoRA adapter is merged into its base (peft's `merge_and_unload`) and written as a full model that
vLLM, TGI or transformers serve without peft: the weights in the dtype asked for, the tokenizer, the
chat template and the generation config. Merging and a change of dtype change outputs, so the export
then generates the suites' cases with the merged model and with the adapter, on the same engine and
dtype, and compares them:

- agreement per suite: the share of cases whose two outputs are the same text;
- the golden verdict: a golden case the adapter passes and the merged model fails is a regression the
  export made.

The export is refused when a suite's agreement is below `--min-agreement` (default 0.95) or any golden
verdict changed: its weights are deleted, and `ftgate-export.json` beside them says why. An accepted
export records its fingerprint and agreement there, which `ftgate promote --export OUT` copies into the
promotion record. `pytest --candidate=OUT` gates the merged model as any model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OptionError, SubjectError

SCHEMA_VERSION = 1
KIND = "ftgate-export"
RECORD = "ftgate-export.json"
MIN_AGREEMENT = 0.95
DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class ExportResult:
    out: Path
    adapter: Path
    base: Path
    dtype: str
    fingerprint: str = ""  # the merged model's (the subject fingerprint `pytest --candidate=OUT` computes)
    adapter_fingerprint: str = ""
    agreement: dict[str, dict[str, Any]] = field(default_factory=dict)  # suite -> n, same, rate
    golden_changed: list[str] = field(default_factory=list)  # "suite/case" the merge made fail
    min_agreement: float = MIN_AGREEMENT
    why: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not self.why

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "kind": KIND, "verdict": "accepted" if self.accepted else "refused",
                "adapter": str(self.adapter), "adapter_fingerprint": self.adapter_fingerprint, "base": str(self.base),
                "dtype": self.dtype, "fingerprint": self.fingerprint, "min_agreement": self.min_agreement,
                "agreement": self.agreement, "golden_changed": self.golden_changed, "why": self.why}


def merge_and_unload(model: Any) -> Any:
    return model.merge_and_unload()


def export_adapter(adapter: Path, out: Path, *, suites_dir: Path, dtype: str = "float32", base: str | None = None,
                   min_agreement: float = MIN_AGREEMENT, merge: Callable[[Any], Any] = merge_and_unload) -> ExportResult:
    """Merge `adapter` into its base, write it to `out`, and gate it against the adapter on the suites."""
    from ..subjects.hf.subject import base_of
    from ..subjects.hf.weights import tokenizer_dir

    adapter = Path(adapter).resolve()
    if not (adapter / "adapter_config.json").exists():
        raise OptionError(f"ftgate export {adapter}: not a PEFT adapter directory (no adapter_config.json)")
    if dtype not in DTYPES:
        raise OptionError(f"--dtype {dtype}: one of {', '.join(DTYPES)}")
    if not 0 < min_agreement <= 1:
        raise OptionError(f"--min-agreement {min_agreement}: a share above 0, at most 1")
    out = Path(out).resolve()
    if out.exists() and any(out.iterdir()):
        raise OptionError(f"ftgate export: {out} is not empty; export into a new directory")
    from .suite import find_suite_files, load_suite

    suites = [load_suite(f) for f in find_suite_files([suites_dir], suites_dir)]  # before anything is written
    base_dir = base_of(adapter, base)
    _write_merged(adapter, base_dir, tokenizer_dir(base_dir, adapter), out, dtype, merge)
    result = ExportResult(out, adapter, base_dir, dtype, min_agreement=min_agreement)
    try:
        _gate(result, suites, base)
    except BaseException:
        _unservable(out)  # an export that could not be gated is not left to be served
        raise
    if not result.accepted:
        _unservable(out)  # a refused export leaves nothing to serve
    (out / RECORD).write_text(json.dumps(result.to_json(), indent=1) + "\n", encoding="utf-8")
    return result


def _unservable(out: Path) -> None:
    for weights in out.glob("*.safetensors"):
        weights.unlink()


def _write_merged(adapter: Path, base_dir: Path, tok_dir: Path, out: Path, dtype: str, merge: Callable[[Any], Any]) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..machine.quiet import quiet_kernels_notice

    quiet_kernels_notice()
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=getattr(torch, dtype))
    merged = merge(PeftModel.from_pretrained(model, adapter))
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(tok_dir).save_pretrained(out)  # tokenizer, special tokens and chat template


def _gate(result: ExportResult, suites: list[Any], base: str | None) -> None:
    from ..stores.cache import Cache
    from ..subjects import Resolver, SubjectOptions
    from .runner import _jobs, apply_scorers, generate_all

    options = SubjectOptions(dtype=result.dtype, **({"base": base} if base else {}))
    try:
        resolver = Resolver(options, Cache(None))
        adapter = resolver.build(str(result.adapter), "candidate")
        merged = resolver.build(str(result.out), "baseline")
    except SubjectError as exc:
        raise SubjectError(f"ftgate export: the merged model in {result.out} cannot be loaded back ({exc})") from None
    result.fingerprint, result.adapter_fingerprint = merged.info.fingerprint, adapter.info.fingerprint
    jobs = _jobs(suites, "candidate", samples=False)  # one answer per case: the first sample
    cache = Cache(None)
    outputs = {role: generate_all(subject, jobs, cache, progress=False) for role, subject in
               (("adapter", adapter), ("merged", merged))}
    start = 0
    for s in suites:
        n = len(s.cases)
        mine = {role: outs[start:start + n] for role, outs in outputs.items()}
        start += n
        same = sum(a.text == m.text for a, m in zip(mine["adapter"], mine["merged"]))
        result.agreement[s.name] = {"n": n, "same": same, "rate": same / n if n else 1.0}
        if n and same / n < result.min_agreement:
            result.why.append(f"{s.name}: the merged model answers {n - same} of {n} case(s) differently from the adapter "
                              f"({same / n:.1%} agree; --min-agreement {result.min_agreement:.0%})")
        if s.kind == "golden":
            scored = {role: apply_scorers(s, subject.info, outs, {}) for role, outs, subject in
                      (("adapter", mine["adapter"], adapter), ("merged", mine["merged"], merged))}
            changed = [f"{s.name}/{a.case.id}" for a, m in zip(scored["adapter"].results, scored["merged"].results)
                       if a.passed and not m.passed]
            result.golden_changed += changed
            if changed:
                result.why.append(f"{s.name}: the merge changed {len(changed)} golden verdict(s), passed by the adapter "
                                  f"and failed by the merged model: {', '.join(changed[:5])}")
    adapter.close()
    merged.close()


def read_export(out: Path) -> dict[str, Any]:
    """An export's record, as `ftgate promote --export` reads it."""
    from ..files.versioned import read_versioned

    try:
        return read_versioned(Path(out) / RECORD, SCHEMA_VERSION, kind=KIND, what="an `ftgate export` record",
                              required=("verdict", "fingerprint", "adapter_fingerprint", "agreement"))
    except (OSError, ValueError) as exc:
        raise OptionError(f"--export {out}: no readable {RECORD} ({exc}); export the adapter with `ftgate export`") from None


def export_lines(result: ExportResult) -> list[str]:
    lines = [f"exported {result.adapter} merged into {result.base} ({result.dtype}) to {result.out}"]
    for suite, a in result.agreement.items():
        lines.append(f"  {suite}: {a['same']}/{a['n']} outputs the same as the adapter's ({a['rate']:.1%})")
    if result.accepted:
        lines.append(f"verdict: ACCEPTED — fingerprint {result.fingerprint[:12]}; record: {result.out / RECORD}")
    else:
        lines += [f"  refused: {why}" for why in result.why]
        lines.append(f"verdict: REFUSED — the merged weights were deleted; record: {result.out / RECORD}")
    return lines


__all__ = ["ExportResult", "export_adapter", "export_lines", "read_export"]
