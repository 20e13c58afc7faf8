"""Trainer recipes: YAML -> validated dataclasses, before any model is loaded.

Every key is checked: unknown keys, wrong types and impossible values are errors that name the
file, line, key, value and rule. `--set section.key=value` overrides a recipe from the CLI.
"""

from __future__ import annotations

import importlib.util
import re
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from ..errors import TrainConfigError
from ..files import field_guide as guide
from ..files.yamlio import line_of, load_yaml_with_lines


class RuleError(ValueError):
    """A `__post_init__` rule is broken; `keys` name the fields it concerns, so the error can point at
    their recipe lines, or at the `--set` override that gave one of them its value."""

    def __init__(self, message: str, *keys: str):
        super().__init__(message)
        self.keys = keys


@dataclass
class ModelConfig:
    base: str = field(default="", metadata={"help": (
        "the base model: a local directory (safetensors; its absolute path goes into adapter_config.json, so the "
        "adapter loads from anywhere), or a Hugging Face Hub id, resolved as transformers does (from the HF cache; "
        "downloaded only when HF_HUB_OFFLINE is unset) and kept as the id in adapter_config.json"
    )})
    load_in_4bit: bool = field(default=False, metadata={"help": "QLoRA: quantize the frozen base to 4-bit (bitsandbytes)"})
    quant_type: Literal["nf4", "fp4"] = field(default="nf4", metadata={"help": "4-bit data type"})
    double_quant: bool = field(default=True, metadata={"help": "quantize the quantization constants too"})
    compute_dtype: Literal["auto", "bfloat16", "float16", "float32"] = field(
        default="auto", metadata={"help": "dtype of 4-bit matmuls; auto = bfloat16 where supported"}
    )
    chat_template: str | None = field(default=None, metadata={"help": "a Jinja file to use when the tokenizer has none"})

    def __post_init__(self) -> None:
        if not self.base:
            raise RuleError("model.base is required: a local base model directory or a Hugging Face Hub id", "base")


@dataclass
class DataConfig:
    train: str = field(default="", metadata={"help": "training JSONL: messages, instruction/output, or prompt/chosen/rejected"})
    eval: str | None = field(default=None, metadata={"help": "held-out JSONL; default: eval_fraction of train"})
    eval_fraction: float = field(default=0.1, metadata={"help": "share of train held out when eval is not given"})
    max_length: int = field(default=1024, metadata={"help": "longest tokenized row; longer rows are an error"})

    def __post_init__(self) -> None:
        if not self.train:
            raise RuleError("data.train is required: a JSONL file of training rows", "train")
        if not 0 <= self.eval_fraction < 0.5:
            raise RuleError(f"data.eval_fraction must be in [0, 0.5), got {self.eval_fraction}", "eval_fraction")
        if self.max_length < 16:
            raise RuleError(f"data.max_length must be at least 16 tokens, got {self.max_length}", "max_length")


@dataclass
class LoraConfig:
    r: int = field(default=16, metadata={"help": "LoRA rank"})
    alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)"})
    dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA path"})
    target_modules: str | list[str] = field(default="all-linear", metadata={"help": "modules to adapt; all-linear = every projection"})
    layers: list[int] | None = field(
        default=None, metadata={"help": "adapt only these decoder layers (e.g. the top ones, leaving recall in the lower layers alone)"}
    )

    def __post_init__(self) -> None:
        if self.r <= 0:
            raise RuleError(f"lora.r must be a positive integer, got {self.r}", "r")
        if self.alpha <= 0:
            raise RuleError(f"lora.alpha must be positive, got {self.alpha}", "alpha")
        if not 0 <= self.dropout < 1:
            raise RuleError(f"lora.dropout must be in [0, 1), got {self.dropout}", "dropout")
        if self.layers is not None and (not self.layers or min(self.layers) < 0):
            raise RuleError(f"lora.layers must be a non-empty list of layer indices >= 0, got {self.layers}", "layers")
        if self.layers is not None and isinstance(self.target_modules, str):
            raise RuleError(
                "lora.layers needs lora.target_modules as a list of module names (PEFT cannot combine it with all-linear)",
                "layers", "target_modules",
            )


@dataclass
class TrainingConfig:
    learning_rate: float = field(default=2e-4, metadata={"help": "peak learning rate"})
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = field(default=0.03, metadata={"help": "share of steps spent warming up"})
    weight_decay: float = 0.01
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping"})
    epochs: float = field(default=3.0, metadata={"help": "passes over the training data (fractions allowed)"})
    max_steps: int | None = field(
        default=None, metadata={"help": "stop after this many optimizer steps, overriding epochs; none = train for epochs"}
    )
    per_device_batch_size: int = 4
    effective_batch_size: int = field(default=16, metadata={"help": "per-device batch x accumulation x processes"})
    gradient_checkpointing: bool = True
    optim: str = field(default="auto", metadata={"help": "auto = paged_adamw_8bit on a GPU, adamw_torch on the CPU"})
    bf16: Literal["auto", True, False] = field(default="auto", metadata={"help": "bf16 mixed precision; auto = where the hardware computes bf16 (a GPU with it, a CPU with AVX-512 BF16 or AMX)"})
    packing: bool = field(default=False, metadata={"help": "pack rows (needs FlashAttention, which isolates them)"})
    group_by_length: bool = field(default=True, metadata={"help": "batch rows of similar length: less padding"})
    seed: int = 42
    report_to: list[str] = field(default_factory=list, metadata={"help": "tensorboard, wandb, mlflow; none by default"})
    logging_steps: int = 10
    save_total_limit: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.learning_rate < 1:
            raise RuleError(f"training.learning_rate must be in (0, 1), got {self.learning_rate}", "learning_rate")
        if self.epochs <= 0:
            raise RuleError(f"training.epochs must be positive, got {self.epochs}", "epochs")
        if self.max_steps is not None and self.max_steps <= 0:
            raise RuleError(
                f"training.max_steps must be a positive number of optimizer steps (or left out to train for "
                f"training.epochs), got {self.max_steps}", "max_steps",
            )
        if self.per_device_batch_size < 1 or self.effective_batch_size < 1:
            raise RuleError(
                f"training.per_device_batch_size and effective_batch_size must be at least 1, got "
                f"{self.per_device_batch_size} and {self.effective_batch_size}",
                "per_device_batch_size", "effective_batch_size",
            )
        if self.effective_batch_size % self.per_device_batch_size:
            raise RuleError(
                f"training.effective_batch_size ({self.effective_batch_size}) must be a multiple of "
                f"per_device_batch_size ({self.per_device_batch_size})", "effective_batch_size", "per_device_batch_size",
            )
        if not 0 <= self.warmup_ratio < 1:
            raise RuleError(f"training.warmup_ratio must be in [0, 1), got {self.warmup_ratio}", "warmup_ratio")
        for sink in self.report_to:
            if sink not in ("tensorboard", "wandb", "mlflow"):
                raise RuleError(f"training.report_to: {sink!r} is not one of tensorboard, wandb, mlflow", "report_to")


DPO_LOSSES = ("sigmoid", "hinge", "ipo", "robust", "bco_pair", "sppo_hard", "nca_pair", "exo_pair", "aot", "aot_unpaired",
              "apo_zero", "apo_down", "discopop", "sigmoid_norm", "sft")


@dataclass
class DPOConfig:
    beta: float = field(default=0.1, metadata={"help": "strength of the KL pull towards the reference (the base, adapter off)"})
    # one loss, or several summed with loss_weights: [sigmoid, sft] adds the chosen answers' NLL
    # to the preference (RPO), which a small model needs to pick up a new phrase at all
    loss_type: str | list[str] = "sigmoid"
    loss_weights: list[float] | None = None

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise RuleError(f"dpo.beta must be positive, got {self.beta}", "beta")
        losses = self.losses
        if not losses:
            raise RuleError(f"dpo.loss_type is empty; use one of {', '.join(DPO_LOSSES)}, or a list of them", "loss_type")
        unknown = [x for x in losses if x not in DPO_LOSSES]
        if unknown:
            raise RuleError(f"dpo.loss_type: {unknown[0]!r} is not a DPO loss; "
                            f"use one of {', '.join(DPO_LOSSES)}, or a list of them", "loss_type")
        if self.loss_weights is not None:
            if len(self.loss_weights) != len(losses):
                raise RuleError(f"dpo.loss_weights has {len(self.loss_weights)} weights for {len(losses)} loss types; "
                                "give one weight per loss_type", "loss_weights")
            if any(w < 0 for w in self.loss_weights) or not any(self.loss_weights):
                raise RuleError("dpo.loss_weights must be >= 0, and not all 0", "loss_weights")

    @property
    def losses(self) -> list[str]:
        return [self.loss_type] if isinstance(self.loss_type, str) else list(self.loss_type)


@dataclass
class Recipe:
    method: Literal["sft", "dpo"]
    model: ModelConfig
    data: DataConfig
    output_dir: str
    lora: LoraConfig = field(default_factory=LoraConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    dpo: DPOConfig = field(default_factory=DPOConfig)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    source: str = ""  # the recipe file, for messages and the manifest

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"


def _check_type(value: Any, annotation: Any) -> Any:
    """Coerce/validate a YAML value against a dataclass annotation; ValueError names the expectation."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin is Literal:
        if value in typing.get_args(annotation):
            return value
        raise ValueError(f"must be one of {', '.join(map(repr, typing.get_args(annotation)))}")
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(annotation):
            if option is type(None):
                if value is None:
                    return None
                continue
            try:
                return _check_type(value, option)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(" or ".join(errors))
    if origin is list:
        if not isinstance(value, list):
            raise ValueError("must be a list")
        (item,) = typing.get_args(annotation)
        return [_check_type(v, item) for v in value]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ValueError("must be true or false")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError("must be an integer")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads 3e-3 (no dot) as text; the user wrote a number
        raise ValueError("must be a number")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ValueError("must be a string")
    raise ValueError(f"has an unsupported type {annotation}")


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class _Blame:
    """Where a recipe value came from: its line in the recipe file, or the `--set` that overrode it."""

    path: Path
    lines: dict[Any, int]
    overrides: dict[tuple[str, ...], str]  # key path -> the --set item as typed (the last one wins)

    def error(self, message: str, *keys: tuple[str, ...]) -> TrainConfigError:
        """An error about `keys` (candidates, most precise first), naming the --set that set one of them
        (or a section above it), else the recipe line of the first."""
        for key in keys:
            for end in range(len(key), 0, -1):
                item = self.overrides.get(key[:end])
                if item is not None:
                    return TrainConfigError(f"--set {item}: {message}")
        line = line_of(self.lines, *keys[0]) if keys else None
        return TrainConfigError(f"{self.path}:{line}: {message}" if line else f"{self.path}: {message}")


def _build(cls: type, data: Any, where: tuple[str, ...], blame: _Blame) -> Any:
    if not isinstance(data, dict):
        raise blame.error(f"`{'.'.join(where) or 'the recipe'}` must be a mapping", where)
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if f.name != "source"}
    unknown = set(data) - set(known)
    if unknown:
        key = sorted(unknown)[0]
        raise blame.error(f"unknown key `{'.'.join((*where, key))}`; allowed: {', '.join(sorted(known))}", (*where, key))
    kwargs = {}
    for name, f in known.items():
        if name not in data:
            if f.default is MISSING and f.default_factory is MISSING:  # type: ignore[misc]
                raise blame.error(f"missing required key `{'.'.join((*where, name))}`", where)
            continue
        hint = hints[name]
        if is_dataclass(hint):
            kwargs[name] = _build(hint, data[name], (*where, name), blame)
            continue
        try:
            kwargs[name] = _check_type(data[name], hint)
        except ValueError as exc:
            raise blame.error(f"`{'.'.join((*where, name))}` {exc}, got {data[name]!r}", (*where, name)) from None
    try:
        return cls(**kwargs)
    except ValueError as exc:
        keys = [(*where, k) for k in getattr(exc, "keys", ())]
        raise blame.error(str(exc), *keys, where) from None


def _apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[tuple[str, ...], str]:
    """Write each `--set section.key=value` into the recipe data; return which key paths they set."""
    applied: dict[tuple[str, ...], str] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        path = tuple(key.split("."))
        if not sep or not all(path):
            raise TrainConfigError(f"--set {item}: write section.key=value, e.g. --set training.epochs=1")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise TrainConfigError(
                f"--set {item}: {raw!r} is not a YAML value; quote it, e.g. --set '{key}=\"{raw}\"'"
            ) from None
        node = data
        for depth, part in enumerate(path[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise TrainConfigError(f"--set {item}: `{'.'.join(path[: depth + 1])}` is not a section of the recipe")
        node[path[-1]] = value
        applied[path] = item
    return applied


def load_recipe(path: str | Path, overrides: list[str] | None = None, method: str | None = None) -> Recipe:
    """Load and validate a recipe. Raises TrainConfigError naming the file, line and key, or the
    `--set` override whose value is wrong.

    `method` (from `ftgate train sft|dpo`) fills a recipe without `method:` and must match one with it.
    """
    path = Path(path)
    data, lines = load_yaml_with_lines(path, error=TrainConfigError)
    if not isinstance(data, dict):
        raise TrainConfigError(f"{path}: a recipe is a YAML mapping with method, model, data and output_dir")
    blame = _Blame(path, lines, _apply_overrides(data, overrides or []))
    if method is not None:
        if data.get("method", method) != method:
            raise blame.error(
                f"this recipe is for `{data['method']}`, but `ftgate train {method}` was run; "
                f"use `ftgate train {data['method']}`", ("method",),
            )
        data["method"] = method
    recipe = _build(Recipe, data, (), blame)
    recipe.source = str(path)
    _check_environment(recipe, blame)
    return recipe


def _check_environment(recipe: Recipe, blame: _Blame) -> None:
    """Rules that depend on the machine: checked before any model loads."""
    if recipe.model.load_in_4bit and importlib.util.find_spec("bitsandbytes") is None:
        raise blame.error(
            "model.load_in_4bit needs bitsandbytes: pip install 'pytest-ftgate[train]'", ("model", "load_in_4bit")
        )
    device = recipe.resolved_device()
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise blame.error("device: cuda, but no CUDA GPU is visible; use device: cpu or auto", ("device",))
    if recipe.training.bf16 is True and not bf16_supported(device):
        raise blame.error(
            f"training.bf16 is true but this {device.upper()} has no bf16 support; set bf16: auto or false",
            ("training", "bf16"),
        )
    if recipe.training.packing:
        if device != "cuda" or importlib.util.find_spec("flash_attn") is None:
            raise blame.error(
                "training.packing without FlashAttention lets packed rows attend to each other; "
                "set packing: false, or install flash-attn on a GPU (rows then stay isolated)",
                ("training", "packing"),
            )
    if recipe.method == "sft" and recipe.training.optim == "paged_adamw_8bit" and device == "cpu":
        raise blame.error(
            "training.optim paged_adamw_8bit needs a GPU; use auto or adamw_torch on the CPU", ("training", "optim")
        )


def recipe_warnings(recipe: Recipe) -> list[guide.GuideWarning]:
    """Where a recipe leaves the field guides' LoRA ranges (pytest_ftgate.files.field_guide): one line each, the
    value, the range and what goes wrong. A warning, not an error: a small model may need its own values. The
    epochs are not judged when training.max_steps sets the run's length instead."""
    t, lora = recipe.training, recipe.lora
    checks = [("learning-rate", f"training.learning_rate {t.learning_rate:.1e}", t.learning_rate, guide.LEARNING_RATE),
              ("lora-rank", f"lora.r {lora.r}", lora.r, guide.LORA_RANK),
              ("lora-alpha", f"lora.alpha {lora.alpha} with r {lora.r} scales updates by {lora.alpha / lora.r:g}, which",
               lora.alpha / lora.r, guide.LORA_SCALE)]
    if t.max_steps is None:
        checks.insert(1, ("epochs", f"training.epochs {t.epochs:g}", t.epochs, guide.EPOCHS))
    found = []
    for check, shown, value, rule in checks:
        if rule.low * (1 - 1e-9) <= value <= rule.high * (1 + 1e-9):
            continue
        side, why = ("under", rule.why_low) if value < rule.low else ("over", rule.why_high)
        found.append(guide.GuideWarning(check, f"{shown} is {side} {rule.span}: {why}"))
    return found


def bf16_supported(device: str) -> bool:
    """bf16 computed in hardware: a GPU with it, or a CPU with AVX-512 BF16 or AMX (elsewhere torch emulates it,
    slower than float32), as the gates decide their dtype."""
    from ..machine.hardware import native_bf16

    return native_bf16(device)
