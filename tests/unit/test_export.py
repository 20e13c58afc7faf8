"""`ftgate export`: an adapter merged into its base, then gated against the adapter before it may ship.
Tiny random models: the agreement and the verdicts are computed on this machine in the same run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pytest_ftgate.cli import main
from pytest_ftgate.errors import EXIT_USAGE
from pytest_ftgate.gating.export import RECORD, export_adapter

TASK = "kind: {kind}\ncases:\n{cases}\ngenerate: {{max_new_tokens: 4}}\nscorers: [{{regex: '^(?!BROKEN)'}}]\n"


def _suites(root: Path) -> Path:
    suites = root / "suites"
    suites.mkdir()
    for name, kind in (("qa", "golden"), ("support", "task")):
        cases = "\n".join(f"  - {{id: {name}{i}, input: '{name} question number {i}', expected: x}}" for i in range(8))
        (suites / f"{name}.yaml").write_text(TASK.format(kind=kind, cases=cases))
    return suites


def test_an_exported_merge_is_gated_against_its_adapter_and_a_wrong_scale_is_refused(tmp_path, tiny_base, tiny_adapter,
                                                                                      capsys, own_history):
    base = tmp_path / "base"
    shutil.copytree(tiny_base, base)
    adapter = tmp_path / "adapter"
    shutil.copytree(tiny_adapter, adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": str(base)}))
    suites = _suites(tmp_path)

    # merged as peft merges it, in float32: the same answers as the adapter, accepted
    assert main(["export", str(adapter), str(tmp_path / "merged"), "--suites", str(suites)]) == 0
    said = capsys.readouterr().out
    assert "verdict: ACCEPTED" in said and "qa: 8/8 outputs the same as the adapter's (100.0%)" in said
    record = json.loads((tmp_path / "merged" / RECORD).read_text())
    assert record["verdict"] == "accepted" and all(a["rate"] == 1.0 for a in record["agreement"].values())
    assert list((tmp_path / "merged").glob("*.safetensors")) and (tmp_path / "merged" / "tokenizer_config.json").exists()

    # a planted bad merge: the LoRA delta applied at three times its scale
    def wrong_scale(model):
        for module in model.modules():
            if hasattr(module, "scaling") and isinstance(module.scaling, dict):
                module.scaling = {k: 3 * v for k, v in module.scaling.items()}
        return model.merge_and_unload()

    result = export_adapter(adapter, tmp_path / "bad", suites_dir=suites, merge=wrong_scale)
    assert not result.accepted and any("answers" in why and "differently from the adapter" in why for why in result.why)
    assert not list((tmp_path / "bad").glob("*.safetensors"))  # nothing left to serve
    assert json.loads((tmp_path / "bad" / RECORD).read_text())["verdict"] == "refused"

    # the promotion records the accepted export, and refuses a refused one
    assert main(["gate", str(suites), f"--ftgate-suites={suites}", f"--baseline={base}", "--ftgate-update-goldens",
                 f"--ftgate-report-dir={tmp_path / 'r0'}", "--ftgate-no-cache"]) == 0
    assert main(["gate", str(suites), f"--ftgate-suites={suites}", f"--candidate={adapter}",
                 f"--ftgate-report-dir={tmp_path / 'r'}", "--ftgate-no-cache"]) == 0
    capsys.readouterr()
    promote = ["promote", str(tmp_path / "r" / "report.json"), "--suites", str(suites)]
    assert main([*promote, "--export", str(tmp_path / "bad")]) == EXIT_USAGE
    assert "that export was refused" in capsys.readouterr().err
    assert main([*promote, "--export", str(tmp_path / "merged")]) == 0
    kept = json.loads((suites / "ftgate.promoted.json").read_text())["export"]
    assert kept["fingerprint"] == record["fingerprint"] and kept["agreement"] == record["agreement"]
    # the merged model gates as any model does
    assert main(["gate", str(suites), f"--ftgate-suites={suites}", f"--candidate={tmp_path / 'merged'}",
                 f"--baseline={base}", f"--ftgate-report-dir={tmp_path / 'r2'}", "--ftgate-no-cache"]) == 7
    assert "against-production" in capsys.readouterr().out  # a look against the base, now that production exists


def test_an_export_whose_suites_cannot_load_writes_nothing(tmp_path, tiny_adapter):
    import pytest

    from pytest_ftgate.errors import SuiteError

    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "broken.yaml").write_text("kind: task\ncases: []\n")
    with pytest.raises(SuiteError):
        export_adapter(tiny_adapter, tmp_path / "out", suites_dir=tmp_path / "suites")
    assert not (tmp_path / "out").exists()  # checked before anything is merged or written
