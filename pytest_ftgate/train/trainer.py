"""Run a recipe: TRL's SFTTrainer or DPOTrainer over PEFT (and bitsandbytes for QLoRA).

We own the recipe, the checks before training, the provenance and the link to the gate; TRL,
PEFT and bitsandbytes do the training. The output directory holds the best adapter by eval loss
(safetensors + adapter_config.json), the tokenizer, the checkpoints and the manifest ftgate.json.

Rerunning a recipe resumes from its last checkpoint. When that checkpoint is already the end of
the run, nothing is trained and the adapter and manifest are left as they are; when a partial run
is resumed, the manifest's wall time and GPU-hours cover every run that led to the weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError, SubjectError, TrainConfigError
from ..stores.manifest import BaseModel, Manifest, base_fingerprint, read_manifest, write_manifest
from ..machine.quiet import library_deprecations, quiet_kernels_notice
from ..stores.cache import sha256_file
from ..subjects.hf.hub import resolve_model_dir
from .config import Recipe, bf16_supported
from ..files.training import load_rows
from .lineage import (Cost, build_manifest, device_info, extend_lineage, read_cost, read_lineage, write_cost,
                       write_lineage)


@dataclass(frozen=True)
class TrainResult:
    output_dir: Path
    manifest: Manifest | None  # None on the other ranks of a multi-process run
    main_process: bool = True  # False on the other ranks of a multi-process run
    steps_trained: int = 0  # optimizer steps this call ran; 0 when the run had already finished
    resumed_from: str | None = None  # the checkpoint this call continued from


def resolve_base(recipe: Recipe) -> tuple[Path, str]:
    """Where to load the base from, and the name the adapter records for it (adapter_config.json).

    A local directory is recorded by its absolute path, so the adapter loads from any directory; a
    Hub id stays the id, as users expect, and is loaded from its snapshot in the HF cache.
    """
    name = recipe.model.base
    local = Path(name).expanduser()
    if local.is_dir():
        return local.resolve(), str(local.resolve())
    hint = "Set model.base (in the recipe or with --set model.base=DIR) to a local model directory."
    try:
        return resolve_model_dir(name, what="model.base", hint=hint), name
    except SubjectError as exc:
        raise TrainConfigError(f"{recipe.source}: {exc}") from None


def quantized_device_map(device: str, local_rank: int, visible_gpus: int) -> dict[str, int | str]:
    """Where a 4-bit base goes: whole on this process's own GPU. Under torchrun or `accelerate
    launch` each process has a local rank; like accelerate, wrap it over the GPUs it can see (a
    launcher may give each process one GPU). Device 0 for every rank would stack all copies there."""
    if device != "cuda":
        return {"": "cpu"}
    return {"": local_rank % max(1, visible_gpus)}


def _load_tokenizer(recipe: Recipe, base_dir: Path) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(base_dir))
    if recipe.model.chat_template:
        tok.chat_template = Path(recipe.model.chat_template).read_text(encoding="utf-8")
    if not tok.chat_template:
        raise ConfigError(
            f"the tokenizer in {base_dir} has no chat template, so training and serving could format chats "
            "differently; set model.chat_template: path/to/template.jinja in the recipe"
        )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _load_model(recipe: Recipe, device: str, base_dir: Path) -> Any:
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
        local_rank, visible = 0, 0
        if device == "cuda":
            from accelerate import PartialState

            local_rank, visible = PartialState().local_process_index, torch.cuda.device_count()
        kwargs["device_map"] = quantized_device_map(device, local_rank, visible)
    elif device == "cuda" and bf16_supported(device):
        kwargs["dtype"] = torch.bfloat16
    return AutoModelForCausalLM.from_pretrained(str(base_dir), **kwargs)


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
        "max_steps": t.max_steps if t.max_steps is not None else -1,  # > 0 overrides the epochs
        "per_device_train_batch_size": t.per_device_batch_size,
        "per_device_eval_batch_size": t.per_device_batch_size,
        "gradient_accumulation_steps": accumulation,
        checkpointing_key(): t.gradient_checkpointing,
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


def checkpointing_key() -> str:
    """transformers 5.25 renamed `gradient_checkpointing` to `activation_checkpointing` (the old name warns):
    the name the installed version takes, so our own call is never the deprecated one."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


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


def _step_of(checkpoint: str | None) -> int:
    return int(Path(checkpoint).name.rsplit("-", 1)[-1]) if checkpoint else 0


def _name_base(adapter_dir: Path, name: str) -> None:
    """Record the base as the recipe named it (a Hub id stays an id) in adapter_config.json. PEFT
    records the directory it was loaded from, and while saving it looks for that base's config.json
    (to tell a resized vocabulary), so it saves with the local directory and is renamed after."""
    path = adapter_dir / "adapter_config.json"
    if path.is_file():
        config = json.loads(path.read_text(encoding="utf-8"))
        if config.get("base_model_name_or_path") != name:
            config["base_model_name_or_path"] = name
            path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _checkpoint_callback(cost_so_far: Callable[[], Cost], base_name: str, lineage: list[dict[str, Any]]) -> Any:
    from transformers import TrainerCallback
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    class RecordInCheckpoint(TrainerCallback):
        """Write the training time so far into each checkpoint (a run resumed from it carries it on),
        and name the base there as in the final adapter."""

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            checkpoint = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            if state.is_world_process_zero and checkpoint.is_dir():
                write_cost(checkpoint, cost_so_far())
                write_lineage(checkpoint, lineage)
                _name_base(checkpoint, base_name)

    return RecordInCheckpoint()


def _trainer(recipe: Recipe, model: Any, tokenizer: Any, datasets: tuple[Any, Any], args: dict[str, Any],
             callback: Any) -> Any:
    from peft import LoraConfig

    peft_config = LoraConfig(
        r=recipe.lora.r,
        lora_alpha=recipe.lora.alpha,
        lora_dropout=recipe.lora.dropout,
        target_modules=recipe.lora.target_modules,
        layers_to_transform=recipe.lora.layers,
        task_type="CAUSAL_LM",
    )
    train_ds, eval_ds = datasets
    common = dict(model=model, train_dataset=train_ds, eval_dataset=eval_ds, processing_class=tokenizer,
                  peft_config=peft_config, callbacks=[callback])
    if recipe.method == "sft":
        from trl import SFTConfig, SFTTrainer

        return SFTTrainer(args=SFTConfig(**args, completion_only_loss=True, packing=recipe.training.packing), **common)
    from trl import DPOConfig, DPOTrainer

    # ref_model=None with a PEFT adapter: the reference is the same base with the adapter disabled
    config = DPOConfig(**args, beta=recipe.dpo.beta, loss_type=recipe.dpo.losses, loss_weights=recipe.dpo.loss_weights)
    return DPOTrainer(ref_model=None, args=config, **common)


def _lineage_of(checkpoint: str | None) -> list[dict[str, Any]]:
    """The data a resumed checkpoint was trained on; one it does not record is named as unknown, never dropped."""
    if not checkpoint:
        return []
    found = read_lineage(Path(checkpoint))
    if found is None:
        return [{"path": None, "sha256": None, "resumed_from": str(checkpoint),
                 "note": "a checkpoint that records no training data (written by another tool or version)"}]
    return found


def _existing_manifest(output_dir: Path) -> Manifest | None:
    try:
        return read_manifest(output_dir)
    except SubjectError:  # unreadable or of another schema: rewritten below
        return None


def train(recipe: Recipe, *, resume: bool = True) -> TrainResult:
    """Train the recipe's adapter; resume from the last checkpoint in output_dir when there is one.

    A run whose last checkpoint is already the end of training trains nothing and leaves the
    adapter and manifest as they are (`steps_trained == 0`); `resume=False` starts over.
    """
    quiet_kernels_notice()
    import torch
    from transformers import set_seed

    started = time.time()
    device = recipe.resolved_device()
    processes = int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun / accelerate launch before init
    set_seed(recipe.training.seed)
    base_dir, adapter_base_name = resolve_base(recipe)
    train_ds, eval_ds, lines, data_info = _datasets(recipe)
    tokenizer = _load_tokenizer(recipe, base_dir)
    if recipe.method == "sft":
        token_check = check_rows(tokenizer, list(train_ds), lines, recipe.data.train, recipe.data.max_length)
    else:
        token_check = {"checked": "by DPOTrainer (prompt/chosen/rejected masks)"}
    model = _load_model(recipe, device, base_dir)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    output_dir = Path(recipe.output_dir)
    checkpoint = _last_checkpoint(output_dir) if resume else None
    earlier = read_cost(Path(checkpoint)) if checkpoint else Cost()  # None: a checkpoint that did not record it
    gpus = processes if device == "cuda" else 0
    lineage = extend_lineage(_lineage_of(checkpoint), data_info["train"])
    data_info = {**data_info, "lineage": lineage}

    def cost_so_far() -> Cost:
        return (earlier or Cost()).plus(time.time() - started, gpus)

    with library_deprecations():  # TRL and PEFT call transformers' renamed checkpointing methods
        trainer = _trainer(recipe, model, tokenizer, (train_ds, eval_ds), _args(recipe, device, eval_ds is not None),
                           _checkpoint_callback(cost_so_far, adapter_base_name, lineage))
        result = trainer.train(resume_from_checkpoint=checkpoint)
    steps = trainer.state.global_step - _step_of(checkpoint)
    main = trainer.is_world_process_zero()
    if steps == 0 and checkpoint:
        kept = _existing_manifest(output_dir)
        if kept is not None:  # a rerun of a finished run: nothing trained, nothing rewritten
            return TrainResult(output_dir, kept if main else None, main, steps_trained=0, resumed_from=checkpoint)
    metrics = dict(result.metrics)
    if steps == 0:
        metrics.pop("train_loss", None)  # no step ran: TRL reports 0.0, which is not a loss
    if eval_ds is not None:
        metrics.update(trainer.evaluate())
    trainer.save_model(str(output_dir))  # the best checkpoint's adapter when eval is on; rank 0 writes
    if not main:
        return TrainResult(output_dir, None, main_process=False, steps_trained=steps, resumed_from=checkpoint)
    tokenizer.save_pretrained(str(output_dir))
    _name_base(output_dir, adapter_base_name)

    manifest = build_manifest(
        recipe,
        BaseModel(path=str(base_dir), fingerprint=base_fingerprint(base_dir), name=recipe.model.base),
        device_info(device, processes),
        metrics=metrics,
        log_history=trainer.state.log_history,
        cost=cost_so_far(),
        data=data_info,
        peak_memory_bytes=torch.cuda.max_memory_allocated() if device == "cuda" else _cpu_peak_rss(),
        chat_template_sha256=hashlib.sha256(tokenizer.chat_template.encode()).hexdigest(),
        checks={
            "trained_tokens": token_check,
            "resumed_from": checkpoint,
            # the training time up to the resumed checkpoint (None: not recorded there, so not counted)
            "wall_s_before_resume": earlier.wall_s if earlier else None,
        },
        best_checkpoint=trainer.state.best_model_checkpoint,
    )
    write_manifest(output_dir, manifest)
    return TrainResult(output_dir, manifest, steps_trained=steps, resumed_from=checkpoint)


def _cpu_peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
