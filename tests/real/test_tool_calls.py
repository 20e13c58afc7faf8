"""Tools and conversations through a real OpenAI-compatible server (llama.cpp serving SmolLM2).

What is asserted is mechanics, never what the model chose to say: a named tool_choice makes the server
constrain the arguments to the tool's schema, so its call always parses and fits the schema; a case whose
template cannot show the tools gets a text answer, which the scorer fails with its reason.
"""

from __future__ import annotations

import json
from pathlib import Path

from pytest_ftgate import RunConfig, load_suite, run_gate
from tests.conftest import write

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The current weather in a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def gate(tmp_path: Path, rows: list[dict], scorers: str, max_new_tokens: int = 48):
    write(tmp_path / "cases.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    path = write(tmp_path / "s.yaml", f"kind: format\ncases: cases.jsonl\ngenerate: {{max_new_tokens: {max_new_tokens}}}\n"
                                      f"scorers: {scorers}\n")
    return run_gate([load_suite(path)], RunConfig(baseline="openai:smollm2", cache_dir=None, progress=False,
                                                  suites_dir=tmp_path))


def local(monkeypatch, server: str) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
    monkeypatch.setenv("OPENAI_BASE_URL", server)


def test_the_tool_call_scorer_reads_the_calls_the_server_returns(tmp_path, server, monkeypatch):
    local(monkeypatch, server)
    forced = {"type": "function", "function": {"name": "get_weather"}}
    rows = [
        {"id": "forced", "input": "What is the weather in Paris?", "tools": [WEATHER], "tool_choice": forced,
         "expected": {"name": "get_weather", "arguments_schema": SCHEMA}},
        {"id": "wrong-tool", "input": "What is the weather in Rome?", "tools": [WEATHER], "tool_choice": forced,
         "expected": {"name": "get_time"}},
    ]
    run = gate(tmp_path, rows, "[tool_call]")
    forced_result, wrong = run.outcomes[0].baseline.results
    assert forced_result.output.text.lstrip().startswith("<tool_call>")
    assert forced_result.passed is True, forced_result.failure_detail
    assert wrong.passed is False and "get_weather" in wrong.failure_detail and "get_time" in wrong.failure_detail


def test_an_answer_without_a_tool_call_fails_with_its_reason(tmp_path, server, monkeypatch):
    local(monkeypatch, server)
    rows = [{"id": "free", "input": "Say hello to Ann.", "tools": [WEATHER], "expected": {"name": "get_weather"}}]
    result = gate(tmp_path, rows, "[tool_call]", max_new_tokens=12).outcomes[0].baseline.results[0]
    assert result.passed is False and result.failure_detail.startswith("tool_call: no tool call")


def test_a_conversation_reaches_the_server_as_the_model_chat_template_writes_it(tmp_path, server, monkeypatch):
    """The server renders earlier assistant turns with the model's own template: the prompt it counts is the one
    transformers renders from the same model's template, token for token."""
    from transformers import AutoTokenizer

    from fixtures.smollm2 import ensure_model

    local(monkeypatch, server)
    chat = [{"role": "user", "content": "My order number is 1234."}, {"role": "assistant", "content": "Thanks, noted."},
            {"role": "user", "content": "Which order number did I give?"}]
    result = gate(tmp_path, [{"id": "c", "messages": chat}], "[{regex: '.'}]", 4).outcomes[0].baseline.results[0]
    tok = AutoTokenizer.from_pretrained(ensure_model())
    rendered = tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    assert "<|im_start|>assistant\nThanks, noted.<|im_end|>" in rendered
    assert result.output.tokens_in == len(tok(rendered, add_special_tokens=False)["input_ids"])
