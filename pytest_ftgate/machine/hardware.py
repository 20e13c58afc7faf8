"""What the machine computes natively: the device local models run on, the dtype they run in, and how
much memory a batch may take. One place for the gates and the trainer, so both read the hardware alike.

torch is imported inside functions only.
"""

from __future__ import annotations

import os
from functools import lru_cache

DTYPES = ("auto", "float32", "bfloat16", "float16")


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@lru_cache(maxsize=None)
def native_bf16(where: str) -> bool:
    """Whether `where` ("cuda" or "cpu") computes bfloat16 in hardware: a GPU that supports it, or a CPU with
    AVX-512 BF16 or AMX. Elsewhere torch emulates bf16, slower than float32."""
    import torch

    if where == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if all(p is None for p in probes):  # an older torch: read the flags the kernel reports
        return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})
    return any(bool(p()) for p in probes if p is not None)


def cpu_features() -> str:
    """The vector extensions that decide which kernels run, for reports and benchmark tables."""
    flags = _cpu_flags()
    named = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return ", ".join(named) or "none of avx2/avx512/amx"


def pick_dtype(requested: str, where: str) -> str:
    """The dtype local models run in: `requested`, or for "auto" bfloat16 where `where` computes it natively
    (float16 on a GPU without bf16) and float32 elsewhere."""
    if requested != "auto":
        return requested
    if native_bf16(where):
        return "bfloat16"
    return "float16" if where == "cuda" else "float32"


def free_memory(where: str) -> int:
    """Bytes a new allocation may take now: free GPU memory, or the memory the kernel says is available."""
    if where == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info()
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    pages = os.sysconf("SC_AVPHYS_PAGES") if hasattr(os, "sysconf") else 0
    return int(pages * os.sysconf("SC_PAGE_SIZE")) if pages else 8 * 2**30


@lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()
