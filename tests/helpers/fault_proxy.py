"""A fault-injecting HTTP proxy on 127.0.0.1, in front of a real OpenAI-compatible server.

    with FaultProxy("http://127.0.0.1:8000/v1") as proxy:
        proxy.plan(Fault.status(429, retry_after=1), Fault.status(500))   # the next two requests
        proxy.always(Fault.status(401))                                    # every request after those
        proxy.delay_s = 0.2                                                # added to every request
        ... point a client at proxy.url ...
        proxy.seen                                                         # what arrived, and what it got

A request with no fault planned is forwarded to the server and its answer returned unchanged.
Faults and `seen` are about POSTs (completions). A GET (the client asking `/models` what a model is)
is forwarded, or answered from `proxy.models` (and `proxy.props`) where a test sets them (what
another server, such as vLLM or llama.cpp's own, would report), and recorded in `proxy.gets`.
Faults are real HTTP: a status with a JSON body (and Retry-After), a connection that is accepted
and never answered (a hang), which the client has to time out, or a connection dropped unanswered
by a proxy that then stops listening (a server that died).
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "proxy-connection", "upgrade"}


@dataclass(frozen=True)
class Fault:
    kind: str  # "status" | "hang" | "die"
    code: int = 200
    retry_after: float | None = None
    body: dict | None = None  # "{credential}" in a string value becomes what the request authenticated with
    hang_s: float = 30.0

    @classmethod
    def status(cls, code: int, retry_after: float | None = None, body: dict | None = None) -> Fault:
        """Answer with this HTTP status (and Retry-After), an OpenAI-shaped error body by default."""
        return cls("status", code, retry_after, body)

    @classmethod
    def die(cls) -> Fault:
        """Drop the connection with no answer and stop listening, as a server that crashes mid-run does:
        this request is disconnected, every later one refused."""
        return cls("die")

    @classmethod
    def hang(cls, seconds: float = 30.0) -> Fault:
        """Accept the request, answer nothing for `seconds`, then drop the connection."""
        return cls("hang", hang_s=seconds)


@dataclass
class Seen:
    """One request as the proxy saw it, recorded when it arrives and completed when it is answered."""

    arrived: float  # time.monotonic()
    path: str
    authorization: str | None
    fault: str  # "forward", "429", "500", "hang", ...
    status: int | None = None  # what the client got; None for a hang (or not answered yet)
    body: bytes = b""  # what the client sent
    answered: float | None = None  # when the answer (or the dropped connection) went back


def openai_error(message: str, code: str | None = None, type_: str = "invalid_request_error") -> dict:
    """A body shaped as OpenAI's API shapes its errors."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


class FaultProxy:
    def __init__(self, upstream_url: str):
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.prefix = parts.path.rstrip("/")  # /v1
        self.delay_s = 0.0
        self.seen: list[Seen] = []
        self.gets: list[str] = []  # the paths GET asked
        self.models: list[dict] | None = None  # GET /models lists these instead of the server's
        self.props: dict | None = None  # GET /props (llama.cpp's server) answers this instead of the server
        self._planned: deque[Fault | None] = deque()
        self._default: Fault | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                proxy._handle(self)

            def do_POST(self) -> None:
                proxy._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.prefix}"

    def plan(self, *faults: Fault | None) -> None:
        """Faults for the next requests, in order (None forwards that one)."""
        with self._lock:
            self._planned.extend(faults)

    def always(self, fault: Fault | None) -> None:
        """The fault for every request once the plan is used up (None: forward)."""
        self._default = fault

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- serving -------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        if h.command == "GET":
            self.gets.append(h.path)
            path = h.path.rstrip("/")
            answer = ({"object": "list", "data": self.models} if self.models is not None and path.endswith("/models")
                      else self.props if path == "/props" else None)
            if answer is not None:
                data = json.dumps(answer).encode()
                h.send_response(200)
                h.send_header("Content-Type", "application/json")
                h.send_header("Content-Length", str(len(data)))
                h.end_headers()
                h.wfile.write(data)
            else:
                self._forward(h, b"")
            return
        arrived = time.monotonic()
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        auth = h.headers.get("Authorization")
        with self._lock:
            fault = self._planned.popleft() if self._planned else self._default
            seen = Seen(arrived, h.path, auth, "forward" if fault is None else fault.kind if fault.kind in ("hang", "die")
                        else str(fault.code), body=body)
            self.seen.append(seen)
        if self.delay_s:
            time.sleep(self.delay_s)
        if fault is None:
            seen.status = self._forward(h, body)
        elif fault.kind == "hang":
            self._closing.wait(fault.hang_s)
            h.close_connection = True
        elif fault.kind == "die":
            self.close()  # no new connection is accepted from here on: they are refused
            h.close_connection = True
        else:
            seen.status = fault.code
            self._reply(h, fault, _credential(auth))
        seen.answered = time.monotonic()

    def _forward(self, h: BaseHTTPRequestHandler, body: bytes) -> int:
        conn = http.client.HTTPConnection(*self.upstream, timeout=300)
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_BY_HOP}
            conn.request(h.command, h.path, body=body, headers=headers)
            reply = conn.getresponse()
            data = reply.read()
            h.send_response(reply.status)
            for k, v in reply.getheaders():
                if k.lower() not in HOP_BY_HOP and k.lower() not in ("date", "server"):
                    h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return reply.status
        finally:
            conn.close()

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, fault: Fault, credential: str) -> None:
        body = fault.body if fault.body is not None else openai_error(f"injected HTTP {fault.code}", type_="fault")
        data = json.dumps(body).replace("{credential}", credential).encode()
        h.send_response(fault.code)
        h.send_header("Content-Type", "application/json")
        if fault.retry_after is not None:
            h.send_header("Retry-After", f"{fault.retry_after:g}")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


def _credential(authorization: str | None) -> str:
    """What the request authenticated with, in clear: a Bearer token, or Basic's user:password."""
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value).decode()
        except ValueError:
            return value
    return value
