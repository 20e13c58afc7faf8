"""Two rounds end to end, on local adapters, where each way around the promotion contract is tried
between an honest first round and an honest second one, and each is refused with a message that names
its clause. Tiny random models: any answer passes but one that starts with BROKEN, so the verdicts
come from the contract, never from what the model said."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pytest_ftgate.cli import main
from pytest_ftgate.errors import EXIT_GATE_ERROR, EXIT_PARTIAL, EXIT_USAGE

GOLDEN = "kind: golden\ncases:\n{cases}\ngenerate: {{max_new_tokens: 3}}\nscorers: [{{regex: '^(?!BROKEN)'}}]\n"
TASK = "kind: task\ncases:\n{cases}\ngenerate: {{max_new_tokens: 3}}\nscorers: [{{regex: '^(?!BROKEN)'}}]\n"


def _project(root: Path) -> Path:
    suites = root / "suites"
    suites.mkdir(parents=True)
    for name, kind in (("qa", GOLDEN), ("support", TASK)):
        cases = "\n".join(f"  - {{id: {name}{i}, input: '{name} question {i}'}}" for i in range(6))
        (suites / f"{name}.yaml").write_text(kind.format(cases=cases))
    return suites


def test_two_rounds_where_every_way_around_the_contract_is_refused_by_name(tmp_path, tiny_base, capsys, own_history):
    from fixtures.tiny_models import build_tiny_adapter

    base = tmp_path / "base"
    shutil.copytree(tiny_base, base)  # this test edits its generation config
    first, second = (build_tiny_adapter(base, tmp_path / name, seed=seed) for name, seed in (("round1", 3), ("round2", 5)))
    suites = _project(tmp_path)
    record = suites / "ftgate.promoted.json"

    def gate(report: str, *args: str, paths: tuple[str, ...] = ()) -> tuple[int, str]:
        code = main(["gate", *(paths or (str(suites),)), f"--ftgate-suites={suites}", f"--ftgate-cache-dir={tmp_path / 'cache'}",
                     f"--ftgate-report-dir={tmp_path / report}", *args])
        said = capsys.readouterr()
        return code, said.out + said.err

    def promote(report: str, directory: Path = suites) -> tuple[int, str]:
        code = main(["promote", str(tmp_path / report / "report.json"), "--suites", str(directory)])
        said = capsys.readouterr()
        return code, said.out + said.err

    # ---- round 1: goldens frozen on the base, the first adapter gated and promoted -----------------------
    assert gate("frozen", f"--baseline={base}", "--ftgate-update-goldens")[0] == 0
    assert gate("r1", f"--candidate={first}")[0] == 0
    assert promote("r1")[0] == 0
    # goldens follow production, on purpose
    assert gate("refrozen", "--baseline=promoted", "--ftgate-update-goldens")[0] == 0

    # ---- round 2: each way around the contract -----------------------------------------------------------
    # coverage: one suite file named
    code, said = gate("one-file", f"--candidate={second}", paths=(str(suites / "support.yaml"),))
    assert code == EXIT_PARTIAL and "coverage: this run did not gate 1 of the 2 suite(s)" in said
    code, said = promote("one-file")
    assert code == EXIT_USAGE and "coverage:" in said

    # against-production: measured against the base
    code, said = gate("vs-base", f"--candidate={second}", f"--baseline={base}")
    assert code in (EXIT_PARTIAL, EXIT_GATE_ERROR) and "against-production: the baseline was" in said, said
    code, said = promote("vs-base")
    assert code == EXIT_USAGE and "against-production" in said

    # no-freeze: goldens re-frozen in the run that gates the candidate
    code, said = gate("froze", f"--candidate={second}", "--ftgate-update-goldens")
    assert code == EXIT_PARTIAL and "no-freeze: this run wrote goldens" in said
    assert promote("froze")[0] == EXIT_USAGE

    # bound definitions: the golden suite's scorers loosened
    qa = suites / "qa.yaml"
    strict = qa.read_text()
    qa.write_text(strict.replace("'^(?!BROKEN)'", "'.'"))
    code, said = gate("loosened", f"--candidate={second}")
    assert code == EXIT_GATE_ERROR and "promotion contract, bound definitions: what decides a pass changed" in said
    qa.write_text(strict)

    # the honest run: promoted, and held to what it measured
    code, said = gate("r2", f"--candidate={second}")
    assert code == 0 and "PROMOTED" in said

    # same-model: the base's generation defaults edited after the gate
    config = base / "generation_config.json"
    kept = config.read_text() if config.exists() else None
    config.write_text(json.dumps({**(json.loads(kept) if kept else {}), "repetition_penalty": 1.3}))
    code, said = promote("r2")
    assert code == EXIT_USAGE and "same-model: the candidate" in said and "is not the model that was gated" in said
    config.write_text(kept) if kept is not None else config.unlink()

    # intact-record: a partial report's verdict edited
    forged = tmp_path / "forged"
    shutil.copytree(tmp_path / "one-file", forged)
    report = json.loads((forged / "report.json").read_text())
    (forged / "report.json").write_text(json.dumps({**report, "verdict": "promoted", "contract": {**report["contract"],
                                                                                                 "breaches": []}}))
    code, said = promote("forged")
    assert code == EXIT_USAGE and "intact-record" in said

    # coverage: a report held against another project's suites
    other = _project(tmp_path / "other")
    (other / "extra.yaml").write_text(TASK.format(cases="  - {id: e0, input: 'extra'}"))
    code, said = promote("r2", other)
    assert code == EXIT_USAGE and "coverage:" in said

    # against-production: the promotion record moved away while the history shows a promotion
    record.rename(tmp_path / "moved.json")
    code, said = gate("no-record", f"--candidate={second}")
    assert code == EXIT_USAGE and f"there is no promotion record at {record}" in said
    (tmp_path / "moved.json").rename(record)

    # ---- and the honest promotion goes through ----------------------------------------------------------------
    code, said = promote("r2")
    assert code == 0, said
    promoted = json.loads(record.read_text())
    assert promoted["name"] == str(second) or promoted["name"].endswith("round2"), promoted["name"]
    assert [p["name"] for p in promoted["previous"]] == [json.loads((tmp_path / "r1/report.json").read_text())
                                                         ["subjects"]["candidate"]["name"]]
