"""Generation throughput: the plugin vs a hand-written batched loop vs one case at a time.

    python -m tests.bench.bench_generation            # prints a table
    python -m tests.bench.bench_generation --cases 128 --repeat 3

All three run in one process on the same tiny model and prompts, interleaved, so the ratios
are measured side by side. A fourth row times a warm (fully cached) rerun of 1,000 cases
through run_gate, which is what a second CI run pays.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def build(tmp: Path, n_cases: int, max_new_tokens: int) -> tuple[Path, Path]:
    from fixtures.tiny_models import build_tiny_llama

    base = build_tiny_llama(tmp / "base", hidden_size=64, layers=2)
    words = "route the ticket about billing shipping refund account password order late".split()
    with (tmp / "cases.jsonl").open("w") as fh:
        for i in range(n_cases):
            text = " ".join(words[(i + j) % len(words)] for j in range(3 + (i * 7) % 40))
            fh.write(json.dumps({"id": f"c{i}", "input": text}) + "\n")
    (tmp / "s.yaml").write_text(
        f"kind: format\ncases: cases.jsonl\nprompt: {{system: 'Answer in JSON.'}}\n"
        f"generate: {{max_new_tokens: {max_new_tokens}}}\nscorers: [json_valid]\n"
    )
    return base, tmp / "s.yaml"


def hand_batched(base: Path, suite, batch_size: int) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForCausalLM.from_pretrained(str(base)).eval()
    started = time.perf_counter()  # from chats to texts, as in the other two
    prompts = [tok.apply_chat_template(list(suite.prompts["baseline"].render(c)), add_generation_prompt=True, tokenize=False)
               for c in suite.cases]
    with torch.inference_mode():
        for i in range(0, len(prompts), batch_size):
            enc = tok(prompts[i : i + batch_size], return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
            out = model.generate(**enc, max_new_tokens=suite.params.max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
            tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return time.perf_counter() - started


def one_at_a_time(base: Path, suite) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForCausalLM.from_pretrained(str(base)).eval()
    started = time.perf_counter()
    with torch.inference_mode():
        for c in suite.cases:
            prompt = tok.apply_chat_template(list(suite.prompts["baseline"].render(c)), add_generation_prompt=True, tokenize=False)
            enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
            out = model.generate(**enc, max_new_tokens=suite.params.max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
            tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return time.perf_counter() - started


def plugin(base: Path, suite, batch_size: int) -> float:
    # the model load is excluded, as in the two loops above: warm it with a one-case run first
    from pytest_ftgate.hf import HFEngine

    from pytest_ftgate import RunConfig, SubjectOptions, run_gate

    loaded: dict = {}
    original = HFEngine.load

    def timed_load(self):
        t = time.perf_counter()
        original(self)
        loaded["s"] = loaded.get("s", 0.0) + time.perf_counter() - t

    HFEngine.load = timed_load
    try:
        started = time.perf_counter()
        run_gate([suite], RunConfig(baseline=str(base), cache_dir=None, progress=False,
                                    subject_options=SubjectOptions(batch_size=batch_size)))
        return time.perf_counter() - started - loaded.get("s", 0.0)
    finally:
        HFEngine.load = original


def warm_rerun(base: Path, tmp: Path, n: int) -> float:
    """A fully cached gate run over n cases (the cache filled first)."""
    from pytest_ftgate import RunConfig, load_suite, run_gate

    with (tmp / "warm.jsonl").open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"w{i}", "input": f"case number {i}"}) + "\n")
    (tmp / "warm.yaml").write_text("kind: format\ncases: warm.jsonl\ngenerate: {max_new_tokens: 2}\nscorers: [json_valid]\n")
    suite = load_suite(tmp / "warm.yaml")
    config = RunConfig(baseline=str(base), cache_dir=tmp / "cache", progress=False)
    run_gate([suite], config)
    started = time.perf_counter()
    run_gate([load_suite(tmp / "warm.yaml")], config)
    return time.perf_counter() - started


def warm_pytest(base: Path, tmp: Path) -> tuple[float, float]:
    """Wall time of a warm `pytest --baseline` over the cached suite, and of a trivial pytest run."""
    import subprocess
    import sys

    (tmp / "suites").mkdir(exist_ok=True)
    for name in ("warm.yaml", "warm.jsonl"):
        (tmp / "suites" / name).write_text((tmp / name).read_text())
    (tmp / "test_trivial.py").write_text("def test_x():\n    pass\n")
    common = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    gate = common + ["suites", f"--baseline={base}", f"--ftgate-cache-dir={tmp / 'cache'}", "--ftgate-fail", "format:0%"]

    def timed(cmd: list[str]) -> float:
        started = time.perf_counter()
        subprocess.run(cmd, cwd=tmp, check=True, capture_output=True)
        return time.perf_counter() - started

    timed(gate)  # fills the file-hash memo as well
    return min(timed(gate) for _ in range(3)), min(timed(common + ["test_trivial.py"]) for _ in range(3))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warm-cases", type=int, default=1000)
    args = parser.parse_args(argv)

    import torch

    from pytest_ftgate import load_suite

    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        base, suite_path = build(tmp, args.cases, args.max_new_tokens)
        suite = load_suite(suite_path)
        times: dict[str, list[float]] = {"plugin": [], "hand-batched": [], "one-at-a-time": []}
        for _ in range(args.repeat):  # interleaved, so machine noise hits all three alike
            times["plugin"].append(plugin(base, suite, args.batch_size))
            times["hand-batched"].append(hand_batched(base, suite, args.batch_size))
            times["one-at-a-time"].append(one_at_a_time(base, suite))
        warm = warm_rerun(base, tmp, args.warm_cases)
        warm_gate, trivial = warm_pytest(base, tmp)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.cases} cases, {args.max_new_tokens} new tokens, batch {args.batch_size}, median of {args.repeat}")
    print(f"{'method':<16} {'seconds':>9} {'cases/s':>9} {'plugin speed vs this':>22}")
    for k, v in med.items():
        print(f"{k:<16} {v:>9.3f} {args.cases / v:>9.1f} {v / med['plugin']:>21.2f}x")
    print(f"warm rerun of {args.warm_cases} cached cases through run_gate: {warm:.3f} s")
    print(f"warm `pytest --baseline` over them: {warm_gate:.2f} s; a trivial pytest run: {trivial:.2f} s; "
          f"beyond start-up: {warm_gate - trivial:.2f} s")


if __name__ == "__main__":
    main()
