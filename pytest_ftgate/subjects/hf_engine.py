"""The engine behind local Hugging Face subjects: one loaded base model with any number of named PEFT
adapters, switched per batch (`set_adapter`), or all switched off for the base itself. Subjects that
share a base (and its tokenizer) share one engine: an adapter's baseline, a promoted adapter beside a
candidate, a judge on the base, all on one copy of the weights.

Generation is batched (length-sorted, left-padded), greedy unless the suite says otherwise, under
torch.inference_mode. torch, transformers and peft are imported inside functions only.
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AdapterMismatchError, GenerationError, SubjectError, UnsafeWeightsError
from ..types import GenerationParams, Output, Request
from .base import OnBatch

if TYPE_CHECKING:
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


def tokenizer_dir(model_dir: Path, adapter_dir: Path | None) -> Path:
    """Where a subject's tokenizer comes from: the adapter's own (the trainer saves it), else the base's."""
    if adapter_dir is not None and (adapter_dir / "tokenizer_config.json").exists():
        return adapter_dir
    return model_dir


@dataclass
class HFEngine:
    """One loaded base model, with named PEFT adapters switched per call; shared by every subject on it."""

    base_dir: Path
    tokenizer_dir: Path
    load_in_4bit: bool
    cache: Cache
    batch_size: int
    adapters: dict[Path, str] = field(default_factory=dict)  # adapter directory -> its name in the PeftModel
    _model: Any = None
    _tokenizer: Any = None
    _loaded: set[str] = field(default_factory=set)

    @property
    def tokenizer_fingerprint(self) -> str:
        return json.dumps(dir_fingerprint(self.tokenizer_dir, self.cache, TOKENIZER_FILES), sort_keys=True)

    def add_adapter(self, adapter_dir: Path) -> None:
        """Serve this adapter too (loaded with the base, or at once when the base is already loaded)."""
        if adapter_dir not in self.adapters:
            self.adapters[adapter_dir] = f"adapter-{len(self.adapters)}"
            if self._model is not None:
                self._load_adapters()

    def fingerprint(self, adapter: Path | None) -> str:
        h = hashlib.sha256()
        base = dir_fingerprint(self.base_dir, self.cache, ("config.json", "*.safetensors"))
        tok = dir_fingerprint(self.tokenizer_dir, self.cache, TOKENIZER_FILES)
        parts: dict[str, Any] = {"base": base, "tokenizer": tok, "4bit": self.load_in_4bit}
        if adapter is not None:
            parts["adapter"] = dir_fingerprint(adapter, self.cache, ("adapter_config.json", "*.safetensors"))
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
        from ..quiet import quiet_kernels_notice

        quiet_kernels_notice()  # before peft imports bitsandbytes
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
        model.eval()
        self._model, self._tokenizer = model, tokenizer
        self._load_adapters()

    def _load_adapters(self) -> None:
        from ..quiet import library_deprecations

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
        from ..manifest import read_manifest

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
                problem = _shape_problem(model, key, shape)
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
        prompts = [tok.apply_chat_template(list(r.messages), add_generation_prompt=True, tokenize=False) for r in requests]
        token_ids = tok(prompts, add_special_tokens=False)["input_ids"]  # tokenized once, padded per batch
        lengths = [len(ids) for ids in token_ids]
        groups: dict[GenerationParams, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(r.params, []).append(i)
        with torch.inference_mode(), self.using(adapter):
            for params, indices in groups.items():
                indices.sort(key=lambda i: -lengths[i])  # similar lengths share a batch: little padding
                for start in range(0, len(indices), self.batch_size):
                    batch = indices[start : start + self.batch_size]
                    on_batch(self._generate_batch([token_ids[i] for i in batch], batch, params))
                    if progress is not None:
                        progress.update(len(batch))

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


