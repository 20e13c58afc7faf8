"""Trainer recipes: YAML -> validated dataclasses, before any model is loaded.

Every key is checked: unknown keys, wrong types and impossible values are errors that name the
file, line, key, value and rule. `--set section.key=value` overrides a recipe from the CLI.
"""

from __future__ import annotations

import importlib.util
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from ..errors import ConfigError, TrainConfigError
from ..yamlio import line_of, load_yaml_with_lines


@dataclass
class ModelConfig:
    base: str = field(default="", metadata={"help": "local base model directory (safetensors); never downloaded"})
    load_in_4bit: bool = field(default=False, metadata={"help": "QLoRA: quantize the frozen base to 4-bit (bitsandbytes)"})
    quant_type: Literal["nf4", "fp4"] = field(default="nf4", metadata={"help": "4-bit data type"})
    double_quant: bool = field(default=True, metadata={"help": "quantize the quantization constants too"})
    compute_dtype: Literal["auto", "bfloat16", "float16", "float32"] = field(
        default="auto", metadata={"help": "dtype of 4-bit matmuls; auto = bfloat16 where supported"}
    )
    chat_template: str | None = field(default=None, metadata={"help": "a Jinja file to use when the tokenizer has none"})

    def __post_init__(self) -> None:
        if not self.base:
            raise ValueError("model.base is required: the local directory of the base model")


@dataclass
class DataConfig:
    train: str = field(default="", metadata={"help": "training JSONL: messages, instruction/output, or prompt/chosen/rejected"})
    eval: str | None = field(default=None, metadata={"help": "held-out JSONL; default: eval_fraction of train"})
    eval_fraction: float = field(default=0.1, metadata={"help": "share of train held out when eval is not given"})
    max_length: int = field(default=1024, metadata={"help": "longest tokenized row; longer rows are an error"})

    def __post_init__(self) -> None:
        if not self.train:
            raise ValueError("data.train is required: a JSONL file of training rows")
        if not 0 <= self.eval_fraction < 0.5:
            raise ValueError(f"data.eval_fraction must be in [0, 0.5), got {self.eval_fraction}")
        if self.max_length < 16:
            raise ValueError(f"data.max_length must be at least 16 tokens, got {self.max_length}")


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
            raise ValueError(f"lora.r must be a positive integer, got {self.r}")
        if self.alpha <= 0:
            raise ValueError(f"lora.alpha must be positive, got {self.alpha}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"lora.dropout must be in [0, 1), got {self.dropout}")
        if self.layers is not None and (not self.layers or min(self.layers) < 0):
            raise ValueError(f"lora.layers must be a non-empty list of layer indices >= 0, got {self.layers}")
        if self.layers is not None and isinstance(self.target_modules, str):
            raise ValueError("lora.layers needs lora.target_modules as a list of module names (PEFT cannot combine it with all-linear)")


@dataclass
class TrainingConfig:
    learning_rate: float = field(default=2e-4, metadata={"help": "peak learning rate"})
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = field(default=0.03, metadata={"help": "share of steps spent warming up"})
    weight_decay: float = 0.01
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping"})
    epochs: float = 3.0
    per_device_batch_size: int = 4
    effective_batch_size: int = field(default=16, metadata={"help": "per-device batch x accumulation x processes"})
    gradient_checkpointing: bool = True
    optim: str = field(default="auto", metadata={"help": "auto = paged_adamw_8bit on a GPU, adamw_torch on the CPU"})
    bf16: Literal["auto", True, False] = field(default="auto", metadata={"help": "bf16 mixed precision; auto = where supported"})
    packing: bool = field(default=False, metadata={"help": "pack rows (needs FlashAttention, which isolates them)"})
    group_by_length: bool = field(default=True, metadata={"help": "batch rows of similar length: less padding"})
    seed: int = 42
    report_to: list[str] = field(default_factory=list, metadata={"help": "tensorboard, wandb, mlflow; none by default"})
    logging_steps: int = 10
    save_total_limit: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"training.learning_rate must be in (0, 1), got {self.learning_rate}")
        if self.epochs <= 0:
            raise ValueError(f"training.epochs must be positive, got {self.epochs}")
        if self.per_device_batch_size < 1 or self.effective_batch_size < 1:
            raise ValueError("training.per_device_batch_size and effective_batch_size must be at least 1")
        if self.effective_batch_size % self.per_device_batch_size:
            raise ValueError(
                f"training.effective_batch_size ({self.effective_batch_size}) must be a multiple of "
                f"per_device_batch_size ({self.per_device_batch_size})"
            )
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"training.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        for sink in self.report_to:
            if sink not in ("tensorboard", "wandb", "mlflow"):
                raise ValueError(f"training.report_to: {sink!r} is not one of tensorboard, wandb, mlflow")


@dataclass
class DPOConfig:
    beta: float = field(default=0.1, metadata={"help": "strength of the KL pull towards the reference (the base, adapter off)"})
    loss_type: str = "sigmoid"

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise ValueError(f"dpo.beta must be positive, got {self.beta}")


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
        raise ValueError("must be a number")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ValueError("must be a string")
    raise ValueError(f"has an unsupported type {annotation}")


def _build(cls: type, data: Any, where: tuple[str, ...], fail: Any) -> Any:
    if not isinstance(data, dict):
        raise fail(f"`{'.'.join(where) or 'the recipe'}` must be a mapping", *where)
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if f.name != "source"}
    unknown = set(data) - set(known)
    if unknown:
        key = sorted(unknown)[0]
        raise fail(f"unknown key `{'.'.join((*where, key))}`; allowed: {', '.join(sorted(known))}", *where, key)
    kwargs = {}
    for name, f in known.items():
        if name not in data:
            if f.default is MISSING and f.default_factory is MISSING:  # type: ignore[misc]
                raise fail(f"missing required key `{'.'.join((*where, name))}`", *where)
            continue
        hint = hints[name]
        if is_dataclass(hint):
            kwargs[name] = _build(hint, data[name], (*where, name), fail)
            continue
        try:
            kwargs[name] = _check_type(data[name], hint)
        except ValueError as exc:
            raise fail(f"`{'.'.join((*where, name))}` {exc}, got {data[name]!r}", *where, name) from None
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise fail(str(exc), *where) from None


def _apply_overrides(data: dict[str, Any], overrides: list[str]) -> None:
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise TrainConfigError(f"--set {item!r}: write section.key=value, e.g. --set training.epochs=1")
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise TrainConfigError(f"--set {item!r}: {p} is not a section")
        node[leaf] = yaml.safe_load(raw)


def load_recipe(path: str | Path, overrides: list[str] | None = None, method: str | None = None) -> Recipe:
    """Load and validate a recipe. Raises TrainConfigError naming the file, line and key.

    `method` (from `ftgate train sft|dpo`) fills a recipe without `method:` and must match one with it.
    """
    path = Path(path)
    try:
        data, lines = load_yaml_with_lines(path)
    except ConfigError as exc:
        raise TrainConfigError(str(exc)) from None
    if not isinstance(data, dict):
        raise TrainConfigError(f"{path}: a recipe is a YAML mapping with method, model, data and output_dir")
    _apply_overrides(data, overrides or [])
    if method is not None:
        if data.get("method", method) != method:
            raise TrainConfigError(
                f"{path}:{line_of(lines, 'method')}: this recipe is for `{data['method']}`, but "
                f"`ftgate train {method}` was run; use `ftgate train {data['method']}`"
            )
        data["method"] = method

    def fail(message: str, *where: Any) -> TrainConfigError:
        line = line_of(lines, *where)
        return TrainConfigError(f"{path}:{line}: {message}" if line else f"{path}: {message}")

    recipe = _build(Recipe, data, (), fail)
    recipe.source = str(path)
    _check_environment(recipe, fail)
    return recipe


def _check_environment(recipe: Recipe, fail: Any) -> None:
    """Rules that depend on the machine: checked before any model loads."""
    if recipe.model.load_in_4bit and importlib.util.find_spec("bitsandbytes") is None:
        raise fail("model.load_in_4bit needs bitsandbytes: pip install 'pytest-ftgate[train]'", "model", "load_in_4bit")
    device = recipe.resolved_device()
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise fail("device: cuda, but no CUDA GPU is visible; use device: cpu or auto", "device")
    if recipe.training.bf16 is True and not bf16_supported(device):
        raise fail(
            f"training.bf16 is true but this {device.upper()} has no bf16 support; set bf16: auto or false",
            "training", "bf16",
        )
    if recipe.training.packing:
        if device != "cuda" or importlib.util.find_spec("flash_attn") is None:
            raise fail(
                "training.packing without FlashAttention lets packed rows attend to each other; "
                "set packing: false, or install flash-attn on a GPU (rows then stay isolated)",
                "training", "packing",
            )
    if recipe.method == "sft" and recipe.training.optim == "paged_adamw_8bit" and device == "cpu":
        raise fail("training.optim paged_adamw_8bit needs a GPU; use auto or adamw_torch on the CPU", "training", "optim")


def bf16_supported(device: str) -> bool:
    import torch

    if device == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
