"""The llama.cpp server the tests start: the same code path on every x86-64 CPU, and a death that is said."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import llama_server

ROOT = Path(__file__).resolve().parents[2]


def test_the_server_loads_models_without_the_cpu_specific_repack_buffers():
    """use_extra_bufts = False: no repacking into AMX or interleaved AVX layouts (the AMX path crashed)."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python[server] is not installed (make test installs it)")
    code = ("import llama_cpp.llama_cpp as lib; before = lib.llama_model_default_params().use_extra_bufts\n"
            "from tests.helpers.llama_server import portable_model_params; portable_model_params(); portable_model_params()\n"
            "print(before, lib.llama_model_default_params().use_extra_bufts)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False"]  # llama.cpp's default, then ours; applying it twice changes nothing


def test_the_server_is_started_through_the_portable_launcher(monkeypatch, tmp_path):
    started: list[list[str]] = []

    class Exited:
        returncode = 1

        def __init__(self, cmd, **kw):
            started.append(cmd)

        def poll(self):
            return 1

        def terminate(self):
            pass

        def wait(self, timeout=None):
            return 1

    monkeypatch.setattr(llama_server.subprocess, "Popen", Exited)
    with pytest.raises(RuntimeError, match="exited with 1"):
        with llama_server.llama_server(tmp_path / "log"):
            pass
    assert started[0][1:3] == ["-m", "tests.helpers.llama_server"]


def test_a_server_that_died_is_named_with_its_exit_and_the_end_of_its_log(tmp_path):
    log = tmp_path / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-c", "import os, signal; print('loading the model', flush=True); "
                                 "os.kill(os.getpid(), signal.SIGSEGV)"], stdout=out, stderr=subprocess.STDOUT)
    llama_server.RUNNING["http://127.0.0.1:1/v1"] = (proc, log)
    try:
        proc.wait(timeout=30)
        (said,) = llama_server.died()
    finally:
        llama_server.RUNNING.pop("http://127.0.0.1:1/v1")
    assert "the llama.cpp server at http://127.0.0.1:1/v1 died (signal SIGSEGV)" in said and "loading the model" in said
    assert os.fspath(log) in said
