"""The yardstick of the eval benchmark: the batched greedy loop a user writes by hand with transformers.

    python -m tests.bench.hand_loop PROMPTS.jsonl MODEL --batch 16 --out outputs.jsonl

PROMPTS.jsonl holds one chat per line ({"id", "messages", "max_new_tokens"}). The loop renders each with
the tokenizer's chat template, sorts by length, left-pads, and calls `generate` greedily in float32, as
the transformers documentation shows; `--batch 1` is the same loop one case at a time. It prints the
seconds spent generating; the benchmark times the whole process.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompts", type=Path)
    parser.add_argument("model")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = [json.loads(line) for line in args.prompts.read_text().splitlines() if line.strip()]
    tok = AutoTokenizer.from_pretrained(args.model)
    tok.pad_token = tok.pad_token or tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    started = time.perf_counter()
    texts = [tok.apply_chat_template(r["messages"], add_generation_prompt=True, tokenize=False) for r in rows]
    order = sorted(range(len(rows)), key=lambda i: -len(tok(texts[i], add_special_tokens=False)["input_ids"]))
    outputs: dict[str, str] = {}
    with torch.inference_mode():
        for start in range(0, len(order), args.batch):
            batch = order[start : start + args.batch]
            enc = tok([texts[i] for i in batch], return_tensors="pt", padding=True, padding_side="left",
                      add_special_tokens=False)
            out = model.generate(**enc, max_new_tokens=rows[batch[0]]["max_new_tokens"], do_sample=False,
                                 pad_token_id=tok.pad_token_id)
            for i, text in zip(batch, tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)):
                outputs[rows[i]["id"]] = text
    print(f"generation {time.perf_counter() - started:.2f} s")
    if args.out:
        args.out.write_text("".join(json.dumps({"id": k, "output": v}) + "\n" for k, v in outputs.items()))


if __name__ == "__main__":
    main()
