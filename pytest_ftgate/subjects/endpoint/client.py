"""One client for every OpenAI-compatible endpoint the gate talks to: candidate, baseline and judge.

- Bounded concurrency: `map` runs calls on `concurrency` worker threads, and one limiter, shared
  by all of them, keeps at most `concurrency` requests in flight.
- 429, 408, 409, 5xx, timeouts and connection errors are retried `max_retries` times with
  exponential backoff and jitter. A 429 pauses every worker for its `Retry-After` (or the
  backoff), not only the one that got it. Spent retries: GenerationError, naming the call.
- 401, 403 and an unknown model (404) cannot be fixed by retrying: EndpointError at once, and the
  other workers stop. The first request goes alone and the rest follow once the endpoint has
  answered, so a wrong key or model costs one request, not `concurrency` of them.
- Secrets stay out of what it says: every message passes through `redact`, the URL it shows is
  `display_url`, and the HTTP libraries' own log records are redacted as well.

The transport is the openai client's, with its retries off (max_retries=0): the retry policy is
ours, so the limiter and Retry-After hold across threads.
"""

from __future__ import annotations

import email.utils
import logging
import os
import queue
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ...errors import EndpointError, GateRunError, GenerationError

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
LOCAL_PLACEHOLDER_KEY = "not-needed-for-local-servers"  # llama.cpp and vLLM accept any key
BACKOFF_BASE_S = 0.5  # first retry after about this; doubled each time, with jitter
BACKOFF_MAX_S = 8.0
MAX_RETRY_AFTER_S = 120.0  # a server asking for longer is out of quota, not busy
RETRIABLE_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))
LOGGERS = ("openai", "httpx2", "httpcore2", "httpx", "httpcore")  # whose records (and children's) are redacted

log = logging.getLogger(__name__)

# ---- secrets ---------------------------------------------------------------------------------
MASK = "***"
_SECRET_NAME = re.compile(r"(_KEY|_TOKEN|_SECRET|PASSWORD)$", re.IGNORECASE)
_MIN_ENV_SECRET = 8  # shorter env values ("1", "true") are settings, not secrets
_registered: frozenset[str] = frozenset()  # replaced, never mutated: threads read it without a lock
_PATTERNS = (
    (re.compile(r"(?<=://)[^/\s@'\"<>]+@"), MASK + "@"),  # user:pass@ in a URL
    (re.compile(r"(?i)([?&;](?:api[_-]?key|key|token|access[_-]?token|secret|password|sig)=)[^&#\s'\"<>]+"), r"\1" + MASK),
    (re.compile(r"(?i)\b(api[_-]?key|access[_-]?token|token|password|secret)(['\"]?\s*[:=]\s*['\"]?)[^\s'\",&}]+"),
     r"\1\2" + MASK),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + MASK),
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?\w+\s+)[^\s'\",}]+"), r"\1" + MASK),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), "sk-" + MASK),
)


def register_secret(value: str | None) -> None:
    """Redact this value from now on (an API key given as an argument, a password in a URL)."""
    global _registered
    if value and len(value) >= 4 and value != LOCAL_PLACEHOLDER_KEY:
        _registered = _registered | {value}


def _secret_values() -> list[str]:
    values = set(_registered)
    for name, value in os.environ.items():
        if (name == "OPENAI_API_KEY" or _SECRET_NAME.search(name)) and len(value) >= _MIN_ENV_SECRET:
            values.add(value)
    return sorted(values, key=len, reverse=True)  # a key that contains another goes first


def redact(text: str) -> str:
    """`text` with secrets masked: OPENAI_API_KEY and every env value named *_KEY, *_TOKEN,
    *_SECRET or *PASSWORD, registered keys, `user:pass@` in URLs, key/token query values,
    `Bearer ...` and `Authorization:` values."""
    text = str(text)
    for value in _secret_values():
        text = text.replace(value, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_SECRET_PARAM = re.compile(r"(?i)api[_-]?key|key|token|access[_-]?token|secret|password|sig")


def strip_credentials(url: str) -> str:
    """The URL with its user:pass@ removed and secret query values masked; otherwise unchanged."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(_SECRET_PARAM.fullmatch(k) for k, _ in pairs):
        query = urlencode([(k, MASK if _SECRET_PARAM.fullmatch(k) else v) for k, v in pairs], safe="*")
    return redact(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the logging module's to report
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_FILTER = _RedactingFilter()


def _guard_loggers() -> None:
    """Redact the HTTP libraries' records (httpx logs every request URL at INFO).

    A logger's filter sees only records made on that logger, so every one under LOGGERS gets it."""
    for name in [*LOGGERS, *list(logging.root.manager.loggerDict)]:
        if name.split(".")[0] in LOGGERS:
            logger = logging.getLogger(name)
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)


# ---- the limiter -----------------------------------------------------------------------------
class _Cancelled(Exception):
    """This call's `map` was stopped by another call's failure; it is not an error of its own."""


class _Limiter:
    """Shared by every thread of one client: requests in flight, the 429 pause, the first probe."""

    def __init__(self, concurrency: int):
        self.concurrency = concurrency
        self._cond = threading.Condition()
        self._in_flight = 0
        self._resume_at = 0.0  # time.monotonic() before which no request starts (after a 429)
        self._pause_s = 0.0
        self._answered = False  # until the endpoint has answered once, one request at a time
        self.fatal: EndpointError | None = None

    def acquire(self, cancel: threading.Event | None) -> None:
        jitter = random.random()  # spreads the restart after a pause over 10% of its length
        with self._cond:
            while True:
                self._check(cancel)
                wait = self._resume_at + jitter * 0.1 * self._pause_s - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                limit = self.concurrency if self._answered else 1
                if self._in_flight < limit:
                    self._in_flight += 1
                    return
                self._cond.wait()

    def release(self, answered: bool) -> None:
        with self._cond:
            self._in_flight -= 1
            self._answered = self._answered or answered
            self._cond.notify_all()

    @property
    def answered(self) -> bool:
        """The endpoint has answered at least once in this run."""
        return self._answered

    def pause(self, seconds: float) -> None:
        """No request starts, in any thread, for `seconds` from now."""
        with self._cond:
            resume = time.monotonic() + seconds
            if resume > self._resume_at:
                self._resume_at, self._pause_s = resume, seconds
            self._cond.notify_all()

    def sleep(self, seconds: float, cancel: threading.Event | None) -> None:
        """Back off for `seconds`, waking at once if the run stops."""
        deadline = time.monotonic() + seconds
        with self._cond:
            while (left := deadline - time.monotonic()) > 0:
                self._check(cancel)
                self._cond.wait(left)
            self._check(cancel)

    def stop(self, error: EndpointError) -> None:
        with self._cond:
            self.fatal = self.fatal or error
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _check(self, cancel: threading.Event | None) -> None:
        if self.fatal is not None:
            raise EndpointError(str(self.fatal))
        if cancel is not None and cancel.is_set():
            raise _Cancelled


# ---- the client ------------------------------------------------------------------------------
def _refused(message: str) -> bool:
    """The last failure was a refused connection: nothing listens at the address any more."""
    text = message.lower()
    return "refused" in text or "errno 111" in text


def retry_after_s(headers: Any) -> float | None:
    """Seconds a response asks to wait: `retry-after-ms`, `retry-after` in seconds or as a date."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            pass
    value = headers.get("retry-after")
    try:
        when = email.utils.parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    return None if when is None else max(0.0, when.timestamp() - time.time())


def backoff_s(retry: int) -> float:
    """Exponential backoff with equal jitter: half fixed, half random, so workers spread out."""
    ceiling = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**retry)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class EndpointClient:
    """An OpenAI-compatible chat endpoint, shared by the calls of one subject or judge."""

    def __init__(self, base_url: str | None, *, concurrency: int = 8, timeout_s: float = 120.0, max_retries: int = 5,
                 api_key: str | None = None):
        try:
            import openai
        except ImportError:
            raise GateRunError("OpenAI-compatible endpoints need the openai package: "
                               "pip install 'pytest-ftgate[judge]'") from None
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        self.concurrency = max(1, int(concurrency))
        self.timeout_s = float(timeout_s)
        self.max_retries = max(0, int(max_retries))
        self.key_source = "argument" if api_key else "OPENAI_API_KEY" if os.environ.get("OPENAI_API_KEY") else None
        key = api_key or os.environ.get("OPENAI_API_KEY") or LOCAL_PLACEHOLDER_KEY
        register_secret(key)
        parts = urlsplit(self.base_url)
        register_secret(parts.password)
        if parts.username and parts.password is None:
            register_secret(parts.username)  # https://TOKEN@host: the user name is the secret
        self.display_url = strip_credentials(self.base_url)
        _guard_loggers()
        self._openai = openai
        self._client = openai.OpenAI(base_url=self.base_url, api_key=key, max_retries=0, timeout=self.timeout_s)
        self._limiter = _Limiter(self.concurrency)
        self._local = threading.local()
        self._disconnected = False  # a connection closed with no reply: how a crashing server goes

    def complete(self, model: str, messages: list[dict], *, where: str, **params: Any) -> Any:
        """One chat completion (the openai ChatCompletion), retried as the module says.

        `where` says what the call was for ("case general/france"); every error names it."""
        return self._send(lambda: self._client.chat.completions.create(model=model, messages=messages, **params),
                          model, where)

    def get_json(self, path: str, *, model: str, where: str) -> Any:
        """GET `path` (relative to the base URL, or absolute) and its JSON, retried as a completion is;
        None where the server has no such route (404, 405, 501). It does not count as the endpoint
        answering: the first completion still goes alone."""
        return self._send(lambda: self._client.get(path, cast_to=object), model, where, probe=True)

    def _send(self, call: Callable[[], T], model: str, where: str, *, probe: bool = False) -> Any:
        openai = self._openai
        cancel: threading.Event | None = getattr(self._local, "cancel", None)
        last = ""
        for attempt in range(self.max_retries + 1):
            self._limiter.acquire(cancel)
            answered = False
            delay: float | None = None
            try:
                reply = call()
                answered = True
                return reply
            except openai.APIStatusError as exc:
                answered = True
                status = exc.status_code
                if probe and status in (404, 405, 501):
                    return None
                last = f"HTTP {status}: {self._detail(exc)}"
                fatal = self._fatal(exc, model, where)
                if fatal is not None:
                    self._limiter.stop(fatal)
                    raise EndpointError(str(fatal)) from None
                if status not in RETRIABLE_STATUS:
                    raise GenerationError(f"{self.display_url} failed on {where}: {last}") from None
                delay = retry_after_s(exc.response.headers)
                if delay is not None and delay > MAX_RETRY_AFTER_S:
                    raise GenerationError(
                        f"{self.display_url} failed on {where}: {last}; it asks to wait {delay:.0f} s before retrying, "
                        f"more than {MAX_RETRY_AFTER_S:.0f} s: a quota or rate limit is spent. Wait for it to reset, "
                        "or lower --ftgate-openai-concurrency") from None
                if status == 429 or delay is not None:
                    # a rate limit (or a wait the server asks for) is the endpoint's, not this worker's:
                    # every worker waits
                    pause = delay if delay is not None else backoff_s(attempt)
                    self._limiter.pause(pause)
                    delay = 0.0  # acquire() waits out the pause with the others
                    last += f" (every worker paused {pause:.2f} s)"
            except openai.APITimeoutError:
                last = f"no answer within {self.timeout_s:g} s (--ftgate-openai-timeout)"
            except openai.APIConnectionError as exc:
                last = redact(f"{exc.message} ({exc.__cause__})" if exc.__cause__ else exc.message)
                self._disconnected = self._disconnected or "disconnected" in last.lower()
            except openai.APIError as exc:  # a reply the client cannot read: not worth a retry
                raise GenerationError(f"{self.display_url} failed on {where}: {redact(str(exc))}") from None
            finally:
                self._limiter.release(answered and not probe)
            if attempt < self.max_retries:
                wait = backoff_s(attempt) if delay is None else delay + random.uniform(0, min(1.0, 0.1 * delay))
                log.info("%s", redact(f"{self.display_url}: {where}: {last}; retry {attempt + 1} of {self.max_retries}"
                                      + (f" in {wait:.2f} s" if wait else "")))
                self._limiter.sleep(wait, cancel)
        if self._limiter.answered and _refused(last):
            raise GenerationError(
                f"{self.display_url} stopped answering during the run: it answered earlier requests, and on {where} it "
                f"{'closed the connection without a reply, then ' if self._disconnected else ''}refused connections "
                f"({self.max_retries + 1} attempt(s), the last: {last}). The server has exited or crashed mid-run; its "
                "own log says why. Restart it and rerun the gate (answers already received are cached where the server identifies its model).")
        raise GenerationError(
            f"{self.display_url} failed on {where} after {self.max_retries + 1} attempt(s), the last: {last}. "
            f"The endpoint is down, overloaded or rate-limited: check it, or raise --ftgate-openai-retries "
            f"(now {self.max_retries}) or --ftgate-openai-timeout (now {self.timeout_s:g} s), or lower "
            f"--ftgate-openai-concurrency (now {self.concurrency})")

    def map(self, fn: Callable[[T], R], items: Iterable[T], on_result: Callable[[int, R], None]) -> None:
        """Call `fn` on every item on up to `concurrency` threads; `on_result(index, result)` runs in
        the calling thread as each finishes. The first failure stops the other workers (sleeping
        ones at once, ones mid-request when their request ends) and is raised here."""
        todo = list(items)
        if not todo:
            return
        cancel = threading.Event()
        results: queue.SimpleQueue[tuple[int, Any, BaseException | None]] = queue.SimpleQueue()
        order = iter(range(len(todo)))
        take = threading.Lock()

        def worker() -> None:
            self._local.cancel = cancel
            while not cancel.is_set():
                with take:
                    i = next(order, None)
                if i is None:
                    return
                try:
                    results.put((i, fn(todo[i]), None))
                except BaseException as exc:  # noqa: BLE001 - handed to the calling thread, which raises it
                    results.put((i, None, exc))
                    return

        # daemon threads: a request hung past a failure must not keep the process alive
        for n in range(min(self.concurrency, len(todo))):
            threading.Thread(target=worker, name=f"ftgate-endpoint-{n}", daemon=True).start()
        try:
            for _ in range(len(todo)):
                i, value, error = results.get()
                if error is not None:
                    raise error
                on_result(i, value)
        finally:
            cancel.set()
            self._limiter.wake()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> EndpointClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EndpointClient({self.display_url!r}, concurrency={self.concurrency})"

    # ---- errors --------------------------------------------------------------------------------
    @staticmethod
    def _detail(exc: Any) -> str:
        body = exc.body
        if isinstance(body, dict):
            body = body.get("error", body)
            body = body.get("message", body) if isinstance(body, dict) else body
        text = str(body if body not in (None, "") else exc.message)
        return redact(text if len(text) <= 300 else text[:300] + "...")

    def _fatal(self, exc: Any, model: str, where: str) -> EndpointError | None:
        """An EndpointError for a refusal no retry can fix, else None."""
        status, url = exc.status_code, self.display_url
        detail = f"HTTP {status}: {self._detail(exc)}"
        key = {"argument": "the api_key given (its value is never shown)",
               "OPENAI_API_KEY": "OPENAI_API_KEY (its value is never shown)"}.get(
            self.key_source or "", "OPENAI_API_KEY: it is not set, so a placeholder key was sent")
        if status == 401:
            return EndpointError(
                f"{url} refused the API key on {where} ({detail}). Check {key}, and that the base URL "
                "(--ftgate-openai-base-url, --ftgate-judge-base-url or OPENAI_BASE_URL) is the endpoint the key "
                "belongs to. The run stopped at once: retrying cannot fix this")
        if status == 403:
            return EndpointError(
                f"{url} denied {where} ({detail}): the key is valid but may not use model {model!r} here. Check the "
                f"key's project and permissions (the key: {key}) and the model name. The run stopped at once")
        if status == 404 or exc.code == "model_not_found":
            return EndpointError(
                f"{url} has no model {model!r}, or no chat API at that URL, on {where} ({detail}). Check the model "
                f"name in openai:{model} (the endpoint lists its models at {url.rstrip('/')}/models) and that the "
                "base URL includes the API's prefix (often /v1). The run stopped at once")
        return None


__all__ = ["EndpointClient", "backoff_s", "redact", "register_secret", "retry_after_s", "strip_credentials"]
