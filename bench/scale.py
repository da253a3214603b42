"""Scale-out bars: two proxy processes sharing one classifier scorer service, against the in-process scorer.

    flock /tmp/shieldkit-cpu.lock env HF_HUB_OFFLINE=1 .venv/bin/python bench/scale.py [--clients 32] [--duration 60]

All processes run on loopback, as in production: the stub upstream, one proxy with the classifiers in-process
(the baseline), one ``shieldkit serve-classifiers`` and two proxies pointed at it (``SHIELDKIT_PROXY_SCORER_URL``).
Printed, each from this one run:

- resident memory of each process: the remote proxies hold no model, the scorer holds one copy;
- ``/v1/check`` of one short text, the in-process proxy and a remote proxy interleaved request by request, every
  text distinct (so the score caches never answer): the p50 the remote scorer adds;
- two load runs: ``--clients`` clients split over the two remote proxies for ``--duration`` seconds each, first
  with the one chat message of ``bench/proxy.py``'s load run (the score cache answers), then with a distinct
  message per request (every check reaches the classifiers); errors and status codes, and the scorer's mean texts
  per classifier pass (``shieldkit_scorer_batch_texts``), which shows the two proxies' texts batched together.

On a 2-core machine every process shares the cores, so the load numbers are a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import tempfile
import time
from pathlib import Path

import httpx
from proxy import MESSAGE, PYTHON, Process, free_port, load_run, percentile, start_proxy, start_stub  # bench/proxy.py


def start_scorer() -> tuple[Process, str]:
    port = free_port()
    process = Process([PYTHON, "-m", "shieldkit", "serve-classifiers", "--port", str(port), "--log-level", "error"],
                      f"http://127.0.0.1:{port}/readyz")
    return process, f"http://127.0.0.1:{port}"


def short_texts(count: int) -> list[str]:
    """Distinct short everyday texts (about ten tokens each)."""
    things = ["the bus", "my tea", "the garden", "our cat", "the printer", "this recipe", "the weather", "my bike"]
    return [f"Quick question {i}: is {things[i % len(things)]} going to be fine today?" for i in range(count)]


def check_pair(bases: dict[str, str], texts: list[str], warmup: int = 10) -> dict:
    """``/v1/check`` p50/p99 per variant, interleaved text by text; each variant gets its own distinct texts."""
    times: dict[str, list[float]] = {name: [] for name in bases}
    statuses: dict[str, dict[int, int]] = {name: {} for name in bases}
    clients = {name: httpx.Client(base_url=base, timeout=60) for name, base in bases.items()}
    try:
        for index, text in enumerate(texts):
            for name, client in clients.items():
                started = time.perf_counter()
                response = client.post("/check", json={"text": f"{text} ({name})"})
                elapsed = (time.perf_counter() - started) * 1000
                statuses[name][response.status_code] = statuses[name].get(response.status_code, 0) + 1
                if index >= warmup:
                    times[name].append(elapsed)
    finally:
        for client in clients.values():
            client.close()
    return {name: {"p50_ms": round(percentile(t, 0.5), 2), "p99_ms": round(percentile(t, 0.99), 2),
                   "status_codes": statuses[name]} for name, t in times.items()}


def batch_mean(scorer: str) -> float | None:
    """Mean distinct texts per classifier pass so far, from the scorer's /metrics."""
    text = httpx.get(f"{scorer}/metrics", timeout=10).text
    total = re.search(r"^shieldkit_scorer_batch_texts_sum (\S+)$", text, re.M)
    count = re.search(r"^shieldkit_scorer_batch_texts_count (\S+)$", text, re.M)
    if not total or not count or float(count.group(1)) == 0:
        return None
    return round(float(total.group(1)) / float(count.group(1)), 2)


async def split_load(bases: list[str], clients: int, duration: float, distinct: bool) -> list[dict]:
    shares = [clients // len(bases) + (i < clients % len(bases)) for i in range(len(bases))]
    def distinct_message(proxy: int):
        return lambda n: f"{MESSAGE} (request {proxy}-{n})"  # every check reaches the classifiers

    runs = [load_run(base, share, duration, distinct_message(i)) if distinct else load_run(base, share, duration)
            for i, (base, share) in enumerate(zip(bases, shares))]
    return await asyncio.gather(*runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the load run")
    parser.add_argument("--checks", type=int, default=110, help="/v1/check requests per variant (10 are warm-up)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    results: dict = {}
    started = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            stub, upstream = start_stub()
            started.append(stub)
            local, local_url = start_proxy(upstream, None, Path(tmp) / "local.sqlite")
            started.append(local)
            scorer, scorer_url = start_scorer()
            started.append(scorer)
            env = {"SHIELDKIT_PROXY_SCORER_URL": scorer_url}
            remote = [start_proxy(upstream, None, Path(tmp) / f"remote{i}.sqlite", env=env) for i in range(2)]
            started += [process for process, _ in remote]
            results["memory_mb"] = {"in-process proxy": round(local.rss_mb()), "scorer service": round(scorer.rss_mb()),
                                    **{f"remote proxy {i + 1}": round(p.rss_mb()) for i, (p, _) in enumerate(remote)}}
            results["check_short_text"] = check_pair({"in-process": local_url, "remote": remote[0][1]},
                                                     short_texts(args.checks))
            local.stop()
            started.remove(local)
            bases = [url for _, url in remote]
            results["scorer_batch_texts_mean"] = {"before load": batch_mean(scorer_url)}
            results["load"] = asyncio.run(split_load(bases, args.clients, args.duration, distinct=False))
            results["load_distinct"] = asyncio.run(split_load(bases, args.clients, args.duration, distinct=True))
            results["scorer_batch_texts_mean"]["after both loads"] = batch_mean(scorer_url)
            results["memory_mb_after_load"] = {"scorer service": round(scorer.rss_mb()),
                                               **{f"remote proxy {i + 1}": round(p.rss_mb()) for i, (p, _) in enumerate(remote)}}
        finally:
            for process in started:
                process.stop()

    memory, check = results["memory_mb"], results["check_short_text"]
    added = round(check["remote"]["p50_ms"] - check["in-process"]["p50_ms"], 2)
    errors = sum(run["errors"] for run in results["load"] + results["load_distinct"])
    fleet = memory["scorer service"] + memory["remote proxy 1"] + memory["remote proxy 2"]
    results["bars"] = {
        "remote scorer adds to /v1/check p50 (ms), bar <= 5": added,
        f"errors, {args.clients} clients on two remote proxies, {args.duration:.0f} s repeated + {args.duration:.0f} s distinct, bar 0": errors,
        "two remote proxies + scorer (MB) vs two in-process proxies (MB)": [fleet, 2 * memory["in-process proxy"]],
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
