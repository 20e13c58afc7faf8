"""Tools and conversations reach a local model as its chat template writes them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_ftgate import GenerationError, RunConfig, load_suite, run_gate
from pytest_ftgate.subjects.hf.engine import HFEngine
from tests.conftest import write

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}
# a Hermes-style template: the tools in a system block, then the chat (as Qwen2.5 and SmolLM3 write it)
TOOLS_TEMPLATE = (
    "{% if tools %}{{ '<|im_start|>system\\n# Tools\\n' }}{% for tool in tools %}{{ tool | tojson }}{{ '\\n' }}"
    "{% endfor %}{{ 'Call one as <tool_call>{\"name\": ..., \"arguments\": ...}</tool_call><|im_end|>\\n' }}{% endif %}"
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def prompts_seen(monkeypatch) -> list[str]:
    seen: list[str] = []
    original = HFEngine._render

    def spy(self, request):
        text = original(self, request)
        seen.append(text)
        return text

    monkeypatch.setattr(HFEngine, "_render", spy)
    return seen


def tool_suite(tmp_path: Path, **case) -> Path:
    row = {"id": "w", "input": "What is the weather in Paris?", "tools": [WEATHER],
           "expected": {"name": "get_weather", "arguments": {"city": "Paris"}}, **case}
    return write(tmp_path / "tools.yaml", f"kind: format\ncases: [{json.dumps(row)}]\n"
                                          "generate: {max_new_tokens: 4}\nscorers: [tool_call]\n")


def with_template(tiny_base: Path, tmp_path: Path, template: str) -> Path:
    model = tmp_path / "model"
    shutil.copytree(tiny_base, model)
    (model / "chat_template.jinja").write_text(template)
    return model


def test_a_local_model_gets_the_tools_through_its_chat_template(tmp_path, tiny_base, monkeypatch):
    seen = prompts_seen(monkeypatch)
    model = with_template(tiny_base, tmp_path, TOOLS_TEMPLATE)
    run = run_gate([load_suite(tool_suite(tmp_path))], RunConfig(baseline=str(model), cache_dir=None, progress=False,
                                                                  suites_dir=tmp_path))
    assert seen and json.dumps(WEATHER["function"]["name"]) in seen[0] and '"required": ["city"]' in seen[0]
    result = run.outcomes[0].baseline.results[0]
    assert result.passed is False  # a random-weight model calls no tool: the scorer says why
    assert result.scores[0].detail.startswith(("no tool call", "unparseable tool call"))


def test_a_chat_template_that_ignores_tools_is_an_error_not_an_answer_without_them(tmp_path, tiny_base):
    with pytest.raises(GenerationError, match="does not render tools"):
        run_gate([load_suite(tool_suite(tmp_path))], RunConfig(baseline=str(tiny_base), cache_dir=None, progress=False,
                                                                suites_dir=tmp_path))


def test_a_local_model_cannot_be_forced_to_call_a_tool(tmp_path, tiny_base):
    model = with_template(tiny_base, tmp_path, TOOLS_TEMPLATE)
    choice = {"type": "function", "function": {"name": "get_weather"}}
    with pytest.raises(GenerationError, match="a local model cannot be made to call a tool"):
        run_gate([load_suite(tool_suite(tmp_path, tool_choice=choice))],
                 RunConfig(baseline=str(model), cache_dir=None, progress=False, suites_dir=tmp_path))


def test_a_tool_choice_must_name_one_of_the_case_tools(tmp_path):
    from pytest_ftgate import SuiteError

    with pytest.raises(SuiteError, match="naming one of the case's tools"):
        load_suite(tool_suite(tmp_path, tool_choice={"type": "function", "function": {"name": "get_time"}}))


def test_a_conversation_reaches_the_model_with_its_earlier_turns_as_the_template_writes_them(
        tmp_path, tiny_base, monkeypatch):
    seen = prompts_seen(monkeypatch)
    chat = [{"role": "user", "content": "My order is 1234."}, {"role": "assistant", "content": "Thanks, noted."},
            {"role": "user", "content": "Which order did I give?"}]
    path = write(tmp_path / "chat.yaml", f"kind: format\ncases: [{json.dumps({'id': 'c', 'messages': chat})}]\n"
                                         "generate: {max_new_tokens: 2}\nscorers: [{regex: '.'}]\n")
    run_gate([load_suite(path)], RunConfig(baseline=str(tiny_base), cache_dir=None, progress=False, suites_dir=tmp_path))
    assert seen == [
        "<|im_start|>user\nMy order is 1234.<|im_end|>\n<|im_start|>assistant\nThanks, noted.<|im_end|>\n"
        "<|im_start|>user\nWhich order did I give?<|im_end|>\n<|im_start|>assistant\n"
    ]


def test_the_vllm_engine_checks_the_template_shows_the_tools_before_the_server_generates(tmp_path, tiny_base):
    from pytest_ftgate.settings.config import SubjectOptions
    from pytest_ftgate.stores.cache import Cache
    from pytest_ftgate.subjects import Job, Resolver
    from pytest_ftgate.types import Case, GenerationParams, Request

    class Server:  # stands in for the vLLM server: it must not be asked anything
        asked: list = []

        def generate(self, requests, *args):
            self.asked.extend(requests)

    subject = Resolver(SubjectOptions(), Cache(None)).build(str(tiny_base), "baseline")
    subject.engine.server = Server()
    case = Case("w", ({"role": "user", "content": "Weather in Paris?"},), tools=(WEATHER,),
                tool_choice={"type": "function", "function": {"name": "get_weather"}})
    job = Job("s", case, Request(case.messages, GenerationParams(), case.tools, case.tool_choice))
    with pytest.raises(GenerationError, match="does not render tools"):
        subject.run([job], lambda batch: None)
    assert Server.asked == []
    subject.engine.server = None
