"""Log records of the libraries we use that we silence on purpose, each with its reason."""

from __future__ import annotations

import importlib.util
import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


def _from_hub_kernels(exc: BaseException) -> bool:
    """Whether an exception says only that the optional Hub package `kernels` could not serve a kernel:
    it is not installed, or it was raised inside `kernels` or `huggingface_hub` (offline, not cached,
    unreachable). Decided from the exception's type and traceback, never from a message's wording."""
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "kernels":
        return True
    if type(exc).__module__.split(".")[0] in _HUB_PACKAGES:
        return True
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.split(".")[0] in _HUB_PACKAGES:
            return True
        tb = tb.tb_next
    return False


_HUB_PACKAGES = ("kernels", "huggingface_hub")


def _drop_hub_kernel_notice(record: logging.LogRecord) -> bool:
    """False for a bitsandbytes record about an optional Hub kernel it could not get."""
    args = record.args if isinstance(record.args, tuple) else ()
    causes = [a for a in args if isinstance(a, BaseException)]
    if record.exc_info and record.exc_info[1] is not None:
        causes.append(record.exc_info[1])
    return not (causes and all(_from_hub_kernels(c) for c in causes))


def quiet_kernels_notice() -> None:
    """Silence bitsandbytes' attempt to get an optional CPU kernel from the Hub; call before peft loads.

    On CPUs with AVX-512 BF16, importing bitsandbytes (0.49+) asks the Hub package `kernels` for a
    faster 4-bit CPU kernel, and logs a warning when that fails: `kernels` is absent, or (since
    transformers 5.25 installs it) the Hub is offline and nothing is cached, which `kernels` itself
    also logs. bitsandbytes' own CPU kernels work either way, so these notices would only alarm.
    Which bitsandbytes records go is decided by where the failure came from (`_from_hub_kernels`),
    never by their wording, and `kernels`' own records are silenced only during that import: any
    other failure is still logged."""
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    if _drop_hub_kernel_notice not in logger.filters:
        logger.addFilter(_drop_hub_kernel_notice)
    if "bitsandbytes" not in sys.modules and importlib.util.find_spec("bitsandbytes") is not None:
        with hub_kernel_attempt():
            import bitsandbytes  # noqa: F401  (peft imports it next; here its Hub attempt is quiet)


@contextmanager
def hub_kernel_attempt() -> Iterator[None]:
    """Records of the `kernels` package below ERROR are dropped inside (its offline notices)."""
    kernels_logger = logging.getLogger("kernels")
    previous = kernels_logger.level
    kernels_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        kernels_logger.setLevel(previous)


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
