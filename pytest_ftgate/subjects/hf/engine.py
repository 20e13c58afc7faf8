"""The engine behind local Hugging Face subjects: one loaded base model with any number of named PEFT
adapters, switched per batch (`set_adapter`), or all switched off for the base itself. Subjects that
share a base (and its tokenizer) share one engine: an adapter's baseline, a promoted adapter beside a
candidate, a judge on the base, all on one copy of the weights.

Generation is batched (length-sorted, left-padded), greedy unless the suite says otherwise, under
torch.inference_mode, in the dtype the hardware computes natively (pytest_ftgate.machine.hardware). By default
the batch is the largest that fits, per length bucket, halved and retried on out-of-memory, never losing
a case; a prefix every prompt of a call shares is prefilled once (pytest_ftgate.subjects.hf.batching).
torch, transformers and peft are imported inside functions only.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import AdapterMismatchError, GenerationError, SubjectError
from ...types import GenerationParams, Output, Request
from ..base import OnBatch
from .batching import (
    AUTO_MAX_BATCH,
    MEMORY_SHARE,
    MIN_PREFIX,
    Prefix,
    cache_arg,
    common_prefix_length,
    first_line,
    lay_out,
    out_of_memory,
    prefill,
    prefix_safe,
    row_bytes,
)
from .weights import ADAPTER_FILES, MODEL_FILES, TOKENIZER_FILES, dir_fingerprint, refuse_pickles, safetensors_shapes, shape_problem

if TYPE_CHECKING:
    from ...stores.cache import Cache

@dataclass
class HFEngine:
    """One loaded base model, with named PEFT adapters switched per call; shared by every subject on it."""

    base_dir: Path
    tokenizer_dir: Path
    load_in_4bit: bool
    cache: Cache
    batch_size: int | None  # None: the largest batch that fits, per length bucket
    dtype: str = "auto"  # as asked (--ftgate-dtype); `compute_dtype` is what runs
    share_prefix: bool = field(default_factory=lambda: os.environ.get("FTGATE_PREFIX_CACHE", "on") != "off")
    adapters: dict[Path, str] = field(default_factory=dict)  # adapter directory -> its name in the PeftModel
    server: Any = None  # vllm_server.VLLMServer with --ftgate-engine=vllm: it generates; transformers only judges
    _model: Any = None
    _tokenizer: Any = None
    _loaded: set[str] = field(default_factory=set)
    _device: str | None = None
    _row_bytes: Any = None  # (prompt length, new tokens) -> bytes one row of a batch needs, from the config

    @property
    def device(self) -> str:
        if self._device is None:
            from ...machine.hardware import device

            self._device = device()
        return self._device

    @property
    def compute_dtype(self) -> str:
        from ...machine.hardware import pick_dtype

        return pick_dtype(self.dtype, self.device)

    @property
    def engine_name(self) -> str:
        return "hf" if self.server is None else "vllm"

    @property
    def generation(self) -> str:
        """How this engine generates, for every report: the engine, dtype, device, batch."""
        if self.server is not None:
            return f"vLLM server, {self.compute_dtype} on {self.device}, continuous batching"
        batch = f"batch {self.batch_size}" if self.batch_size else f"batch auto (at most {self.max_batch})"
        return f"{self.compute_dtype} on {self.device}{', 4-bit NF4' if self.load_in_4bit else ''}, {batch}"

    @property
    def max_batch(self) -> int:
        return AUTO_MAX_BATCH[self.device == "cuda"]

    @property
    def tokenizer_fingerprint(self) -> str:
        return json.dumps(dir_fingerprint(self.tokenizer_dir, self.cache, TOKENIZER_FILES), sort_keys=True)

    def add_adapter(self, adapter_dir: Path) -> None:
        """Serve this adapter too (loaded with the base, or at once when the base is already loaded)."""
        if adapter_dir not in self.adapters:
            self.adapters[adapter_dir] = f"adapter-{len(self.adapters)}"
            if self.server is not None:
                self.server.add_adapter(adapter_dir)
            if self._model is not None:
                self._load_adapters()

    def fingerprint(self, adapter: Path | None) -> str:
        h = hashlib.sha256()
        base = dir_fingerprint(self.base_dir, self.cache, MODEL_FILES)
        tok = dir_fingerprint(self.tokenizer_dir, self.cache, TOKENIZER_FILES)
        parts: dict[str, Any] = {"base": base, "tokenizer": tok, "4bit": self.load_in_4bit}
        if adapter is not None:
            parts["adapter"] = dir_fingerprint(adapter, self.cache, ADAPTER_FILES)
        h.update(json.dumps(parts, sort_keys=True).encode())
        return h.hexdigest()[:24]

    def generation_fingerprint(self, adapter: Path | None) -> str:
        """What the outputs are cached under: the weights, the dtype they were computed in, and the engine."""
        engine = "" if self.server is None else "-vllm"
        return f"{self.fingerprint(adapter)}-{self.compute_dtype}{engine}"

    def base_weights_hash(self) -> str:
        from ...stores.manifest import base_fingerprint

        return base_fingerprint(self.base_dir, self.cache.file_sha256)

    def weights_identity(self) -> str:
        """The base's safetensors contents alone: config.json is rewritten by every transformers release."""
        parts = {f.name: self.cache.file_sha256(f) for f in sorted(self.base_dir.glob("*.safetensors"))}
        return "weights:" + hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]

    def load(self) -> None:
        if self._model is not None:
            return
        if self.load_in_4bit or self.adapters:  # importing bitsandbytes costs seconds: only where it is used
            from ...machine.quiet import quiet_kernels_notice

            quiet_kernels_notice()  # before peft or the 4-bit loader import bitsandbytes
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        refuse_pickles(self.base_dir, "base model")
        tokenizer = AutoTokenizer.from_pretrained(str(self.tokenizer_dir))
        if tokenizer.chat_template is None:
            raise SubjectError(
                f"the tokenizer in {self.tokenizer_dir} has no chat template; set one (tokenizer.chat_template = ...; "
                "save_pretrained) so prompts render as they will in serving"
            )
        if tokenizer.pad_token is None:  # inference only: padding is masked out
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        dtype = getattr(torch, self.compute_dtype)
        kwargs: dict[str, Any] = {"use_safetensors": True, "dtype": dtype}
        if self.device == "cuda":
            kwargs["device_map"] = {"": 0}
        if self.load_in_4bit:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=dtype,
            )
        try:
            model = AutoModelForCausalLM.from_pretrained(str(self.base_dir), **kwargs)
        except (OSError, ValueError) as exc:
            raise SubjectError(f"cannot load the base model {self.base_dir}: {exc}") from None
        model.eval()
        self._model, self._tokenizer = model, tokenizer
        self._row_bytes = row_bytes(model.config, torch.finfo(dtype).bits // 8)
        self._load_adapters()

    def _load_adapters(self) -> None:
        from ...machine.quiet import library_deprecations, quiet_kernels_notice

        if set(self.adapters.values()) - self._loaded:
            quiet_kernels_notice()  # before peft imports bitsandbytes

        for adapter_dir, name in self.adapters.items():
            if name in self._loaded:
                continue
            base = self._model.get_base_model() if hasattr(self._model, "get_base_model") else self._model
            self._check_adapter_fits(base, adapter_dir)
            with library_deprecations():
                from peft import PeftModel

                if isinstance(self._model, PeftModel):
                    self._model.load_adapter(str(adapter_dir), adapter_name=name)
                else:
                    self._model = PeftModel.from_pretrained(self._model, str(adapter_dir), adapter_name=name)
            self._model.eval()
            self._loaded.add(name)

    @contextmanager
    def using(self, adapter: Path | None) -> Iterator[None]:
        """The model with this adapter active, or with every adapter off (adapter None)."""
        self.load()
        if adapter is not None:
            self._model.set_adapter(self.adapters[adapter])
            yield
        elif self.adapters:
            with self._model.disable_adapter():
                yield
        else:
            yield

    def _check_adapter_fits(self, model: Any, adapter_dir: Path) -> None:
        """Compare the adapter's tensor shapes and recorded base hash with the loaded base."""
        from ...stores.manifest import read_manifest

        manifest = read_manifest(adapter_dir)
        if manifest is not None:
            recorded = manifest.base_model.fingerprint
            if recorded and recorded != self.base_weights_hash():
                raise AdapterMismatchError(
                    f"adapter {adapter_dir} was trained on a base whose weights hash {recorded[:12]}…, "
                    f"but {self.base_dir} hashes differently: another revision or another model. "
                    "Pass the right base with --ftgate-base=PATH."
                )
        problems: list[str] = []
        for f in sorted(adapter_dir.glob("*.safetensors")):
            for key, shape in safetensors_shapes(f).items():
                problem = shape_problem(model, key, shape)
                if problem:
                    problems.append(problem)
        if problems:
            raise AdapterMismatchError(
                f"adapter {adapter_dir} does not fit base model {self.base_dir}: "
                + "; ".join(problems[:3])
                + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
                + ". It was trained on another base; pass the right one with --ftgate-base=PATH."
            )

    def generate(
        self,
        requests: Sequence[Request],
        *,
        adapter: Path | None,
        on_batch: OnBatch,
        progress: Any = None,
    ) -> None:
        """Generate for every request with `adapter` active (None: the base), calling on_batch([(index, Output),
        ...]) after each batch."""
        import torch

        self.load()
        tok = self._tokenizer
        prompts = [self._render(r) for r in requests]
        token_ids = tok(prompts, add_special_tokens=False)["input_ids"]  # tokenized once, padded per batch
        lengths = [len(ids) for ids in token_ids]
        groups: dict[GenerationParams, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(r.params, []).append(i)
        with torch.inference_mode(), self.using(adapter):
            for params, indices in groups.items():
                indices.sort(key=lambda i: -lengths[i])  # similar lengths share a batch: little padding
                prefix = self._shared_prefix([token_ids[i] for i in indices])
                ceiling = self.batch_size or self.max_batch
                start = 0
                while start < len(indices):
                    # the longest prompt left leads the batch: it decides what fits
                    size = min(ceiling, self._fits(lengths[indices[start]], params.max_new_tokens))
                    batch = indices[start : start + size]
                    try:
                        results = self._generate_batch([token_ids[i] for i in batch], batch, params, prefix)
                    except RuntimeError as exc:
                        if not out_of_memory(exc):
                            raise GenerationError(f"generation failed on a batch of {len(batch)}: {exc}") from None
                        self._free()
                        if self.batch_size is not None or len(batch) == 1:
                            hint = ("pass a smaller --ftgate-batch-size, or leave it out: the default backs off on "
                                    "out-of-memory" if self.batch_size else "use a smaller model, --ftgate-4bit or "
                                    "shorter max_new_tokens")
                            raise GenerationError(f"out of memory generating a batch of {len(batch)} on "
                                                  f"{self.device} ({first_line(exc)}): {hint}") from None
                        ceiling = len(batch) // 2  # the same cases again, at half the batch; the rest stay below it
                        print(f"ftgate: out of memory at batch {len(batch)} on {self.device}; retrying at {ceiling}",
                              file=sys.stderr, flush=True)
                        continue
                    on_batch(results)
                    if progress is not None:
                        progress.update(len(batch))
                    start += len(batch)

    def _render(self, request: Request, tokenizer: Any = None, *, served: bool = False) -> str:
        """The request's chat as the model's chat template writes it, with the case's tools (transformers' `tools=`).
        A template that ignores tools would hide them from the model: an error, never a silent answer without them.
        `served`: a server generates (vLLM) with this template, and enforces a tool_choice itself."""
        tok, messages = tokenizer or self._tokenizer, list(request.messages)
        text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        if not request.tools:
            return text
        if request.tool_choice not in (None, "auto") and not served:
            raise GenerationError(f"tool_choice {request.tool_choice!r}: a local model cannot be made to call a tool "
                                  "(the serving API enforces tool_choice); leave it out to gate what the model chooses, "
                                  "or gate the model behind an endpoint")
        with_tools = tok.apply_chat_template(messages, tools=list(request.tools), add_generation_prompt=True,
                                             tokenize=False)
        if with_tools == text:
            raise GenerationError(f"the chat template of {self.tokenizer_dir} does not render tools, so the model would never "
                                  "see the tools a case offers: gate tool calls with a model whose template takes "
                                  "`tools` (Qwen2.5, Llama 3.1, SmolLM3, ...), or through an endpoint that does")
        return with_tools

    def check_tools(self, requests: Sequence[Request]) -> None:
        """For a server that renders with this model's template (vLLM): the tools of every request must show in it."""
        tooled = [r for r in requests if r.tools]
        if tooled:
            from transformers import AutoTokenizer

            tokenizer = self._tokenizer or AutoTokenizer.from_pretrained(str(self.tokenizer_dir))
            for request in {r.key: r for r in tooled}.values():
                self._render(request, tokenizer, served=True)

    def _fits(self, prompt_len: int, new_tokens: int) -> int:
        """The largest batch whose key/value cache and activations fit in the memory free now (auto only)."""
        if self.batch_size is not None:
            return self.batch_size
        from ...machine.hardware import free_memory

        budget = free_memory(self.device) * MEMORY_SHARE[self.device == "cuda"]
        return max(1, min(self.max_batch, int(budget // max(1, self._row_bytes(prompt_len, new_tokens)))))

    def _free(self) -> None:
        import gc

        gc.collect()
        if self.device == "cuda":
            import torch

            torch.cuda.empty_cache()

    def _shared_prefix(self, prompts: list[list[int]]) -> Prefix | None:
        """The tokens every prompt starts with, prefilled once (None where off, or too short to be worth it)."""
        if not self.share_prefix or len(prompts) < 2 or not prefix_safe(self._model.config):
            return None
        n = common_prefix_length(prompts)
        return prefill(self._model, prompts[0][:n]) if n >= MIN_PREFIX else None

    def perplexity(self, requests: Sequence[Request], targets: Sequence[str], *, adapter: Path | None) -> list[float]:
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
        out: list[float] = []
        with torch.inference_mode(), self.using(adapter):
            model = self._model
            step = self.batch_size or PERPLEXITY_BATCH
            for start in range(0, len(rows), step):
                batch = rows[start : start + step]
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
        self, messages: list[dict[str, str]], max_new_tokens: int, top_k: int, *, adapter: Path | None
    ) -> tuple[str, list[tuple[str, list[tuple[str, float]]]], int, int]:
        """One greedy reply with the top-k log-probabilities at each generated token (for a local judge)."""
        import torch

        self.load()
        tok, model = self._tokenizer, self._model
        prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        enc = tok(prompt, add_special_tokens=False, return_tensors="pt").to(model.device)
        eos_ids = _eos_ids(model, tok)
        with torch.inference_mode(), self.using(adapter):
            out = self._model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, temperature=None, top_p=None,
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

    def _generate_batch(self, prompts: list[list[int]], indices: list[int], params: GenerationParams,
                        prefix: Prefix | None = None) -> list[tuple[int, Output]]:
        """One call to generate. With a prefix, each row is laid out prefix, padding, rest of the prompt, with the
        prefix's cache copied per row; without, left-padded."""
        import torch

        tok, model = self._tokenizer, self._model
        extra: dict[str, Any] = {}
        if prefix is None:
            enc = tok.pad({"input_ids": prompts}, padding=True, return_tensors="pt", padding_side="left")
            ids, mask = enc["input_ids"], enc["attention_mask"]
        else:
            ids, mask, cache = lay_out(prompts, prefix, tok.pad_token_id)
            extra[cache_arg(model)] = cache
        ids, mask = ids.to(model.device), mask.to(model.device)
        # stop on the tokenizer's EOS too: a base whose generation_config lacks the chat template's
        # end-of-turn token would otherwise run on to max_new_tokens
        eos_ids = _eos_ids(model, tok)
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "pad_token_id": tok.pad_token_id,
            "eos_token_id": sorted(eos_ids),
            **extra,
        }
        if params.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            torch.manual_seed(params.seed)
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
        started = time.perf_counter()
        out = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        elapsed = time.perf_counter() - started
        new = out[:, ids.shape[1] :]
        results = []
        for row, i in enumerate(indices):
            row_ids = new[row].tolist()
            n_out = next((j + 1 for j, t in enumerate(row_ids) if t in eos_ids), len(row_ids))
            text = tok.decode(row_ids[:n_out], skip_special_tokens=True)
            results.append((i, Output(text, len(prompts[row]), n_out, elapsed, batch_size=len(indices))))
        return results


PERPLEXITY_BATCH = 16


def _eos_ids(model: Any, tok: Any) -> set[int]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tok.eos_token_id is not None:
        ids.add(tok.eos_token_id)
    return ids
