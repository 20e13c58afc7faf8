"""Two adapters on one base (the promoted model beside the candidate): one load, against two loads.

    python -m tests.bench.bench_two_adapters [--repeat 3]

Each configuration runs in a fresh process (so its peak memory is its own): it builds the promoted
adapter and the candidate as a gate does, generates a few answers with each, and reports the time
until both have answered and the process's peak RSS. "shared" is what the gate does (one engine, two
named PEFT adapters switched per batch); "two loads" builds each in a resolver of its own. The demo's
SmolLM2 and its two adapters are used when `make demo` has made them, else tiny random models.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHILD = r"""
import json, resource, sys, time
started = time.perf_counter()
from pytest_ftgate.settings.config import SubjectOptions
from pytest_ftgate.stores.cache import Cache
from pytest_ftgate.subjects import Resolver
promoted, candidate, mode = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "shared":
    resolver = Resolver(SubjectOptions(), Cache(None))
    subjects = [resolver.build(promoted, "baseline"), resolver.build(candidate, "candidate")]
else:
    subjects = [Resolver(SubjectOptions(), Cache(None)).build(spec, role) for spec, role in ((promoted, "baseline"), (candidate, "candidate"))]
loading = time.perf_counter()
for s in subjects:
    s.engine.load()  # the base, and every adapter registered on it
loaded = time.perf_counter() - loading
for s in subjects:
    for prompt in ("Where is my parcel?", "My card was charged twice."):
        s.generate(prompt, max_new_tokens=8)
print(json.dumps({"seconds": time.perf_counter() - started, "load_s": loaded,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "engines": len({id(s.engine) for s in subjects})}))
"""


def models(tmp: Path) -> tuple[str, str, str]:
    demo = ROOT / ".ftgate/runs"
    if (demo / "cpu-small/adapter_config.json").exists() and (demo / "careless/adapter_config.json").exists():
        return str(demo / "cpu-small"), str(demo / "careless"), "SmolLM2-135M-Instruct, the demo's two adapters"
    sys.path.insert(0, str(ROOT))
    from fixtures.tiny_models import build_tiny_adapter, build_tiny_llama

    base = build_tiny_llama(tmp / "base")
    return (str(build_tiny_adapter(base, tmp / "a", seed=1)), str(build_tiny_adapter(base, tmp / "b", seed=2)),
            "a tiny random model and two random adapters")


def main(repeat: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        promoted, candidate, what = models(Path(tmp))
        runs: dict[str, list[dict]] = {"shared": [], "two loads": []}
        for _ in range(repeat):  # interleaved: the machine's load hits both alike
            for mode in runs:
                proc = subprocess.run([sys.executable, "-c", CHILD, promoted, candidate, "shared" if mode == "shared" else "two"],
                                      cwd=ROOT, capture_output=True, text=True, check=True, env={"HF_HUB_OFFLINE": "1",
                                      "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
                runs[mode].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"{what}; median of {repeat}, whole process (imports included), side by side")
        print(f"{'':<10} {'engines':>7} {'load s':>7} {'total s':>8} {'peak MiB':>9}")
        for mode, values in runs.items():
            print(f"{mode:<10} {values[0]['engines']:>7} {statistics.median(v['load_s'] for v in values):>7.2f} "
                  f"{statistics.median(v['seconds'] for v in values):>8.2f} {statistics.median(v['peak_mib'] for v in values):>9.0f}")
        shared, two = ({k: statistics.median(v[k] for v in runs[m]) for k in ("load_s", "seconds", "peak_mib")} for m in runs)
        print(f"shared / two loads: load {shared['load_s'] / two['load_s']:.2f}x, total {shared['seconds'] / two['seconds']:.2f}x, "
              f"peak memory {shared['peak_mib'] / two['peak_mib']:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    main(parser.parse_args().repeat)
