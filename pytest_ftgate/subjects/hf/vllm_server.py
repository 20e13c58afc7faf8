"""The vLLM engine (`--ftgate-engine=vllm`): one vLLM OpenAI-compatible server for a run's base model,
with every adapter the run needs (the candidate, the promoted production adapter) as a named LoRA
module of it, so that the base loads once.

The server runs from a Python that can import vllm (`--ftgate-vllm-python`, default this one), on a
free port of 127.0.0.1, its log in `.ftgate/vllm/`. It starts before the first generation, is waited
for with a clear timeout, is asked through the hardened endpoint client, and is stopped when the run
ends (and at exit, on Ctrl-C, on failure). A server that dies is an error that names its log, never a
pass. Subjects keep the fingerprint of their files; the engine joins the key outputs are cached under.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import GenerationError, OptionError
from ..endpoint.chat import answer_text, chat_params

if TYPE_CHECKING:
    from ...types import Output, Request
    from ..base import OnBatch
    from ..endpoint.client import EndpointClient

ENGINES = ("hf", "vllm")
BASE_NAME = "base"  # the base model's name on the server
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # what vLLM accepts as --max-lora-rank
MAX_MODEL_LEN = 4096  # at most: enough for eval cases, and the KV cache stays small on a CPU
CONCURRENCY = 16  # requests in flight: vLLM batches them continuously
LOG_DIR = Path(".ftgate") / "vllm"


def vllm_python(given: str | None) -> str:
    """The Python that runs the server: `given`, else this interpreter where it can import vllm. OptionError
    (exit 4) says how to install it otherwise."""
    python = given or sys.executable
    how = ("vLLM pins its own transformers, so it lives in an environment of its own: `make vllm` creates .venv-vllm "
           "from requirements/vllm.lock; then pass --ftgate-vllm-python=.venv-vllm/bin/python (ini ftgate_vllm_python)")
    if not Path(python).exists():
        raise OptionError(f"--ftgate-vllm-python={python}: no such file. {how}")
    probe = subprocess.run([python, "-c", "import vllm, sys; sys.stdout.write(vllm.__version__)"], capture_output=True,
                           text=True, timeout=300)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        raise OptionError(f"--ftgate-engine=vllm: {python} cannot import vllm ({last}). {how}")
    return python


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lora_rank(adapters: Sequence[Path]) -> int:
    ranks = [int(json.loads((a / "adapter_config.json").read_text()).get("r", 8)) for a in adapters]
    need = max(ranks, default=8)
    return next((r for r in LORA_RANKS if r >= need), need)


class VLLMServer:
    """One server for a base model and its adapters, started on first use and stopped by `stop`."""

    def __init__(self, base_dir: Path, tokenizer_dir: Path, dtype: str, python: str | None, ready_timeout_s: float):
        self.base_dir, self.tokenizer_dir, self.dtype = base_dir, tokenizer_dir, dtype
        self.python_given, self.ready_timeout_s = python, ready_timeout_s
        self.adapters: dict[Path, str] = {}  # adapter directory -> its LoRA module name
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self.version = ""
        self._client: EndpointClient | None = None
        self._rank = 0

    # ---- adapters ----------------------------------------------------------------------------
    def add_adapter(self, adapter: Path) -> None:
        if adapter in self.adapters:
            return
        name = f"lora-{len(self.adapters)}"
        self.adapters[adapter] = name
        if self.process is not None:  # known after the start: loaded into the running server
            self._load_lora(name, adapter)

    def model_for(self, adapter: Path | None) -> str:
        return BASE_NAME if adapter is None else self.adapters[adapter]

    # ---- the server's life ---------------------------------------------------------------------
    def start(self) -> None:
        if self.process is not None:
            return
        python = self.python_given or vllm_python(None)
        port = _free_port()
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = (LOG_DIR / f"server-{port}.log").resolve()
        self._rank = _lora_rank(list(self.adapters))
        config = json.loads((self.base_dir / "config.json").read_text())
        max_len = min(int(config.get("max_position_embeddings") or MAX_MODEL_LEN), MAX_MODEL_LEN)
        cmd = [python, "-m", "vllm.entrypoints.openai.api_server", "--host", "127.0.0.1", "--port", str(port),
               "--model", str(self.base_dir), "--tokenizer", str(self.tokenizer_dir), "--served-model-name", BASE_NAME,
               "--dtype", self.dtype, "--max-model-len", str(max_len), "--seed", "0",
               "--enable-lora", "--max-lora-rank", str(self._rank), "--max-loras", str(max(1, len(self.adapters)))]
        if self.adapters:
            cmd += ["--lora-modules", *(f"{name}={path}" for path, name in self.adapters.items())]
        env = {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True", "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")  # GiB of KV cache on a CPU (ignored on a GPU)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        atexit.register(self.stop)
        from ..endpoint.client import EndpointClient

        self._client = EndpointClient(f"http://127.0.0.1:{port}/v1", concurrency=CONCURRENCY, timeout_s=600, max_retries=2)
        self._wait_ready()

    def _wait_ready(self) -> None:
        import urllib.error
        import urllib.request

        assert self.process is not None and self._client is not None
        deadline = time.monotonic() + self.ready_timeout_s
        url = self._client.base_url + "/models"
        while True:
            if self.process.poll() is not None:
                raise GenerationError(f"the vLLM server exited ({self._exit()}) before it was ready; {self._log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as reply:
                    if reply.status == 200:
                        self.version = reply.headers.get("server", "")
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise GenerationError(f"the vLLM server was not ready within {self.ready_timeout_s:g} s "
                                      f"(--ftgate-vllm-timeout); {self._log_tail()}")
            time.sleep(1.0)

    def _load_lora(self, name: str, adapter: Path) -> None:
        import urllib.request

        assert self._client is not None
        if _lora_rank([adapter]) > self._rank:
            raise GenerationError(f"{adapter}: its LoRA rank is above the {self._rank} the vLLM server started with; "
                                  "name every adapter of the run when it starts (candidate, baseline)")
        body = json.dumps({"lora_name": name, "lora_path": str(adapter)}).encode()
        request = urllib.request.Request(self._client.base_url.removesuffix("/v1") + "/v1/load_lora_adapter", body,
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=300) as reply:
            if reply.status != 200:
                raise GenerationError(f"the vLLM server did not load the adapter {adapter} (HTTP {reply.status}); "
                                      f"{self._log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _exit(self) -> str:
        code = self.process.returncode if self.process is not None else None
        if code is not None and code < 0:
            return f"signal {signal.Signals(-code).name}"
        return f"exit status {code}"

    def _log_tail(self, lines: int = 12) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "it wrote no log"
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"its log is {self.log_path}; it ends:\n" + "\n".join("    " + line for line in tail)

    # ---- generation ----------------------------------------------------------------------------
    def generate(self, requests: Sequence[Request], adapter: Path | None, on_batch: OnBatch, progress: Any = None,
                 where: Sequence[str] | None = None) -> None:
        """Each request through the server, as `adapter` (None: the base); `where` names each one in errors."""
        from ...types import Output

        self.start()
        assert self._client is not None
        model = self.model_for(adapter)
        # the server batches the requests in flight: each one's compute share is its time over how many ran beside it
        in_flight = max(1, min(CONCURRENCY, len(requests)))

        def one(item: tuple[int, Request]) -> Output:
            i, request = item
            params = chat_params(request, render_tools=True)  # tools through the chat template, as the hf engine
            started = time.perf_counter()
            try:
                reply = self._client.complete(model, list(request.messages), where=where[i] if where else f"request {i}",
                                              **params)
            except GenerationError as exc:
                if self.process is not None and self.process.poll() is not None:
                    raise GenerationError(f"the vLLM server died during the run ({self._exit()}); "
                                          f"{self._log_tail()}") from None
                raise GenerationError(f"{exc}; {self._log_tail(6)}") from None
            usage = reply.usage
            return Output(answer_text(reply.choices[0].message), usage.prompt_tokens if usage else None,
                          usage.completion_tokens if usage else None, time.perf_counter() - started, batch_size=in_flight)

        def done(i: int, out: Output) -> None:
            on_batch([(i, out)])
            if progress is not None:
                progress.update(1)

        self._client.map(one, list(enumerate(requests)), done)


__all__ = ["ENGINES", "VLLMServer", "vllm_python"]
