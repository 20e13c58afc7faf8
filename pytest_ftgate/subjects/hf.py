"""Local Hugging Face models: a PEFT adapter directory, or a full model directory or Hub id.

A base model is loaded once; an adapter's baseline is the same loaded base with the adapter
disabled, so a gate run holds one copy of the weights. A base named by a Hub id (what PEFT writes
into adapter_config.json) resolves from the user's Hugging Face cache as transformers resolves it.
Generation is batched (length-sorted, left-padded), greedy unless the suite says otherwise, under
torch.inference_mode. torch, transformers and peft are imported inside functions only.
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AdapterMismatchError, GenerationError, SubjectError, UnsafeWeightsError
from ..options import Option, positive_int_arg
from ..types import GenerationParams, JudgeReply, Output, ReplyToken, Request, SubjectInfo, TokenChoice, TrainingCost
from .base import BuildContext, Job, OnBatch, Role, Subject, flag_of, register_subject
from .hub import resolve_model_dir

if TYPE_CHECKING:  # imported where used: loading the plugin stays light
    from ..cost.pricing import Pricing, ServingCost, Usage
    from ..stores.cache import Cache

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "tokenizer.model")


def refuse_pickles(directory: Path, what: str) -> None:
    """Refuse a model or adapter directory whose weights exist only in a pickle format."""
    if any(directory.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in directory.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise UnsafeWeightsError(
            f"{what} {directory} holds {', '.join(pickles)} but no .safetensors: pickle files can run "
            "code when loaded, so they are refused. Convert them once in a trusted environment, e.g. "
            "`model.save_pretrained(dir, safe_serialization=True)`."
        )
    raise SubjectError(f"{what} {directory} holds no .safetensors weights")


def safetensors_shapes(path: Path) -> dict[str, list[int]]:
    """Tensor shapes from a safetensors header, without loading any tensor."""
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(length))
    return {k: v["shape"] for k, v in header.items() if k != "__metadata__"}


def dir_fingerprint(directory: Path, cache: Cache, patterns: Sequence[str]) -> dict[str, str]:
    """sha256 of each file in directory matching one of patterns."""
    out: dict[str, str] = {}
    for pattern in patterns:
        for f in sorted(directory.glob(pattern)):
            if f.is_file():
                out[f.name] = cache.file_sha256(f)
    return out


@dataclass
class HFEngine:
    """One loaded base model (+ optional adapter) shared by the subjects that use it."""

    base_dir: Path
    adapter_dir: Path | None
    load_in_4bit: bool
    cache: Cache
    batch_size: int
    _model: Any = None
    _tokenizer: Any = None

    def fingerprint(self, adapter_enabled: bool) -> str:
        h = hashlib.sha256()
        base = dir_fingerprint(self.base_dir, self.cache, ("config.json", "*.safetensors"))
        tok_dir = self.adapter_dir if self.adapter_dir and (self.adapter_dir / "tokenizer_config.json").exists() else self.base_dir
        tok = dir_fingerprint(tok_dir, self.cache, TOKENIZER_FILES)
        parts: dict[str, Any] = {"base": base, "tokenizer": tok, "4bit": self.load_in_4bit}
        if adapter_enabled and self.adapter_dir is not None:
            parts["adapter"] = dir_fingerprint(self.adapter_dir, self.cache, ("adapter_config.json", "*.safetensors"))
        h.update(json.dumps(parts, sort_keys=True).encode())
        return h.hexdigest()[:24]

    def base_weights_hash(self) -> str:
        from ..manifest import base_fingerprint

        return base_fingerprint(self.base_dir, self.cache.file_sha256)

    def weights_identity(self) -> str:
        """The base's safetensors contents alone: config.json is rewritten by every transformers release."""
        parts = {f.name: self.cache.file_sha256(f) for f in sorted(self.base_dir.glob("*.safetensors"))}
        return "weights:" + hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]

    def load(self) -> None:
        if self._model is not None:
            return
        from ..quiet import library_deprecations, quiet_kernels_notice

        quiet_kernels_notice()  # before peft imports bitsandbytes
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        refuse_pickles(self.base_dir, "base model")
        tok_dir = self.adapter_dir if self.adapter_dir and (self.adapter_dir / "tokenizer_config.json").exists() else self.base_dir
        tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
        if tokenizer.chat_template is None:
            raise SubjectError(
                f"the tokenizer in {tok_dir} has no chat template; set one (tokenizer.chat_template = ...; "
                "save_pretrained) so prompts render as they will in serving"
            )
        if tokenizer.pad_token is None:  # inference only: padding is masked out
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        kwargs: dict[str, Any] = {"use_safetensors": True}
        if self.load_in_4bit:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16,
            )
        try:
            model = AutoModelForCausalLM.from_pretrained(str(self.base_dir), **kwargs)
        except (OSError, ValueError) as exc:
            raise SubjectError(f"cannot load the base model {self.base_dir}: {exc}") from None
        if self.adapter_dir is not None:
            self._check_adapter_fits(model)
            with library_deprecations():
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, str(self.adapter_dir))
        model.eval()
        self._model, self._tokenizer = model, tokenizer

    def _check_adapter_fits(self, model: Any) -> None:
        """Compare the adapter's tensor shapes and recorded base hash with the loaded base."""
        assert self.adapter_dir is not None
        from ..manifest import read_manifest

        manifest = read_manifest(self.adapter_dir)
        if manifest is not None:
            recorded = manifest.base_model.fingerprint
            if recorded and recorded != self.base_weights_hash():
                raise AdapterMismatchError(
                    f"adapter {self.adapter_dir} was trained on a base whose weights hash {recorded[:12]}…, "
                    f"but {self.base_dir} hashes differently: another revision or another model. "
                    "Pass the right base with --ftgate-base=PATH."
                )
        problems: list[str] = []
        for f in sorted(self.adapter_dir.glob("*.safetensors")):
            for key, shape in safetensors_shapes(f).items():
                problem = _shape_problem(model, key, shape)
                if problem:
                    problems.append(problem)
        if problems:
            raise AdapterMismatchError(
                f"adapter {self.adapter_dir} does not fit base model {self.base_dir}: "
                + "; ".join(problems[:3])
                + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
                + ". It was trained on another base; pass the right one with --ftgate-base=PATH."
            )

    def generate(
        self,
        requests: Sequence[Request],
        *,
        adapter_enabled: bool,
        on_batch: OnBatch,
        progress: Any = None,
    ) -> None:
        """Generate for every request, calling on_batch([(index, Output), ...]) after each batch."""
        import torch

        self.load()
        tok, model = self._tokenizer, self._model
        prompts = [tok.apply_chat_template(list(r.messages), add_generation_prompt=True, tokenize=False) for r in requests]
        token_ids = tok(prompts, add_special_tokens=False)["input_ids"]  # tokenized once, padded per batch
        lengths = [len(ids) for ids in token_ids]
        groups: dict[GenerationParams, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(r.params, []).append(i)
        use_adapter = nullcontext() if adapter_enabled or self.adapter_dir is None else model.disable_adapter()
        with torch.inference_mode(), use_adapter:
            for params, indices in groups.items():
                indices.sort(key=lambda i: -lengths[i])  # similar lengths share a batch: little padding
                for start in range(0, len(indices), self.batch_size):
                    batch = indices[start : start + self.batch_size]
                    on_batch(self._generate_batch([token_ids[i] for i in batch], batch, params))
                    if progress is not None:
                        progress.update(len(batch))

    def perplexity(self, requests: Sequence[Request], targets: Sequence[str], *, adapter_enabled: bool) -> list[float]:
        """exp(mean NLL) of each target as the assistant's reply to its request's chat."""
        import torch

        self.load()
        tok, model = self._tokenizer, self._model
        rows = []
        for r, target in zip(requests, targets):
            prompt = tok.apply_chat_template(list(r.messages), add_generation_prompt=True, tokenize=False)
            p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
            t_ids = tok(target, add_special_tokens=False)["input_ids"]
            rows.append((p_ids, t_ids))
        use_adapter = nullcontext() if adapter_enabled or self.adapter_dir is None else model.disable_adapter()
        out: list[float] = []
        with torch.inference_mode(), use_adapter:
            for start in range(0, len(rows), self.batch_size):
                batch = rows[start : start + self.batch_size]
                width = max(len(p) + len(t) for p, t in batch)
                ids = torch.full((len(batch), width), tok.pad_token_id, dtype=torch.long)
                labels = torch.full((len(batch), width), -100, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, (p, t) in enumerate(batch):
                    seq = p + t
                    ids[row, : len(seq)] = torch.tensor(seq)
                    mask[row, : len(seq)] = 1
                    labels[row, len(p) : len(seq)] = torch.tensor(t)
                logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits.float()
                shift_logits, shift_labels = logits[:, :-1], labels[:, 1:].to(logits.device)
                nll = torch.nn.functional.cross_entropy(
                    shift_logits.transpose(1, 2), shift_labels, ignore_index=-100, reduction="none"
                )
                counts = (shift_labels != -100).sum(dim=1).clamp(min=1)
                out.extend(torch.exp(nll.sum(dim=1) / counts).tolist())
        return out

    def complete_with_logprobs(
        self, messages: list[dict[str, str]], max_new_tokens: int, top_k: int, *, adapter_enabled: bool
    ) -> tuple[str, list[tuple[str, list[tuple[str, float]]]], int, int]:
        """One greedy reply with the top-k log-probabilities at each generated token (for a local judge)."""
        import torch

        self.load()
        tok, model = self._tokenizer, self._model
        prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        enc = tok(prompt, add_special_tokens=False, return_tensors="pt").to(model.device)
        eos_ids = _eos_ids(model, tok)
        use_adapter = nullcontext() if adapter_enabled or self.adapter_dir is None else model.disable_adapter()
        with torch.inference_mode(), use_adapter:
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, temperature=None, top_p=None,
                                 top_k=None, pad_token_id=tok.pad_token_id, eos_token_id=sorted(eos_ids),
                                 output_logits=True, return_dict_in_generate=True)
        n_in = enc["input_ids"].shape[1]
        tokens: list[tuple[str, list[tuple[str, float]]]] = []
        for step, token_id in enumerate(out.sequences[0, n_in:].tolist()):
            if token_id in eos_ids:
                break
            top = torch.topk(torch.log_softmax(out.logits[step][0].float(), dim=-1), top_k)
            tokens.append((tok.decode([token_id]), [(tok.decode([int(i)]), float(v)) for v, i in zip(top.values, top.indices)]))
        text = tok.decode(out.sequences[0, n_in : n_in + len(tokens)], skip_special_tokens=True)
        return text, tokens, n_in, len(tokens)

    def _generate_batch(self, prompts: list[list[int]], indices: list[int], params: GenerationParams) -> list[tuple[int, Output]]:
        import torch

        tok, model = self._tokenizer, self._model
        enc = tok.pad({"input_ids": prompts}, padding=True, return_tensors="pt", padding_side="left")
        enc = {k: v.to(model.device) for k, v in enc.items()}
        # stop on the tokenizer's EOS too: a base whose generation_config lacks the chat template's
        # end-of-turn token would otherwise run on to max_new_tokens
        eos_ids = _eos_ids(model, tok)
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "pad_token_id": tok.pad_token_id,
            "eos_token_id": sorted(eos_ids),
        }
        if params.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            torch.manual_seed(params.seed)
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
        started = time.perf_counter()
        try:
            out = model.generate(**enc, **kwargs)
        except RuntimeError as exc:
            raise GenerationError(f"generation failed on a batch of {len(prompts)}: {exc}") from None
        elapsed = time.perf_counter() - started
        new = out[:, enc["input_ids"].shape[1] :]
        results = []
        for row, i in enumerate(indices):
            ids = new[row].tolist()
            n_out = next((j + 1 for j, t in enumerate(ids) if t in eos_ids), len(ids))
            text = tok.decode(ids[:n_out], skip_special_tokens=True)
            n_in = int(enc["attention_mask"][row].sum())
            results.append((i, Output(text, n_in, n_out, elapsed, batch_size=len(indices))))
        return results


def _eos_ids(model: Any, tok: Any) -> set[int]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tok.eos_token_id is not None:
        ids.add(tok.eos_token_id)
    return ids


def _shape_problem(model: Any, key: str, shape: list[int]) -> str | None:
    name = key.removeprefix("base_model.model.")
    for marker, dim in ((".lora_A.", 1), (".lora_B.", 0)):
        if marker in name:
            module_path = name.split(marker)[0]
            try:
                module = model.get_submodule(module_path)
            except AttributeError:
                return f"{module_path} does not exist in the base"
            expected = getattr(module, "in_features" if dim == 1 else "out_features", None)
            if expected is not None and shape[dim] != expected:
                side = "input" if dim == 1 else "output"
                return f"{module_path} has {side} size {expected} in the base but {shape[dim]} in the adapter"
            return None
    # modules_to_save or resized embeddings: full tensors must match the base's
    param_name = name.replace(".modules_to_save.default", "")
    params = dict(model.named_parameters())
    if param_name in params and list(params[param_name].shape) != list(shape):
        return f"{param_name} is {list(params[param_name].shape)} in the base but {shape} in the adapter (vocabulary resized?)"
    return None


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
        Option("--ftgate-batch-size", "ftgate_batch_size", field="batch_size", metavar="N", type=positive_int_arg, default=16,
               ini="ftgate_batch_size", ini_help="generation batch size for local models (--ftgate-batch-size)",
               help="generation batch size for local models; latency and cost are measured at it. "
                    "Default: ini ftgate_batch_size or {default}"),
    )

    @classmethod
    def claims(cls, spec: str) -> bool:
        return True  # whatever no other kind claims is a local model or a Hub id

    @classmethod
    def build(cls, spec: str, role: Role, ctx: BuildContext) -> Subject:
        flag = flag_of(role)
        path = Path(spec).expanduser()
        if not path.is_dir():
            path = resolve_model_dir(
                spec, what=f"{flag}={spec}",
                hint="Give a PEFT adapter directory, a model directory, a Hub id in your Hugging Face cache, "
                     "openai:MODEL or an outputs .jsonl",
            )
        if not (path / "adapter_config.json").exists() and not (path / "config.json").exists():
            raise SubjectError(f"{flag}={spec}: neither adapter_config.json nor config.json is in this directory")
        path = path.resolve()
        engines: dict[tuple[Path, Path | None], HFEngine] = ctx.shared.setdefault(cls, {})
        if (path / "adapter_config.json").exists():
            refuse_pickles(path, "adapter")
            base = _base_dir(ctx.options.base) if ctx.options.base else _adapter_base(path)
            key = (base, path)
            if key not in engines:
                engines[key] = HFEngine(base, path, ctx.options.load_in_4bit, ctx.cache, ctx.options.batch_size)
            return cls(engines[key], role, adapter_enabled=True)
        for (base_dir, _), engine in engines.items():  # reuse a loaded base: the adapter is switched off
            if base_dir == path:
                return cls(engine, role, adapter_enabled=False)
        engines[(path, None)] = HFEngine(path, None, ctx.options.load_in_4bit, ctx.cache, ctx.options.batch_size)
        return cls(engines[(path, None)], role, adapter_enabled=False)

    @classmethod
    def serving_cost(cls, info: SubjectInfo, usage: Usage, pricing: Pricing) -> ServingCost:
        from ..cost.pricing import compute_cost

        return compute_cost(pricing, usage)

    def __init__(self, engine: HFEngine, role: Role, adapter_enabled: bool):
        self.engine = engine
        self.adapter_enabled = adapter_enabled
        name = str(engine.adapter_dir if adapter_enabled and engine.adapter_dir else engine.base_dir)
        details: dict[str, Any] = {"base_model": str(engine.base_dir), "load_in_4bit": engine.load_in_4bit,
                                   "batch_size": engine.batch_size}
        training = None
        if adapter_enabled and engine.adapter_dir is not None:
            details["adapter"] = str(engine.adapter_dir)
            from ..manifest import read_manifest

            manifest = read_manifest(engine.adapter_dir)
            if manifest is not None:
                details["manifest"] = manifest.to_dict()
                training = TrainingCost(gpu_hours=manifest.gpu_hours, wall_s=manifest.wall_s)
        identity = "" if adapter_enabled and engine.adapter_dir else engine.weights_identity()
        self.info = SubjectInfo(role, self.kind, name, engine.fingerprint(adapter_enabled), details, training, identity)

    def implied_baseline(self) -> Subject | None:
        if self.adapter_enabled and self.engine.adapter_dir is not None:
            return HFSubject(self.engine, "baseline", adapter_enabled=False)
        return None

    def run(self, jobs: Sequence[Job], on_batch: OnBatch, progress: Any = None) -> None:
        self.engine.generate(
            [j.request for j in jobs], adapter_enabled=self.adapter_enabled, on_batch=on_batch, progress=progress
        )

    def perplexity(self, jobs: Sequence[Job], targets: Sequence[str]) -> list[float | None]:
        return list(self.engine.perplexity([j.request for j in jobs], targets, adapter_enabled=self.adapter_enabled))

    def judge_reply(self, messages: Sequence[dict[str, str]], *, schema: dict[str, Any], max_tokens: int,
                    where: str) -> JudgeReply:
        """Greedy, constrained by the prompt alone; the log-probabilities come from the model's own logits."""
        text, tokens, n_in, n_out = self.engine.complete_with_logprobs(list(messages), max_tokens, TOP_LOGPROBS,
                                                                       adapter_enabled=self.adapter_enabled)
        return JudgeReply(text, tuple(ReplyToken(t, tuple(TokenChoice(c, lp) for c, lp in top)) for t, top in tokens),
                          n_in, n_out, "prompt")


BASE_HINT = "Pass --ftgate-base=PATH to a local copy of it"
TOP_LOGPROBS = 5  # as a judge: the most likely tokens kept at each position


def _local_or_id(value: Any, root: Path) -> str | None:
    """--ftgate-base: a directory relative to the run's root when one exists there, else a Hub id."""
    if value in (None, ""):
        return None
    local = Path(value).expanduser()
    local = local if local.is_absolute() else root / local
    return str(local) if local.exists() else str(value)


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
