"""Endpoint throughput: EndpointClient at concurrency 8 against concurrency 1, side by side.

    python -m tests.bench.bench_endpoint                 # 64 calls, +200 ms each, 8 vs 1
    python -m tests.bench.bench_endpoint --repeat 3 --concurrency 8 4 1

64 short chat calls go to the real llama.cpp server (SmolLM2, tests/helpers/llama_server.py) through the
fault proxy (tests/helpers/fault_proxy.py), which adds 200 ms to each request, as a remote API's round trip
would. The runs alternate in one process against the same server, so the ratios are measured side
by side.

The prompt is the same for every call and max_tokens is 1 (at most 4 is allowed): llama.cpp reuses
its prompt cache, so the server's own work is a few tens of ms per call. That matters because this
local server answers one request at a time, which a remote API does not; its serial time bounds
what any concurrency can gain here, and the table shows it (server s) beside the result.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

CHAT = [{"role": "user", "content": "Say one word."}]


def timed_run(url: str, calls: int, concurrency: int, max_tokens: int) -> float:
    from pytest_ftgate.subjects.endpoint.client import EndpointClient

    client = EndpointClient(url, concurrency=concurrency, max_retries=0)
    done: list[int] = []
    started = time.perf_counter()
    client.map(lambda i: client.complete("smollm2", CHAT, where=f"bench call {i}", max_tokens=max_tokens),
               range(calls), lambda i, _: done.append(i))
    wall = time.perf_counter() - started
    client.close()
    assert len(done) == calls
    return wall


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=64)
    parser.add_argument("--delay-ms", type=float, default=200.0, help="added to every request by the proxy")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 1])
    parser.add_argument("--max-tokens", type=int, default=1, choices=[1, 2, 3, 4])
    parser.add_argument("--repeat", type=int, default=1, help="rounds of all concurrencies, alternating order")
    args = parser.parse_args(argv)

    from tests.helpers.fault_proxy import FaultProxy
    from tests.helpers.llama_server import llama_server

    with tempfile.TemporaryDirectory() as tmp, llama_server(Path(tmp) / "server.log") as server, \
            FaultProxy(server) as proxy:
        timed_run(server, 4, 1, args.max_tokens)  # warm the server's prompt cache, not timed
        proxy.delay_s = args.delay_ms / 1000
        walls: dict[int, list[float]] = {c: [] for c in args.concurrency}
        server_s: dict[int, list[float]] = {c: [] for c in args.concurrency}
        for r in range(args.repeat):
            order = args.concurrency if r % 2 == 0 else list(reversed(args.concurrency))
            for c in order:
                proxy.seen.clear()
                walls[c].append(timed_run(proxy.url, args.calls, c, args.max_tokens))
                # the server's share: time in the proxy beyond the added delay, summed (it is serial)
                server_s[c].append(sum(s.answered - s.arrived - proxy.delay_s for s in proxy.seen))

    slowest = max(statistics.median(w) for w in walls.values())
    print(f"{args.calls} chat calls (max_tokens={args.max_tokens}) through a loopback proxy adding "
          f"{args.delay_ms:.0f} ms each; median of {args.repeat} run(s)")
    print(f"{'calls':>6} {'concurrency':>12} {'wall s':>8} {'calls/s':>8} {'ratio':>6} {'server s':>9}")
    for c in args.concurrency:
        wall = statistics.median(walls[c])
        print(f"{args.calls:>6} {c:>12} {wall:>8.2f} {args.calls / wall:>8.1f} {slowest / wall:>5.1f}x "
              f"{statistics.median(server_s[c]):>9.2f}")


if __name__ == "__main__":
    main()
