"""Run a recipe: TRL's SFTTrainer or DPOTrainer over PEFT (and bitsandbytes for QLoRA).

We own the recipe, the checks before training, the provenance and the link to the gate; TRL,
PEFT and bitsandbytes do the training. The output directory holds the best adapter by eval loss
(safetensors + adapter_config.json), the tokenizer, the checkpoints and the manifest ftgate.json.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .config import Recipe, bf16_supported
from .data import DataError, load_rows
from ..cache import sha256_file
from .manifest import write_manifest


@dataclass(frozen=True)
class TrainResult:
    output_dir: Path
    manifest: dict[str, Any]
    main_process: bool = True  # False on the other ranks of a multi-process run


def _load_tokenizer(recipe: Recipe) -> Any:
    from transformers import AutoTokenizer

    base = recipe.model.base
    tok = AutoTokenizer.from_pretrained(base)
    if recipe.model.chat_template:
        tok.chat_template = Path(recipe.model.chat_template).read_text(encoding="utf-8")
    if not tok.chat_template:
        raise ConfigError(
            f"the tokenizer in {base} has no chat template, so training and serving could format chats "
            "differently; set model.chat_template: path/to/template.jinja in the recipe"
        )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _load_model(recipe: Recipe, device: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"use_safetensors": True}
    if recipe.model.load_in_4bit:
        from transformers import BitsAndBytesConfig

        compute = recipe.model.compute_dtype
        if compute == "auto":
            compute = "bfloat16" if bf16_supported(device) else "float32"
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=recipe.model.quant_type,
            bnb_4bit_use_double_quant=recipe.model.double_quant,
            bnb_4bit_compute_dtype=getattr(torch, compute),
        )
        kwargs["device_map"] = {"": 0} if device == "cuda" else {"": "cpu"}
    elif device == "cuda" and bf16_supported(device):
        kwargs["dtype"] = torch.bfloat16
    return AutoModelForCausalLM.from_pretrained(recipe.model.base, **kwargs)


def _datasets(recipe: Recipe) -> tuple[Any, Any, list[int], dict[str, Any]]:
    from datasets import Dataset

    expect = "dpo" if recipe.method == "dpo" else "sft"
    train_path = Path(recipe.data.train)
    rows, lines, fmt = load_rows(train_path, expect)
    info: dict[str, Any] = {"train": {"path": str(train_path), "sha256": sha256_file(train_path), "rows": len(rows), "format": fmt}}
    if recipe.data.eval:
        eval_path = Path(recipe.data.eval)
        eval_rows, _, _ = load_rows(eval_path, expect)
        info["eval"] = {"path": str(eval_path), "sha256": sha256_file(eval_path), "rows": len(eval_rows)}
        return Dataset.from_list(rows), Dataset.from_list(eval_rows), lines, info
    if recipe.data.eval_fraction == 0:
        return Dataset.from_list(rows), None, lines, info
    full = Dataset.from_list([{**r, "_line": ln} for r, ln in zip(rows, lines)])
    split = full.train_test_split(test_size=recipe.data.eval_fraction, seed=recipe.training.seed)
    train, held = split["train"], split["test"]
    info["eval"] = {"split_from": "train", "fraction": recipe.data.eval_fraction, "rows": len(held)}
    lines = list(train["_line"])
    return train.remove_columns("_line"), held.remove_columns("_line"), lines, info


def _args(recipe: Recipe, device: str, eval_enabled: bool) -> dict[str, Any]:
    import os

    t = recipe.training
    world = int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun / accelerate launch before init
    accumulation = max(1, t.effective_batch_size // (t.per_device_batch_size * world))
    optim = t.optim
    if optim == "auto":
        optim = "paged_adamw_8bit" if device == "cuda" and recipe.model.load_in_4bit else "adamw_torch"
    bf16 = bf16_supported(device) if t.bf16 == "auto" else bool(t.bf16)
    args: dict[str, Any] = {
        "output_dir": recipe.output_dir,
        "learning_rate": t.learning_rate,
        "lr_scheduler_type": t.lr_scheduler,
        "warmup_steps": t.warmup_ratio,  # a float below 1 is a ratio of the total steps
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.max_grad_norm,
        "num_train_epochs": t.epochs,
        "per_device_train_batch_size": t.per_device_batch_size,
        "per_device_eval_batch_size": t.per_device_batch_size,
        "gradient_accumulation_steps": accumulation,
        "gradient_checkpointing": t.gradient_checkpointing,
        "optim": optim,
        "bf16": bf16,
        "fp16": False,
        "seed": t.seed,
        "data_seed": t.seed,
        "report_to": t.report_to or "none",
        "logging_steps": t.logging_steps,
        "save_strategy": "epoch",
        "save_total_limit": t.save_total_limit,
        "use_cpu": device == "cpu",
        # length grouping reads `input_ids`; DPO rows hold prompt/chosen/rejected ids instead
        "train_sampling_strategy": "group_by_length" if t.group_by_length and not t.packing and recipe.method == "sft" else "random",
        "max_length": recipe.data.max_length,
    }
    if eval_enabled:
        args.update(eval_strategy="epoch", load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False)
    return args


def check_rows(tokenizer: Any, rows: list[dict[str, Any]], lines: list[int], source: str, max_length: int) -> dict[str, Any]:
    """Before training: every row must train tokens, including the end-of-turn token, within max_length.

    The chat template renders prompt and prompt+completion; the completion's tokens are the ones
    trained. A row whose completion renders to nothing, or whose EOS is missing or cut off, is an
    error naming its line (TRL would drop such rows silently, or train a model that never stops).
    """
    eos = tokenizer.eos_token_id
    counts = []
    for row, line in zip(rows, lines):
        where = f"{source}:{line}"
        prompt = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
        if not full.startswith(prompt):
            raise DataError(
                f"{where}: the chat template renders the prompt differently inside the full chat, so the answer "
                "span cannot be found; use a prefix-preserving template (model.chat_template)"
            )
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        trained = full_ids[len(p_ids):]
        if not trained:
            raise DataError(f"{where}: no token of this row would be trained (empty answer span); the row teaches nothing")
        if len(full_ids) > max_length:
            raise DataError(
                f"{where}: {len(full_ids)} tokens, over data.max_length={max_length}: truncation would cut the "
                "answer and its end-of-turn token; raise max_length or shorten the row"
            )
        if eos not in trained:
            raise DataError(
                f"{where}: the end-of-turn token {tokenizer.eos_token!r} is not in the trained answer span, so the "
                "model would never learn to stop; make the template end assistant turns with the EOS token"
            )
        counts.append(len(trained))
    return {"rows": len(counts), "min_trained_tokens": min(counts), "mean_trained_tokens": round(sum(counts) / len(counts), 1)}


def _last_checkpoint(output_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None


def train(recipe: Recipe, *, resume: bool = True) -> TrainResult:
    """Train the recipe's adapter; resume from the last checkpoint in output_dir when there is one."""
    import os

    import torch
    from peft import LoraConfig
    from transformers import set_seed

    started = time.time()
    device = recipe.resolved_device()
    set_seed(recipe.training.seed)
    train_ds, eval_ds, lines, data_info = _datasets(recipe)
    tokenizer = _load_tokenizer(recipe)
    if recipe.method == "sft":
        token_check = check_rows(tokenizer, list(train_ds), lines, recipe.data.train, recipe.data.max_length)
    else:
        token_check = {"checked": "by DPOTrainer (prompt/chosen/rejected masks)"}
    model = _load_model(recipe, device)
    peft_config = LoraConfig(
        r=recipe.lora.r,
        lora_alpha=recipe.lora.alpha,
        lora_dropout=recipe.lora.dropout,
        target_modules=recipe.lora.target_modules,
        layers_to_transform=recipe.lora.layers,
        task_type="CAUSAL_LM",
    )
    args = _args(recipe, device, eval_ds is not None)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if recipe.method == "sft":
        from trl import SFTConfig, SFTTrainer

        config = SFTConfig(**args, completion_only_loss=True, packing=recipe.training.packing)
        trainer = SFTTrainer(model=model, args=config, train_dataset=train_ds, eval_dataset=eval_ds,
                             processing_class=tokenizer, peft_config=peft_config)
    else:
        from trl import DPOConfig, DPOTrainer

        config = DPOConfig(**args, beta=recipe.dpo.beta, loss_type=[recipe.dpo.loss_type])
        # ref_model=None with a PEFT adapter: the reference is the same base with the adapter disabled
        trainer = DPOTrainer(model=model, ref_model=None, args=config, train_dataset=train_ds, eval_dataset=eval_ds,
                             processing_class=tokenizer, peft_config=peft_config)

    output_dir = Path(recipe.output_dir)
    checkpoint = _last_checkpoint(output_dir) if resume else None
    result = trainer.train(resume_from_checkpoint=checkpoint)
    metrics = dict(result.metrics)
    if eval_ds is not None:
        metrics.update(trainer.evaluate())
    trainer.save_model(str(output_dir))  # the best checkpoint's adapter when eval is on; rank 0 writes
    if not trainer.is_world_process_zero():
        return TrainResult(output_dir, {}, main_process=False)
    tokenizer.save_pretrained(str(output_dir))

    wall = time.time() - started
    gpus = int(os.environ.get("WORLD_SIZE", "1")) if device == "cuda" else 0
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else _cpu_peak_rss()
    manifest = write_manifest(
        output_dir,
        recipe=recipe,
        device=device,
        data=data_info,
        metrics=metrics,
        wall_s=wall,
        gpu_hours=wall * gpus / 3600,
        peak_memory_bytes=peak,
        chat_template_sha256=hashlib.sha256(tokenizer.chat_template.encode()).hexdigest(),
        checks={"trained_tokens": token_check, "resumed_from": checkpoint},
        best_checkpoint=trainer.state.best_model_checkpoint,
        log_history=trainer.state.log_history,
    )
    return TrainResult(output_dir, manifest)


def _cpu_peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
