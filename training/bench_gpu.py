"""Training throughput on a GPU: our recipe vs plain TRL defaults, LoRA and QLoRA, side by side.

    python training/bench_gpu.py                 # ~1B and ~8B Llama-architecture models, random weights
    python training/bench_gpu.py --sizes 1b      # one size
    python training/bench_gpu.py --tiny --steps 3   # a smoke run on the CPU (checks the script, not speed)

Models are built from a LlamaConfig with random weights (nothing downloaded); the data are
synthetic chats of varied length (32-512 tokens), the same for every row of the table. Each run
trains `--steps` optimizer steps after `--warmup` steps, and reports tokens/s, peak GPU memory and
MFU. Tokens are the non-pad tokens of the batches each timed step actually trained on (counted from
their attention masks, or from the packed rows under padding-free training), not the data set's mean
row length: length grouping makes the timed batches differ from the mean.

FLOPs are those of what is computed, per trained token (`step_flops`): the frozen matrix multiplies
(every linear layer and the LM head at its logical size: a 4-bit weight counts once, though it is
stored two to a byte; the embedding lookup is no multiply) at 4 FLOPs per weight, forward and the
input gradient but no weight gradient; the LoRA matrices at 6; attention's scores and weighted sum
over each row's own length, forward and backward (3 times the forward's 4·layers·width·length).
MFU divides those by the peak; gradient-checkpointing recompute (one more forward) goes only into
the separate HFU column.

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
        started = 0.0

        def on_step_begin(self, a, state, control, **kw):
            if state.global_step == args.warmup:
                if cuda:
                    torch.cuda.synchronize()
                Clock.started = time.perf_counter()

    class Counted(SFTTrainer):
        """Counts the non-pad tokens, and each row's length, of every batch trained on after the warmup."""

        lengths: list[int] = []

        def training_step(self, model, inputs, *rest, **kw):
            if self.state.global_step >= args.warmup:
                Counted.lengths.extend(row_lengths(inputs))
            return super().training_step(model, inputs, *rest, **kw)

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    trainer = Counted(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                      peft_config=lora, callbacks=[Clock()])
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - Clock.started
    tokens = sum(Counted.lengths)
    tps = tokens / elapsed
    name = torch.cuda.get_device_name() if cuda else "cpu"
    peak = next((v for k, v in PEAK_TFLOPS_BF16.items() if k in name), None)
    ckpt = bool(config.gradient_checkpointing)
    flops = step_flops(trainer.model, Counted.lengths)
    per_s = {k: v / elapsed for k, v in flops.items()}
    mfu = per_s["model"] / (peak * 1e12) if peak else None
    hfu = (per_s["model"] + (per_s["recompute"] if ckpt else 0.0)) / (peak * 1e12) if peak else None
    result = {
        "size": size, "quant": "QLoRA" if quantized else "LoRA", "recipe": recipe, "tokens_per_s": tps,
        "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else None, "mfu": mfu, "hfu": hfu,
        "grad_ckpt": ckpt, "device": name, "tokens": tokens, "seconds": elapsed,
        "matmul_params": flops["frozen_params"], "lora_params": flops["lora_params"],
        "model_flops": flops["model"], "counts": "v2",
    }
    del trainer, model
    if cuda:
        torch.cuda.empty_cache()
    return result


def row_lengths(inputs: dict) -> list[int]:
    """The non-pad length of each row of a training batch: from the attention mask; under padding-free
    training (one packed row, no mask) from where the position ids restart at 0."""
    if inputs.get("attention_mask") is not None:
        return [int(n) for n in inputs["attention_mask"].sum(dim=-1).tolist()]
    positions = inputs.get("position_ids")
    if positions is None:
        rows, length = inputs["input_ids"].shape
        return [int(length)] * int(rows)
    lengths: list[int] = []
    for row in positions.tolist():
        for p in row:
            if p == 0:
                lengths.append(0)
            lengths[-1] += 1
    return lengths


def step_flops(model, lengths: list[int]) -> dict[str, float]:
    """The FLOPs of training on rows of these lengths (see the module's docstring), and the parameter
    counts behind them: `model` (what MFU counts) and `recompute` (what checkpointing adds)."""
    import torch

    frozen = lora = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Embedding) or "lora_" in name:
            continue
        if isinstance(module, torch.nn.Linear):  # bitsandbytes' Linear4bit too; PEFT's wrappers are not Linear
            frozen += module.in_features * module.out_features  # the logical size, whatever the storage
    for name, p in model.named_parameters():
        if p.requires_grad and "lora_" in name:
            lora += p.numel()
    config = model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    attention_width = config.num_attention_heads * head_dim
    tokens = sum(lengths)
    # per row: QK^T and the weighted sum, 2·2·width FLOPs per query and key position (the full square, as SDPA
    # with a causal mask computes it), in every layer
    attention_forward = sum(4 * config.num_hidden_layers * attention_width * n * n for n in lengths)
    forward = 2 * (frozen + lora) * tokens + attention_forward
    model_flops = 4 * frozen * tokens + 6 * lora * tokens + 3 * attention_forward
    return {"model": float(model_flops), "recompute": float(forward), "frozen_params": frozen, "lora_params": lora}


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
