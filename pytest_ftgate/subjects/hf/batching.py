"""How the hf engine shapes its batches: how many rows fit (an estimate from the model's config, and what
counts as running out of memory), and a shared prompt prefix prefilled once and laid into every batch.

A shared prefix is run through the model once into a transformers `DynamicCache`; each batch gets a copy
repeated per row, and its rows are laid out prefix, padding, rest of the prompt, with the padding masked.
Positions come from the attention mask, so every token sees what it sees in a left-padded batch. torch and
transformers are imported inside functions only.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

AUTO_MAX_BATCH = {False: 64, True: 256}  # CPU, CUDA: past this a decode step stops getting cheaper per row
MEMORY_SHARE = {False: 0.5, True: 0.8}  # of the free memory a batch may plan on (CPU: shared with the rest)
MIN_PREFIX = 8  # tokens: a shorter shared prefix is not worth a cache copy per batch


@dataclass(frozen=True)
class Prefix:
    ids: tuple[int, ...]
    cache: Any  # a DynamicCache holding these tokens for one row


def common_prefix_length(prompts: Sequence[Sequence[int]]) -> int:
    """How many leading tokens every prompt shares, leaving at least one token of each prompt out of it:
    generation starts from a token of the prompt's own."""
    n = min(len(p) for p in prompts) - 1
    first = prompts[0]
    for p in prompts[1:]:
        n = next((j for j in range(n) if p[j] != first[j]), n)
    return max(0, n)


def prefix_safe(config: Any) -> bool:
    """Whether a prefix cache with padding after it attends as a left-padded batch does: not under sliding-window
    attention, whose window counts cache positions, padding included, and would cover other tokens."""
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    if "sliding_attention" in (getattr(cfg, "layer_types", None) or ()):
        return False
    return not (getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", True) is not False)


def prefill(model: Any, ids: Sequence[int]) -> Prefix | None:
    """The key/value cache of `ids` for one row (None for a model whose cache cannot be carried over)."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    try:
        model(input_ids=torch.tensor([list(ids)], device=model.device), use_cache=True, **{cache_arg(model): cache})
    except (TypeError, ValueError, NotImplementedError):
        return None
    return Prefix(tuple(ids), cache)


def lay_out(prompts: Sequence[Sequence[int]], prefix: Prefix, pad_id: int) -> tuple[Any, Any, Any]:
    """input ids, attention mask and the prefix's cache for one batch: prefix | padding | rest of the prompt."""
    import torch

    n = len(prefix.ids)
    width = max(len(p) for p in prompts) - n
    rows = [[*prefix.ids, *[pad_id] * (width - len(p) + n), *p[n:]] for p in prompts]
    masks = [[1] * n + [0] * (width - len(p) + n) + [1] * (len(p) - n) for p in prompts]
    cache = copy.deepcopy(prefix.cache)
    cache.batch_repeat_interleave(len(prompts))
    return torch.tensor(rows), torch.tensor(masks), cache


def cache_arg(model: Any) -> str:
    """The keyword a model takes its key/value cache by: `cache` since transformers 5.2x, `past_key_values` before."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def row_bytes(config: Any, dtype_bytes: int) -> Callable[[int, int], int]:
    """Bytes one row of a batch needs, as a function of its prompt length and new tokens: the key/value cache
    (grown by concatenation, so briefly twice one layer's), the prefill's widest activations and attention
    scores, and the last position's logits."""
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", None) or 4096  # GPT-2 style names too
    layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", None) or 32
    heads = getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_head", None) or 32
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or hidden // heads
    vocab = getattr(cfg, "vocab_size", None) or 128_000
    inner = getattr(cfg, "intermediate_size", None) or 4 * hidden

    def need(prompt_len: int, new_tokens: int) -> int:
        total = prompt_len + new_tokens
        kv = 2 * kv_heads * head_dim * total * dtype_bytes * (layers + 1)
        prefill = prompt_len * (4 * hidden + 3 * inner) * dtype_bytes + heads * prompt_len * prompt_len * 4
        return int(1.25 * (kv + prefill + 3 * vocab * 4))

    return need


def out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "can't allocate memory" in text or "defaultcpuallocator" in text


def first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
