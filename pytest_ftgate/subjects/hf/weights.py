"""What a model or adapter directory holds, read without loading it: pickles refused, tensor shapes from
safetensors headers, file fingerprints, where the tokenizer comes from, and whether an adapter's tensors fit
a base.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import SubjectError, UnsafeWeightsError

if TYPE_CHECKING:
    from ...stores.cache import Cache

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
# every file that changes how text becomes tokens and back, or how a chat is laid out: the fingerprint covers them
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "chat_template.jinja", "chat_template.json", "tokenizer.model", "vocab.json", "merges.txt", "vocab.txt")
# the base's files that change what it generates: its weights, its config, and its generation defaults
# (repetition_penalty, no_repeat_ngram_size, eos_token_id ... apply to every generate call)
MODEL_FILES = ("config.json", "generation_config.json", "*.safetensors")
ADAPTER_FILES = ("adapter_config.json", "*.safetensors")


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


def shape_problem(model: Any, key: str, shape: list[int]) -> str | None:
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


