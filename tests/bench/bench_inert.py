"""What the installed plugin costs a project that gates nothing: a one-test pytest run, whole
process, with the plugin loaded and with `-p no:ftgate`, interleaved, median of N.

    python -m tests.bench.bench_inert [N]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(n: int = 15) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
        runs: dict[str, list[float]] = {"plugin loaded": [], "-p no:ftgate": []}
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_one.py"]
        for _ in range(n + 1):  # the first round warms the file cache and is dropped
            for label, extra in (("plugin loaded", []), ("-p no:ftgate", ["-p", "no:ftgate"])):
                started = time.perf_counter()
                subprocess.run([*base, *extra], cwd=tmp, check=True, capture_output=True)
                runs[label].append(time.perf_counter() - started)
        with_plugin, without = (statistics.median(v[1:]) for v in runs.values())
        print(f"{'run':<16} {'median s':>9}   (n={n}, whole process)")
        for label, values in runs.items():
            print(f"{label:<16} {statistics.median(values[1:]):>9.3f}")
        print(f"overhead: {100 * (with_plugin / without - 1):+.1f}%")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
