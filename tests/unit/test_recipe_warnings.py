"""`ftgate train` warns, before any model loads, where a recipe leaves the field guides' LoRA ranges
(learning rate 1e-4 to 3e-4, 2 to 3 epochs, rank 8 to 64, alpha about 2r). A warning, never an error.

Beside the recipe-validation tests of tests/real/test_train.py, which need a tiny model; these need none
(`device: cpu` keeps torch unimported)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_ftgate.cli import main
from pytest_ftgate.train.config import load_recipe, recipe_warnings
from tests.conftest import write

ROOT = Path(__file__).resolve().parents[2]


def recipe(tmp_path, lora="r: 16\n  alpha: 32", training="learning_rate: 2.0e-4\n  epochs: 3"):
    return write(tmp_path / "recipe.yaml", f"method: sft\nmodel:\n  base: {tmp_path / 'no-model'}\ndata:\n  train: train.jsonl\n"
                                           f"lora:\n  {lora}\ntraining:\n  {training}\noutput_dir: {tmp_path / 'out'}\ndevice: cpu\n")


def warnings_of(path, overrides=()):
    return [(w.check, w.message) for w in recipe_warnings(load_recipe(path, list(overrides)))]


def test_the_field_guides_defaults_raise_no_warning(tmp_path):
    assert warnings_of(recipe(tmp_path)) == []


@pytest.mark.parametrize(("overrides", "check", "start"), [
    ("training.learning_rate=1e-3", "learning-rate", "training.learning_rate 1.0e-03 is over the 1e-4 to 3e-4"),
    ("training.learning_rate=2e-5", "learning-rate", "training.learning_rate 2.0e-05 is under the 1e-4 to 3e-4"),
    ("training.epochs=6", "epochs", "training.epochs 6 is over the 2 to 3 epochs"),
    ("training.epochs=1", "epochs", "training.epochs 1 is under the 2 to 3 epochs"),
    ("lora.r=128 lora.alpha=256", "lora-rank", "lora.r 128 is over the rank of 8 to 64"),
    ("lora.r=4 lora.alpha=8", "lora-rank", "lora.r 4 is under the rank of 8 to 64"),
    ("lora.alpha=128", "lora-alpha", "lora.alpha 128 with r 16 scales updates by 8, which is over the scale of 1 to 4"),
    ("lora.alpha=8", "lora-alpha", "lora.alpha 8 with r 16 scales updates by 0.5, which is under the scale of 1 to 4"),
])
def test_a_value_outside_the_guides_range_is_warned_about_with_the_range_and_the_reason(tmp_path, overrides, check, start):
    (found,) = warnings_of(recipe(tmp_path), overrides.split())
    assert found[0] == check and found[1].startswith(start)
    assert len(found[1].split(": ", 1)[1]) > 40  # and says what goes wrong


@pytest.mark.parametrize("alpha", [16, 64])
def test_alpha_from_r_to_4r_counts_as_about_2r(tmp_path, alpha):
    assert warnings_of(recipe(tmp_path), [f"lora.alpha={alpha}"]) == []


def test_epochs_are_not_judged_when_max_steps_sets_the_length_of_the_run(tmp_path):
    assert warnings_of(recipe(tmp_path), ["training.epochs=10", "training.max_steps=50"]) == []


@pytest.mark.parametrize(("name", "checks"), [
    ("cpu-small.yaml", []),
    ("sft-qlora.yaml", []),
    ("dpo.yaml", ["learning-rate"]),  # 6e-4: a 135M model learning a rare phrase through DPO+SFT needs it (docs)
])
def test_what_the_shipped_recipes_trigger(name, checks):
    found = recipe_warnings(load_recipe(ROOT / "training" / name, ["device=cpu"]))
    assert [w.check for w in found] == checks


def test_ftgate_train_prints_the_warnings_before_training_starts(tmp_path, monkeypatch, capsys):
    from pytest_ftgate.errors import DataError
    from pytest_ftgate.train import trainer

    printed_before = []

    def train(recipe, resume=True):
        printed_before.append(capsys.readouterr().out)
        raise DataError("stopped here by the test")

    monkeypatch.setattr(trainer, "train", train)
    assert main(["train", "sft", str(recipe(tmp_path)), "--set", "training.learning_rate=1e-3"]) == 4
    assert printed_before == [(
        "warning: training.learning_rate 1.0e-03 is over the 1e-4 to 3e-4 the field guides give for LoRA: the loss falls "
        "fast because the model memorises rows, and it forgets what it knew (catastrophic forgetting)\n")]
