"""Local Hugging Face models: a PEFT adapter directory, or a full model directory or Hub id.

A base model is loaded once (pytest_ftgate.subjects.hf.engine): an adapter's baseline is the same
loaded base with the adapters switched off, and two adapters on one base (the promoted model and the
candidate) are two named adapters of one load. A base named by a Hub id (what PEFT writes into
adapter_config.json) resolves from the user's Hugging Face cache as transformers resolves it.
"""

from __future__ import annotations

import hashlib

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import SubjectError
from ...machine.hardware import DTYPES
from ...settings.options import Option, positive_int_arg, seconds_arg
from ..base import BuildContext, Job, OnBatch, Role, Subject, flag_of, register_subject
from .hub import resolve_model_dir
from .vllm_server import ENGINES

if TYPE_CHECKING:  # imported where used: loading the plugin stays light
    from ...cost.pricing import Pricing, ServingCost, Usage
    from ...types import JudgeReply, SubjectInfo
    from .engine import HFEngine


def batch_arg(text: str | int | None) -> int | None:
    """--ftgate-batch-size: a positive integer, or auto (None)."""
    if text is None or str(text).strip().lower() == "auto":
        return None
    try:
        return positive_int_arg(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; give a positive integer, or auto") from None


def engine_arg(text: str) -> str:
    value = str(text).strip().lower()
    if value not in ENGINES:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(ENGINES)}")
    return value


def dtype_arg(text: str) -> str:
    value = str(text).strip().lower()
    if value not in DTYPES:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(DTYPES)}")
    return value


@register_subject
class HFSubject(Subject):
    """A local model: an adapter on its base, or a base alone (an adapter's base, with it disabled)."""

    kind = "hf"
    catch_all = True
    can_judge = True
    options = (
        Option("--ftgate-base", "ftgate_base", field="base", metavar="DIR_OR_ID", convert=lambda v, root: _local_or_id(v, root),
               help="base model for the adapter (a directory or a Hub id in the cache), overriding adapter_config.json. "
                    "Default: from the adapter"),
        Option("--ftgate-4bit", "ftgate_4bit", field="load_in_4bit", action="store_true", default=False,
               help="load local models in 4-bit NF4 (bitsandbytes). Default: off"),
        Option("--ftgate-batch-size", "ftgate_batch_size", field="batch_size", metavar="N|auto", type=batch_arg,
               default=None, ini="ftgate_batch_size", ini_help="generation batch size for local models, or auto "
               "(--ftgate-batch-size)",
               help="generation batch size for local models; latency and cost are measured at it. auto: the largest "
                    "batch that fits the memory free, per length bucket (at most 64 on a CPU, 256 on a GPU), halved "
                    "and retried on out-of-memory. Default: ini ftgate_batch_size or auto"),
        Option("--ftgate-dtype", "ftgate_dtype", field="dtype", metavar="|".join(DTYPES), type=dtype_arg, default="auto",
               ini="ftgate_dtype", ini_help="dtype local models run in (--ftgate-dtype)",
               help="dtype local models run in. auto: bfloat16 where the hardware computes it (a GPU with bf16, a CPU "
                    "with AVX-512 BF16 or AMX), float16 on other GPUs, float32 elsewhere. Outputs are cached per dtype "
                    "and every report names it. Default: ini ftgate_dtype or {default}"),
        Option("--ftgate-engine", "ftgate_engine", field="engine", metavar="|".join(ENGINES), type=engine_arg, default="hf",
               ini="ftgate_engine", ini_help="how local models generate: hf or vllm (--ftgate-engine)",
               help="how local models generate: hf (transformers' generate, in this process) or vllm (one vLLM server "
                    "for the run, the base loaded once and every adapter a LoRA module of it). A model keeps its "
                    "fingerprint; the engine is part of what outputs are cached under, and every report names it. "
                    "Default: ini ftgate_engine or {default}"),
        Option("--ftgate-vllm-python", "ftgate_vllm_python", field="vllm_python", metavar="PYTHON", ini="ftgate_vllm_python",
               ini_relative=True, ini_help="the Python that runs the vLLM server (--ftgate-vllm-python)",
               help="the Python that runs the vLLM server (vLLM pins its own transformers: `make vllm` creates "
                    ".venv-vllm). Default: ini ftgate_vllm_python, else this interpreter if it can import vllm"),
        Option("--ftgate-vllm-timeout", "ftgate_vllm_timeout", field="vllm_timeout_s", metavar="S", type=seconds_arg,
               default=900.0, help="seconds the vLLM server may take to be ready. Default: {default}"),
    )

    @classmethod
    def claims(cls, spec: str) -> bool:
        return True  # whatever no other kind claims is a local model or a Hub id

    @classmethod
    def build(cls, spec: str, role: Role, ctx: BuildContext) -> Subject:
        from .weights import refuse_pickles, tokenizer_dir

        flag = flag_of(role)
        path = Path(spec).expanduser()
        if not path.is_dir():
            hint = ("Give a model directory, a PEFT adapter directory, a Hub id in your Hugging Face cache or "
                    "openai:MODEL" if role == "judge" else
                    "Give a PEFT adapter directory, a model directory, a Hub id in your Hugging Face cache, "
                    "openai:MODEL or an outputs .jsonl")
            path = resolve_model_dir(spec, what=f"{flag}={spec}", hint=hint)
        if not (path / "adapter_config.json").exists() and not (path / "config.json").exists():
            raise SubjectError(f"{flag}={spec}: neither adapter_config.json nor config.json is in this directory")
        path = path.resolve()
        engines: list[HFEngine] = ctx.shared.setdefault(cls, [])
        if (path / "adapter_config.json").exists():
            refuse_pickles(path, "adapter")
            base = base_of(path, ctx.options.base)
            engine = _engine_for(engines, base, tokenizer_dir(base, path), ctx)
            engine.add_adapter(path)  # beside any other adapter on this base: one load for all of them
            return cls(engine, role, path)
        engine = next((e for e in engines if e.base_dir == path), None)  # a loaded base, its adapters switched off
        return cls(engine or _engine_for(engines, path, path, ctx), role, None)

    @classmethod
    def serving_cost(cls, info: SubjectInfo, usage: Usage, pricing: Pricing) -> ServingCost:
        from ...cost.pricing import compute_cost

        return compute_cost(pricing, usage)

    def __init__(self, engine: HFEngine, role: Role, adapter: Path | None):
        from ...types import SubjectInfo, TrainingCost

        self.engine = engine
        self.adapter = adapter
        name = str(adapter or engine.base_dir)
        details: dict[str, Any] = {"base_model": str(engine.base_dir), "load_in_4bit": engine.load_in_4bit,
                                   "engine": engine.engine_name,
                                   "batch_size": engine.batch_size or "auto", "dtype": engine.compute_dtype,
                                   "device": engine.device,
                                   # the chat template and tokenizer files, hashed: golden files bind what they were frozen with
                                   "template": hashlib.sha256(engine.tokenizer_fingerprint.encode()).hexdigest()[:16]}
        training = None
        if adapter is not None:
            details["adapter"] = str(adapter)
            from ...stores.manifest import read_manifest

            manifest = read_manifest(adapter)
            if manifest is not None:
                details["manifest"] = manifest.to_dict()
                training = TrainingCost(gpu_hours=manifest.gpu_hours, wall_s=manifest.wall_s)
        identity = "" if adapter is not None else engine.weights_identity()
        self.info = SubjectInfo(role, self.kind, name, engine.fingerprint(adapter), details, training, identity, spec=name,
                                generation=engine.generation, generation_key=engine.generation_fingerprint(adapter))

    @property
    def adapter_enabled(self) -> bool:
        return self.adapter is not None

    def implied_baseline(self) -> Subject | None:
        return HFSubject(self.engine, "baseline", None) if self.adapter is not None else None

    def run(self, jobs: Sequence[Job], on_batch: OnBatch, progress: Any = None) -> None:
        if self.engine.server is not None:
            self.engine.check_tools([j.request for j in jobs])
            self.engine.server.generate([j.request for j in jobs], self.adapter, on_batch, progress,
                                        [f"case {j.suite}/{j.case.id}" for j in jobs])
            return
        self.engine.generate([j.request for j in jobs], adapter=self.adapter, on_batch=on_batch, progress=progress)

    def close(self) -> None:
        if self.engine.server is not None:
            self.engine.server.stop()

    def perplexity(self, jobs: Sequence[Job], targets: Sequence[str]) -> list[float | None]:
        return list(self.engine.perplexity([j.request for j in jobs], targets, adapter=self.adapter))

    def judge_reply(self, messages: Sequence[dict[str, str]], *, schema: dict[str, Any], max_tokens: int,
                    where: str) -> JudgeReply:
        """Greedy, constrained by the prompt alone; the log-probabilities come from the model's own logits."""
        from ...types import JudgeReply, ReplyToken, TokenChoice

        text, tokens, n_in, n_out = self.engine.complete_with_logprobs(list(messages), max_tokens, TOP_LOGPROBS,
                                                                       adapter=self.adapter)
        return JudgeReply(text, tuple(ReplyToken(t, tuple(TokenChoice(c, lp) for c, lp in top)) for t, top in tokens),
                          n_in, n_out, "prompt")


def _engine_for(engines: list[HFEngine], base: Path, tok_dir: Path, ctx: BuildContext) -> HFEngine:
    """The engine on this base whose tokenizer has the same files (two adapters saved with the same tokenizer
    share one load), else a new one."""
    from .engine import HFEngine
    from .weights import TOKENIZER_FILES, dir_fingerprint

    wanted = json.dumps(dir_fingerprint(tok_dir, ctx.cache, TOKENIZER_FILES), sort_keys=True)
    for engine in engines:
        if engine.base_dir == base and engine.tokenizer_fingerprint == wanted:
            return engine
    engine = HFEngine(base, tok_dir, ctx.options.load_in_4bit, ctx.cache, ctx.options.batch_size, ctx.options.dtype)
    if ctx.options.engine == "vllm":
        from .vllm_server import VLLMServer, vllm_python

        if ctx.options.load_in_4bit:
            raise SubjectError("--ftgate-engine=vllm serves the weights as they are: drop --ftgate-4bit (vLLM "
                               "quantizes with its own methods, not bitsandbytes NF4 of an adapter's base)")
        python = ctx.shared.get("vllm_python") or vllm_python(ctx.options.vllm_python)  # before anything generates
        ctx.shared["vllm_python"] = python
        engine.server = VLLMServer(base, tok_dir, engine.compute_dtype, python, ctx.options.vllm_timeout_s)
    engines.append(engine)
    return engine


BASE_HINT = "Pass --ftgate-base=PATH to a local copy of it"
TOP_LOGPROBS = 5  # as a judge: the most likely tokens kept at each position


def _local_or_id(value: Any, root: Path) -> str | None:
    """--ftgate-base: a directory relative to the run's root when one exists there, else a Hub id."""
    if value in (None, ""):
        return None
    local = Path(value).expanduser()
    local = local if local.is_absolute() else root / local
    return str(local) if local.exists() else str(value)


def base_of(adapter: Path, base: str | None = None) -> Path:
    """An adapter's base model directory: `base` (--ftgate-base) where given, else what adapter_config.json names."""
    return _base_dir(base) if base else _adapter_base(adapter)


def _base_dir(name: str) -> Path:
    return resolve_model_dir(str(name), what="--ftgate-base", hint="Give a model directory or a Hub id in your cache")


def _adapter_base(adapter: Path) -> Path:
    """The adapter's base model: a local path (absolute, or relative to the adapter or here) or a Hub id."""
    try:
        config = json.loads((adapter / "adapter_config.json").read_text())
    except json.JSONDecodeError as exc:
        raise SubjectError(f"{adapter}/adapter_config.json is not valid JSON: {exc}") from None
    name = config.get("base_model_name_or_path")
    if not name:
        raise SubjectError(f"{adapter}/adapter_config.json names no base_model_name_or_path. {BASE_HINT}")
    local = Path(name).expanduser()
    if not local.is_absolute() and (adapter / local).is_dir():
        return (adapter / local).resolve()
    return resolve_model_dir(name, what=f"the adapter's base model (from {adapter}/adapter_config.json)",
                             hint=BASE_HINT, revision=config.get("revision"))
