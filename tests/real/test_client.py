"""The endpoint client under real faults: a loopback proxy (tests/helpers/fault_proxy.py) in front of the
real llama.cpp server answers 429 with Retry-After, 5xx, 401/403/404, or hangs, on the requests a
test chooses. No fault may end in a pass; no credential may reach a report, a cache, a log or a
message.

Nothing here asserts what the model said: only how many requests reached the proxy, when, what
the client and the gate made of them.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
import uuid
from pathlib import Path

import pytest

from pytest_ftgate.settings.config import build_run_config
from pytest_ftgate.errors import EXIT_GATE_ERROR, EXIT_USAGE, EndpointError, GenerationError
from pytest_ftgate.subjects.endpoint.client import MASK, EndpointClient, _Limiter, redact, strip_credentials
from tests.helpers.fault_proxy import Fault, FaultProxy, openai_error

CHAT = [{"role": "user", "content": "Say one word."}]  # the same prompt each time: llama.cpp reuses its cache
KEY_ECHO = openai_error("Incorrect API key provided: {credential}. You can find your API key at ...", "invalid_api_key")


@pytest.fixture
def proxy(server: str):
    with FaultProxy(server) as p:
        yield p


def ask(client: EndpointClient, where: str = "case t/one") -> object:
    return client.complete("smollm2", CHAT, where=where, max_tokens=1)


def answered(seen) -> list[str]:
    return [s.fault for s in seen]


# ---- retries -----------------------------------------------------------------------------------
def test_a_429_is_retried_after_the_wait_its_retry_after_asks_for(proxy):
    client = EndpointClient(proxy.url, concurrency=1, max_retries=2)
    proxy.plan(Fault.status(429, retry_after=1.0))

    reply = ask(client)

    assert reply.choices and answered(proxy.seen) == ["429", "forward"]
    waited = proxy.seen[1].arrived - proxy.seen[0].answered
    assert 1.0 <= waited < 2.0, waited  # Retry-After (+ up to 10% jitter), not the 0.5 s backoff


def test_a_429_pauses_every_worker_not_only_the_one_that_got_it(proxy, monkeypatch):
    def requests_during_the_pause(shared: bool) -> tuple[int, int]:
        if not shared:  # the control: without the shared pause, the other workers keep sending
            monkeypatch.setattr(_Limiter, "pause", lambda self, seconds: None)
        proxy.seen.clear()
        proxy.delay_s = 0.15  # 24 requests, 4 at a time: about a second of work after the 429
        proxy.plan(None, Fault.status(429, retry_after=1.0))  # the first request alone, then 3 at once
        client = EndpointClient(proxy.url, concurrency=4, max_retries=3)
        got: list[int] = []

        client.map(lambda i: ask(client, f"case t/{i}"), range(24), lambda i, _: got.append(i))

        assert sorted(got) == list(range(24))
        limited = next(s for s in proxy.seen if s.fault == "429")
        # requests already on their way when the 429 went back may still arrive; none may start later
        during = [s for s in proxy.seen if limited.answered + 0.15 < s.arrived < limited.answered + 1.0]
        after = [s for s in proxy.seen if s.arrived >= limited.answered + 1.0]
        return len(during), len(after)

    during, after = requests_during_the_pause(shared=True)
    assert during == 0 and after > 0
    assert requests_during_the_pause(shared=False)[0] > 0


def test_5xx_are_retried_with_growing_backoff_until_the_server_answers(proxy):
    client = EndpointClient(proxy.url, concurrency=1, max_retries=3)
    proxy.plan(Fault.status(500), Fault.status(502), Fault.status(503))

    assert ask(client).choices

    seen = proxy.seen
    assert answered(seen) == ["500", "502", "503", "forward"]
    gaps = [b.arrived - a.answered for a, b in itertools.pairwise(seen)]
    # equal jitter: at least half of 0.5, 1, 2 s
    assert gaps[0] >= 0.25 and gaps[1] >= 0.5 and gaps[2] >= 1.0, gaps


def test_a_hung_request_times_out_and_is_retried(proxy):
    client = EndpointClient(proxy.url, concurrency=1, timeout_s=0.5, max_retries=1)
    proxy.plan(Fault.hang(30))
    started = time.monotonic()

    assert ask(client).choices

    assert answered(proxy.seen) == ["hang", "forward"]
    assert time.monotonic() - started >= 0.5


def test_spent_retries_are_a_generation_error_that_names_the_call_and_the_options(proxy):
    client = EndpointClient(proxy.url, concurrency=2, timeout_s=0.5, max_retries=2)
    proxy.always(Fault.status(503))

    with pytest.raises(GenerationError) as info:
        ask(client, "case general/france")

    assert len(proxy.seen) == 3
    message = str(info.value)
    assert f"{proxy.url} failed on case general/france after 3 attempt(s), the last: HTTP 503" in message
    assert "--ftgate-openai-retries (now 2)" in message and "--ftgate-openai-timeout (now 0.5 s)" in message


def test_a_server_that_dies_mid_run_is_said_to_have_stopped_not_only_disconnected(proxy):
    client = EndpointClient(proxy.url, concurrency=1, max_retries=2)
    ask(client)
    proxy.plan(Fault.die())

    with pytest.raises(GenerationError) as info:
        ask(client, "case t/two")

    said = str(info.value)
    assert answered(proxy.seen) == ["forward", "die"]  # the retries found nothing listening
    assert "stopped answering during the run" in said and "case t/two" in said
    assert "closed the connection without a reply, then refused connections" in said and "its own log says why" in said


def test_an_endpoint_that_never_answered_is_not_said_to_have_died():
    with FaultProxy("http://127.0.0.1:9/v1") as gone:
        url = gone.url  # a port that was listening a moment ago, and is closed now
    with pytest.raises(GenerationError) as info:
        ask(EndpointClient(url, concurrency=1, max_retries=1))
    assert "stopped answering" not in str(info.value) and "The endpoint is down" in str(info.value)


def test_a_retry_after_longer_than_two_minutes_fails_at_once(proxy):
    client = EndpointClient(proxy.url, concurrency=1, max_retries=5)
    proxy.always(Fault.status(429, retry_after=3600))

    with pytest.raises(GenerationError, match="asks to wait 3600 s"):
        ask(client)

    assert len(proxy.seen) == 1


def test_map_keeps_at_most_concurrency_requests_in_flight(proxy):
    proxy.delay_s = 0.2
    client = EndpointClient(proxy.url, concurrency=3)
    client.map(lambda i: ask(client, f"case t/{i}"), range(12), lambda i, _: None)

    events = sorted([(s.arrived, 1) for s in proxy.seen] + [(s.answered, -1) for s in proxy.seen])
    in_flight = peak = 0
    for _, step in events:
        in_flight += step
        peak = max(peak, in_flight)
    assert len(proxy.seen) == 12 and peak == 3


# ---- refusals that no retry can fix -------------------------------------------------------------
@pytest.mark.parametrize("status, body, says", [
    (401, KEY_ECHO, ["refused the API key on case t/", "Check OPENAI_API_KEY"]),
    (403, openai_error("You are not allowed to sample from this model", "model_not_allowed"),
     ["denied case t/", "may not use model 'smollm2'"]),
    (404, openai_error("The model `smollm2` does not exist or you do not have access to it.", "model_not_found"),
     ["has no model 'smollm2'", "/models"]),
])
def test_a_refusal_stops_every_worker_after_one_request(proxy, monkeypatch, status, body, says):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-" + uuid.uuid4().hex)
    client = EndpointClient(proxy.url, concurrency=8)
    proxy.always(Fault.status(status, body=body))

    with pytest.raises(EndpointError) as info:
        client.map(lambda i: ask(client, f"case t/{i}"), range(16), lambda i, _: None)

    time.sleep(0.2)
    assert len(proxy.seen) == 1  # the first request goes alone: the refusal is known before the rest start
    for phrase in says:
        assert phrase in str(info.value)
    with pytest.raises(EndpointError):  # the client stays stopped: no more requests are sent
        ask(client)
    assert len(proxy.seen) == 1


def test_a_base_url_without_the_api_prefix_is_a_real_404_that_says_so(server):
    client = EndpointClient(server.removesuffix("/v1"), concurrency=2)

    with pytest.raises(EndpointError, match=r"no chat API at that URL.*includes the API's prefix \(often /v1\)"):
        ask(client)


# ---- the gate, end to end -----------------------------------------------------------------------
def write_suite(pytester: pytest.Pytester, n: int = 6) -> Path:
    """suites/general.yaml, whose scorer passes any output at all (so a swallowed fault would pass),
    and baseline outputs for it: the path of those."""
    rows = [{"id": f"q{i}", "input": f"Say the number {i}."} for i in range(n)]
    pytester.makefile(".jsonl", **{"suites/general": "".join(json.dumps(r) + "\n" for r in rows)})
    pytester.makefile(".yaml", **{"suites/general": "kind: task\ncases: general.jsonl\ngenerate: {max_new_tokens: 2}\n"
                                                    "scorers: [{length: {max_chars: 100000}}]\n"})
    outputs = pytester.path / "base.jsonl"
    outputs.write_text("".join(json.dumps({"id": r["id"], "output": "x"}) + "\n" for r in rows))
    return outputs


def gate(pytester: pytest.Pytester, url: str, *args: str) -> pytest.RunResult:
    outputs = write_suite(pytester)
    return pytester.runpytest_subprocess("--candidate=openai:smollm2", f"--baseline={outputs}",
                                         f"--ftgate-openai-base-url={url}", "--ftgate-report-dir=out",
                                         "--ftgate-cache-dir=cache", "-p", "no:cacheprovider", *args)


def assert_gate_error(pytester: pytest.Pytester, result: pytest.RunResult, *lines: str, report_dir: str = "out") -> None:
    assert result.ret == EXIT_GATE_ERROR, result.stdout.str()
    result.stdout.fnmatch_lines(["*the gate could not run*", *lines])
    result.stdout.no_fnmatch_line("*passed*")
    result.stdout.no_fnmatch_line("*During handling*")
    assert not (pytester.path / report_dir / "report.json").exists()


@pytest.fixture
def no_endpoint_env(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def test_a_server_failing_past_its_retries_is_a_gate_error_never_a_pass(pytester, proxy, no_endpoint_env):
    proxy.always(Fault.status(500))

    result = gate(pytester, proxy.url, "--ftgate-openai-retries=1")

    assert_gate_error(pytester, result, "*failed on case general/q* after 2 attempt(s), the last: HTTP 500*")
    assert {s.fault for s in proxy.seen} == {"500"} and len(proxy.seen) >= 2


def test_a_hanging_server_times_out_is_retried_and_is_a_gate_error(pytester, proxy, no_endpoint_env):
    proxy.always(Fault.hang(60))

    result = gate(pytester, proxy.url, "--ftgate-openai-timeout=0.5", "--ftgate-openai-retries=1")

    assert_gate_error(pytester, result, "*after 2 attempt(s), the last: no answer within 0.5 s (--ftgate-openai-timeout)*")
    assert len(proxy.seen) >= 2 and {s.fault for s in proxy.seen} == {"hang"}


def test_a_refused_key_stops_the_gate_at_once_and_is_never_shown(pytester, proxy, monkeypatch, no_endpoint_env):
    canary = "sk-canary-" + uuid.uuid4().hex
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    proxy.always(Fault.status(401, body=KEY_ECHO))  # like OpenAI's, the 401 quotes the key back

    result = gate(pytester, proxy.url)

    assert_gate_error(pytester, result, f"*{proxy.url} refused the API key on case general/q*Check OPENAI_API_KEY "
                                        "(its value is never shown)*The run stopped at once*")
    assert [s.authorization for s in proxy.seen] == [f"Bearer {canary}"]  # one request; the key was sent
    assert "Incorrect API key provided: ***" in result.stdout.str()
    assert canary not in result.stdout.str() + result.stderr.str()


def test_canary_credentials_never_reach_reports_caches_logs_or_messages(pytester, proxy, monkeypatch, no_endpoint_env):
    key, password = "sk-canary-" + uuid.uuid4().hex, "pw-canary-" + uuid.uuid4().hex
    monkeypatch.setenv("OPENAI_API_KEY", key)
    url = proxy.url.replace("http://", f"http://canary-user:{password}@")
    logging = ["--log-cli-level=DEBUG", "-o", "log_cli=true", "--junitxml=out/junit.xml", "-v"]

    ok = gate(pytester, url, *logging)

    assert ok.ret == 0, ok.stdout.str()
    # the credentials were really in play: httpx sends a URL's user:pass as basic auth
    basic = "Basic " + base64.b64encode(f"canary-user:{password}".encode()).decode()
    assert {s.authorization for s in proxy.seen} == {basic}
    ok.stdout.fnmatch_lines(["*HTTP Request: POST http://***@127.0.0.1:*/v1/chat/completions*"])  # httpx's own log
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    assert report["subjects"]["candidate"]["details"]["base_url"] == proxy.url

    proxy.always(Fault.status(500, body=KEY_ECHO))  # an error body that quotes the credentials back
    failed = gate(pytester, url, "--ftgate-no-cache", "--ftgate-openai-retries=0", "--ftgate-report-dir=out2", *logging)

    assert_gate_error(pytester, failed, f"*{proxy.url} failed on case general/q*Incorrect API key provided: canary-user:***.*",
                      report_dir="out2")
    texts = {"stdout+stderr": "\n".join(r.stdout.str() + r.stderr.str() for r in (ok, failed))}
    files = [p for d in ("out", "out2", "cache") for p in (pytester.path / d).rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"report.json", "report.md", "report.html", "junit.xml", "cache-v2.sqlite"}
    texts |= {str(p): p.read_bytes().decode("utf-8", "replace") for p in files}  # the SQLite file and its WAL too
    for where, text in texts.items():
        for secret in (key, password, basic.split()[1]):
            assert secret not in text, f"{secret[:10]}... leaked into {where}"


# ---- secrets and options, without a server -------------------------------------------------------
def test_redact_masks_every_kind_of_secret_and_leaves_settings_alone(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-0123456789")
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-9f8e7d6c5b")
    monkeypatch.setenv("DB_PASSWORD", "correct-horse")
    monkeypatch.setenv("SHORT_KEY", "1")  # a setting, not a secret: too short to redact
    text = ("sk-from-env-0123456789 tok-9f8e7d6c5b correct-horse https://bob:s3cret@host/v1 "
            "https://host/v1?api_key=AAA&key=BBB&token=CCC&n=1 Authorization: Bearer eyJabc.def api_key=DDD "
            "max_tokens=1 SHORT_KEY=1")

    clean = redact(text)

    for secret in ("sk-from-env", "tok-9f8e", "correct-horse", "s3cret", "bob", "AAA", "BBB", "CCC", "eyJabc", "DDD"):
        assert secret not in clean, clean
    assert "https://***@host/v1" in clean and "n=1" in clean and "max_tokens=1" in clean and "SHORT_KEY=1" in clean
    assert strip_credentials("https://bob:s3cret@host:8443/v1?key=AAA&n=1") == f"https://host:8443/v1?key={MASK}&n=1"
    assert strip_credentials("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"


def test_a_token_given_as_a_url_user_name_is_a_secret_too():
    client = EndpointClient("https://ghp-0123456789abcdef@gateway.example/v1")

    assert client.display_url == "https://gateway.example/v1"
    assert "ghp-0123456789abcdef" not in redact("failed: token ghp-0123456789abcdef")


def test_endpoint_options_reach_the_subject_options(tmp_path, monkeypatch):
    from pytest_ftgate.subjects.endpoint.subject import OpenAISubject

    monkeypatch.delenv("FTGATE_JUDGE_BASE_URL", raising=False)
    monkeypatch.setattr(OpenAISubject, "identify", lambda self, **kw: None)  # no server here: only options are checked
    ini = {"ftgate_openai_concurrency": "3"}
    config = build_run_config({"ftgate_openai_timeout": 2.5, "ftgate_openai_retries": 0,
                               "ftgate_openai_base_url": "http://127.0.0.1:1/v1"}, tmp_path, ini.get)
    from pytest_ftgate.stores.cache import Cache
    from pytest_ftgate.subjects import Resolver

    def judge_url(config) -> str:
        return Resolver(config.subject_options, Cache(None)).judge("openai:j").client.display_url

    options = config.subject_options
    assert (options.openai_concurrency, options.openai_timeout_s, options.openai_retries) == (3, 2.5, 0)
    assert config.judge is None and judge_url(config) == "http://127.0.0.1:1/v1"
    defaults = build_run_config({}, tmp_path).subject_options
    assert (defaults.openai_concurrency, defaults.openai_timeout_s, defaults.openai_retries) == (8, 120.0, 5)
    monkeypatch.setenv("FTGATE_JUDGE_BASE_URL", "http://judge/v1")
    assert judge_url(build_run_config({}, tmp_path)) == "http://judge/v1"
    assert judge_url(build_run_config({"ftgate_judge_base_url": "http://flag/v1", "ftgate_judge": "openai:j"},
                                      tmp_path)) == "http://flag/v1"


def test_bad_endpoint_option_values_are_usage_errors(pytester):
    write_suite(pytester, n=1)
    helped = pytester.runpytest_subprocess("--help", "-p", "no:cacheprovider")
    pytester.makeini("[pytest]\nftgate_openai_concurrency = lots\n")

    bad_ini = pytester.runpytest_subprocess("--baseline=openai:x", "-p", "no:cacheprovider")
    bad_flag = pytester.runpytest_subprocess("--baseline=openai:x", "--ftgate-openai-retries=-1", "-p", "no:cacheprovider")

    assert bad_ini.ret == EXIT_USAGE
    bad_ini.stderr.fnmatch_lines(["*ini key ftgate_openai_concurrency: 'lots' is not an integer*"])
    assert bad_flag.ret == EXIT_USAGE
    bad_flag.stderr.fnmatch_lines(["*--ftgate-openai-retries: must be 0 or more, got -1*"])
    helped.stdout.fnmatch_lines(["*--ftgate-judge=SUBJECT", "*judge for `kind: judge` suites*",
                                 "*--ftgate-openai-concurrency=N*", "*--ftgate-openai-timeout=S*",
                                 "*--ftgate-openai-retries=N*", "*ftgate_openai_concurrency (string):*"])
