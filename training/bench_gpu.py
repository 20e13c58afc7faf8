"""Training throughput on a GPU: our recipe vs plain TRL defaults, LoRA and QLoRA, side by side.

    python training/bench_gpu.py                 # ~1B and ~8B Llama-architecture models, random weights
    python training/bench_gpu.py --sizes 1b      # one size
    python training/bench_gpu.py --tiny --steps 3   # a smoke run on the CPU (checks the script, not speed)

Models are built from a LlamaConfig with random weights (nothing downloaded); the data are
synthetic chats of varied length (32-512 tokens), the same for every row of the table. Each run
trains `--steps` optimizer steps after `--warmup` steps, and reports tokens/s (non-pad tokens),
peak GPU memory and MFU. MFU counts LoRA at 4·N FLOPs per token (frozen weights get no weight
gradient) and full fine-tuning at 6·N; gradient-checkpointing recompute (2·N more) is reported
as a separate HFU column, not folded into MFU.

"TRL default" is SFTConfig() as shipped (padding, random batches, its default precision and
checkpointing) with the same LoRA and batch size. "ours" is the bundled recipe: bf16, length-
grouped batches (or padding-free packing when flash-attn is installed), paged 8-bit AdamW for
QLoRA, gradient checkpointing only where memory needs it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixtures.tiny_models import build_tokenizer  # noqa: E402

SIZES = {  # Llama-3-shaped configs
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=1024),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8, vocab_size=128256),
    "8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, vocab_size=128256),
}
PEAK_TFLOPS_BF16 = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}


def build_model(size: str, out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if (out / "config.json").exists():
        return out
    torch.manual_seed(seed)
    config = LlamaConfig(**SIZES[size], max_position_embeddings=4096, tie_word_embeddings=False)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = LlamaForCausalLM(config).to(torch.bfloat16 if torch.cuda.is_available() else torch.float32)
    model.save_pretrained(str(out), safe_serialization=True)
    del model
    build_tokenizer(out)  # a small local tokenizer: the rows are token ids already, it supplies the pad id
    return out


def synthetic_rows(n: int, vocab: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        length = rng.choice([32, 64, 128, 256, 512])
        ids = [rng.randrange(10, vocab) for _ in range(length)]
        half = length // 2
        rows.append({"input_ids": ids, "labels": [-100] * half + ids[half:]})  # loss on the answer half
    return rows


def run_one(model_dir: Path, size: str, quantized: bool, recipe: str, args: argparse.Namespace) -> dict:
    import importlib.util

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    cuda = torch.cuda.is_available()
    kwargs: dict = {}
    if quantized:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if cuda else torch.float32,
        )
    elif cuda:
        kwargs["dtype"] = torch.bfloat16
    flash = cuda and importlib.util.find_spec("flash_attn") is not None
    if recipe == "ours" and flash:
        kwargs["attn_implementation"] = "flash_attention_2"
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), **kwargs)
    n_params = sum(p.numel() for p in model.parameters()) * (2 if quantized else 1)  # 4-bit packs two per byte
    vocab = model.config.vocab_size
    rows = synthetic_rows(args.batch * (args.steps + args.warmup) * 2, vocab)
    common = dict(output_dir=str(args.workdir / f"{size}-{recipe}-{quantized}"), max_steps=args.steps + args.warmup,
                  per_device_train_batch_size=args.batch, learning_rate=2e-4, report_to="none", save_strategy="no",
                  logging_steps=10**9, use_cpu=not cuda, dataset_kwargs={"skip_prepare_dataset": True},
                  remove_unused_columns=False, max_length=None, disable_tqdm=True)
    if recipe == "trl-default":
        config = SFTConfig(**common, **({} if cuda else {"bf16": False}))
    else:
        big = size == "8b"
        config = SFTConfig(
            **common, bf16=cuda, gradient_checkpointing=big, lr_scheduler_type="cosine", warmup_steps=0.03,
            optim="paged_adamw_8bit" if (quantized and cuda) else "adamw_torch_fused" if cuda else "adamw_torch",
            padding_free=flash, train_sampling_strategy="random" if flash else "group_by_length",
        )
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")

    class Clock(TrainerCallback):
        tokens = 0
        started = 0.0

        def on_step_begin(self, a, state, control, **kw):
            if state.global_step == args.warmup:
                if cuda:
                    torch.cuda.synchronize()
                Clock.started = time.perf_counter()

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                         peft_config=lora, callbacks=[Clock()])
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - Clock.started
    consumed = args.steps * args.batch
    mean_len = sum(len(r["input_ids"]) for r in rows) / len(rows)
    tokens = mean_len * consumed  # non-pad tokens in the timed steps (rows are i.i.d., so the mean is exact in expectation)
    tps = tokens / elapsed
    name = torch.cuda.get_device_name() if cuda else "cpu"
    peak = next((v for k, v in PEAK_TFLOPS_BF16.items() if k in name), None)
    ckpt = bool(config.gradient_checkpointing)
    mfu = 4 * n_params * tps / (peak * 1e12) if peak else None
    hfu = (6 if ckpt else 4) * n_params * tps / (peak * 1e12) if peak else None
    result = {
        "size": size, "quant": "QLoRA" if quantized else "LoRA", "recipe": recipe, "tokens_per_s": tps,
        "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else None, "mfu": mfu, "hfu": hfu,
        "grad_ckpt": ckpt, "device": name, "params": n_params,
    }
    del trainer, model
    if cuda:
        torch.cuda.empty_cache()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["1b", "8b"], choices=list(SIZES))
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run with a tiny model")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ftgate-bench"))
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    sizes = ["tiny"] if args.tiny else args.sizes
    results = []
    for size in sizes:
        model_dir = build_model(size, args.workdir / f"llama-{size}")
        for quantized in (False, True):
            for recipe in ("trl-default", "ours"):
                try:
                    row = run_one(model_dir, size, quantized, recipe, args)
                except Exception as exc:  # an OOM or a library error costs one row, not the table
                    row = {"size": size, "quant": "QLoRA" if quantized else "LoRA", "recipe": recipe,
                           "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
                    _release()
                results.append(row)
                print("row:", json.dumps(row), flush=True)
                if args.json:  # written after every row, so a run cut short still leaves what it measured
                    args.json.write_text(json.dumps(results, indent=1))
    print(table(results))


def _release() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _fmt(value: float | None, spec: str) -> str:
    return "—".rjust(int(spec.split(".")[0])) if value is None else format(value, spec)


def table(results: list[dict]) -> str:
    lines = [f"{'size':<5} {'method':<6} {'recipe':<12} {'tokens/s':>10} {'peak GB':>8} {'MFU':>6} {'HFU':>6}  vs TRL"]
    for r in results:
        if "error" in r:
            lines.append(f"{r['size']:<5} {r['quant']:<6} {r['recipe']:<12} failed: {r['error'][:80]}")
            continue
        base = next((x for x in results if x["size"] == r["size"] and x["quant"] == r["quant"]
                     and x["recipe"] == "trl-default" and "error" not in x), None)
        ratio = f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x" if base else "—"
        lines.append(f"{r['size']:<5} {r['quant']:<6} {r['recipe']:<12} {r['tokens_per_s']:>10.0f} "
                     f"{_fmt(r['peak_mem_gb'], '8.2f')} {_fmt(r['mfu'], '6.1%')} {_fmt(r['hfu'], '6.1%')}  {ratio}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
