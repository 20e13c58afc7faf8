"""Log records of the libraries we use that we silence on purpose, each with its reason."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


_KERNELS_NOTICE = "Failed to load CPU gemm_4bit_forward from kernels-community"


def _drop_kernels_notice(record: logging.LogRecord) -> bool:
    """False for bitsandbytes' notice that the optional `kernels` package is not installed."""
    cause = record.args[0] if isinstance(record.args, tuple) and record.args else None
    absent = isinstance(cause, ModuleNotFoundError) and cause.name == "kernels"
    return not (absent and str(record.msg).startswith(_KERNELS_NOTICE))


def quiet_kernels_notice() -> None:
    """Drop one log record: on CPUs with AVX-512 BF16, importing bitsandbytes (0.49+) warns that it
    could not load an optional CPU kernel from the Hub package `kernels`. Its own CPU kernels work
    without it, and `kernels` would fetch code from the Hub at run time, so we do not install it and
    the notice would only alarm. Any other failure to load that kernel is still logged."""
    logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_drop_kernels_notice)  # added once


# Deprecations raised inside the libraries we call, by their own calls to each other (peft calls
# transformers' `is_gradient_checkpointing`; importing peft imports torch._inductor, which decorates
# with `torch.jit.script_method`). Our own calls use the current APIs; these are not the user's to fix.
LIBRARY_DEPRECATIONS = (
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated"),
    (FutureWarning, r"`gradient_checkpointing_(enable|disable)` is deprecated"),
    (DeprecationWarning, r"`torch\.jit\.script_method` is deprecated"),
)


@contextmanager
def library_deprecations() -> Iterator[None]:
    """Silence exactly LIBRARY_DEPRECATIONS while loading models and adapters."""
    with warnings.catch_warnings():
        for category, message in LIBRARY_DEPRECATIONS:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield
