"""Guardrail proxy benchmark: latency the proxy adds, time-to-first-token added by streaming windows, and a load run.

    flock /tmp/shieldkit-cpu.lock .venv/bin/python bench/proxy.py [--requests 300] [--clients 32] [--duration 60]

Everything runs as separate processes on loopback, as in production: the stub upstream
(``python -m shieldkit.guardrails.upstream.stub``), the proxy (``shieldkit serve --upstream ...``, audit log on) and this
load generator. Baselines run side by side in the same run: the stub called directly, the proxy with no checks,
with the default policy's rules and PII checks only, and with the whole default policy (its seven classifiers run
on the embedded Gemma inside the proxy). Classifier micro-batching is measured in-process with the real default
classifiers. On a 2-core machine all processes share the cores, so the load numbers are a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PYTHON = sys.executable
NO_CHECKS = "version: 1\npolicies:\n  default:\n    refusal: Sorry.\n"
MESSAGE = ("Hi! Could you summarise the attached meeting notes for the team? Mail the summary to ann.lee@example.com "
           "and call me on +1 415 555 0132 if anything is unclear. Thanks a lot, it has been a long week.")
STREAM_REPLY = ("The quarterly numbers look solid overall. Revenue grew in every region, with the strongest gains in "
                "the north. Costs stayed flat, which lifted margins. The team recommends keeping the current plan. "
                "Questions can go to the finance channel.")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(url: str, popen: subprocess.Popen | None, log, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen is not None and popen.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"{' '.join(map(str, popen.args))} exited: {log.read().decode()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} never became ready")


class Process:
    def __init__(self, command: list[str], ready_url: str, env: dict[str, str] | None = None) -> None:
        env = {**os.environ, "SHIELDKIT_PROGRESS": "0", "HF_HUB_OFFLINE": "1", **(env or {})}
        self.log = tempfile.TemporaryFile()
        self.popen = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        wait_ready(ready_url, self.popen, self.log)

    def rss_mb(self) -> float:
        """Resident memory of the process and its children (uvicorn workers), in MB."""
        pids = [self.popen.pid] + [int(p) for p in Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children").read_text().split()]
        total = 0
        for pid in pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total / 1024

    def stop(self) -> None:
        self.popen.terminate()
        self.popen.wait(timeout=30)
        self.log.close()


def start_stub(token_delay: float = 0.0, prefix: str = "") -> tuple[Process, str]:
    port = free_port()
    process = Process([PYTHON, "-m", "shieldkit.guardrails.upstream.stub", "--port", str(port), "--token-delay",
                       str(token_delay), "--prefix", prefix], f"http://127.0.0.1:{port}/v1/models")
    return process, f"http://127.0.0.1:{port}/v1"


def start_proxy(upstream: str, policy: Path | None, audit: Path, workers: int = 1,
                env: dict[str, str] | None = None) -> tuple[Process, str]:
    port = free_port()
    command = [PYTHON, "-m", "shieldkit", "serve", "--upstream", upstream, "--port", str(port), "--audit", str(audit),
               "--log-level", "error", "--workers", str(workers)]
    if policy is not None:
        command += ["--policy", str(policy)]
    process = Process(command, f"http://127.0.0.1:{port}/readyz", env)
    return process, f"http://127.0.0.1:{port}/v1"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def sequential_latency(bases: dict[str, str], requests: int) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Milliseconds per non-streaming request, one at a time, variants interleaved request by request (so a noisy
    neighbour on the machine hits all of them alike), after a warm-up."""
    body = {"model": "stub", "messages": [{"role": "user", "content": MESSAGE}]}
    times: dict[str, list[float]] = {name: [] for name in bases}
    refused = {name: 0 for name in bases}  # blocked by a check (400 content_filter): still a timed answer
    clients = {name: httpx.Client(base_url=base, timeout=30) for name, base in bases.items()}
    try:
        for index in range(requests + 20):
            for name, client in clients.items():
                started = time.perf_counter()
                response = client.post("/chat/completions", json=body)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200 and response.json()["error"].get("code") != "content_filter":
                    response.raise_for_status()
                if index >= 20:
                    times[name].append(elapsed)
                    refused[name] += response.status_code != 200
    finally:
        for client in clients.values():
            client.close()
    return times, refused


def first_token_ms(base: str, repeats: int) -> dict[str, float]:
    """Streaming: time to the first content chunk and to the end, median over repeats."""
    body = {"model": "stub", "stream": True, "messages": [{"role": "user", "content": STREAM_REPLY}]}
    first, total = [], []
    with httpx.Client(base_url=base, timeout=60) as client:
        for _ in range(repeats):
            started, seen = time.perf_counter(), None
            with client.stream("POST", "/chat/completions", json=body) as response:
                for line in response.iter_lines():
                    if seen is None and line.startswith("data: {") and _content(line[6:]):
                        seen = time.perf_counter() - started
            first.append(seen * 1000)
            total.append((time.perf_counter() - started) * 1000)
    return {"ttft_ms": statistics.median(first), "total_ms": statistics.median(total)}


def _content(data: str) -> str:
    choices = json.loads(data).get("choices") or [{}]
    return (choices[0].get("delta") or {}).get("content") or ""


async def load_run(base: str, clients: int, duration: float, message=lambda n: MESSAGE) -> dict:
    """``clients`` concurrent chat clients for ``duration`` seconds; ``message(n)`` is the n-th request's text
    (by default always ``MESSAGE``, so the score cache answers after the first)."""
    latencies, errors, codes, sent = [], 0, {}, 0
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def worker() -> None:
            nonlocal errors, sent
            while time.perf_counter() < deadline:
                sent += 1
                body = {"model": "stub", "messages": [{"role": "user", "content": message(sent)}]}
                started = time.perf_counter()
                try:
                    response = await client.post("/chat/completions", json=body)
                    ok = response.status_code == 200 or (response.status_code == 400 and "content_filter" in response.text)
                    codes[response.status_code] = codes.get(response.status_code, 0) + 1
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {"requests": len(latencies), "errors": errors, "status_codes": codes, "seconds": round(elapsed, 1),
            "throughput_rps": round(len(latencies) / elapsed, 1), "p50_ms": round(percentile(latencies, 0.5), 1),
            "p99_ms": round(percentile(latencies, 0.99), 1)}


def counting_loader(holder: dict):
    """The real ``shieldkit.classifiers.load_bank``, with the bank's calls counted."""
    from shieldkit.classifiers import load_bank

    def load(refs, runtime):
        bank = load_bank(refs, runtime)
        score = bank.score
        holder["calls"] = 0

        def counted(texts, policies=None):
            holder["calls"] += 1
            return score(texts, policies)

        bank.score = counted
        return bank

    return load


def batching_run(concurrency: int, requests: int, max_texts: int, runtime, tmp_path: Path) -> dict:
    """/v1/check with the seven default classifiers per text, `concurrency` clients at once, in-process proxy."""
    from shieldkit.guardrails import ProxySettings, create_app
    from shieldkit.guardrails.upstream.stub import ServerThread

    names = ["hate", "harassment", "sexual", "violence", "self_harm", "dangerous", "prompt_injection"]
    policy = tmp_path / "classifiers.yaml"
    policy.write_text("policies:\n  default:\n    input:\n" + "".join(
        f"      - {{name: {n}, kind: classifier, classifier: {n}, action: flag}}\n" for n in names))
    holder: dict = {}
    settings = ProxySettings.create(policy=policy, upstream="http://127.0.0.1:9/v1", audit=False, batch_max_texts=max_texts)
    with ServerThread(create_app(settings, runtime=runtime, bank_loader=counting_loader(holder)), log_level="error") as server:
        wait_ready(server.url + "/readyz", None, None)
        texts = [f"Message {i}: {MESSAGE}" for i in range(requests)]

        async def run() -> tuple[list[float], float]:
            latencies, queue = [], list(texts)
            async with httpx.AsyncClient(base_url=server.url, timeout=300) as client:
                for _ in range(2):  # warm-up, not timed
                    (await client.post("/v1/check", json={"text": "warm-up " + MESSAGE})).raise_for_status()
                async def worker() -> None:
                    while queue:
                        text = queue.pop()
                        started = time.perf_counter()
                        response = await client.post("/v1/check", json={"text": text})
                        response.raise_for_status()
                        latencies.append((time.perf_counter() - started) * 1000)

                started = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                return latencies, time.perf_counter() - started

        latencies, seconds = asyncio.run(run())
    return {"texts_per_second": round(requests / seconds, 2), "p50_ms": round(percentile(latencies, 0.5)),
            "p99_ms": round(percentile(latencies, 0.99)), "bank_calls": holder["calls"] - 2}


def pii_quality(data_dir: Path) -> dict | None:
    """Recall and precision of the PII recognizers on Presidio's synthetic sentences (overlapping spans count)."""
    from shieldkit.guardrails.checks.pii_recognisers import find_pii

    path = data_dir / "presidio-pii" / "synth_dataset_v2.json"
    if not path.exists():
        print(f"skipping PII quality: {path} not found (--data)", file=sys.stderr)
        return None
    ours = {"EMAIL_ADDRESS": "EMAIL", "CREDIT_CARD": "CREDIT_CARD", "IBAN_CODE": "IBAN", "US_SSN": "US_SSN",
            "IP_ADDRESS": "IP_ADDRESS", "PHONE_NUMBER": "PHONE"}
    stats = {label: {"gold": 0, "found": 0, "hit": 0, "right": 0} for label in ours.values()}
    rows = json.loads(path.read_text())
    started = time.perf_counter()
    for row in rows:
        gold = [(s["start_position"], s["end_position"], ours[s["entity_type"]]) for s in row["spans"] if s["entity_type"] in ours]
        found = find_pii(row["full_text"])
        for start, end, label in gold:
            stats[label]["gold"] += 1
            stats[label]["hit"] += any(f.label == label and f.start < end and start < f.end for f in found)
        for f in found:
            stats[f.label]["found"] += 1
            stats[f.label]["right"] += any(f.label == g[2] and f.start < g[1] and g[0] < f.end for g in gold)
    seconds = time.perf_counter() - started
    table = {label: {"n": v["gold"], "recall": round(v["hit"] / v["gold"], 3) if v["gold"] else None,
                     "precision": round(v["right"] / v["found"], 3) if v["found"] else None} for label, v in stats.items()}
    return {"sentences": len(rows), "ms_per_sentence": round(seconds * 1000 / len(rows), 3), "entities": table}


def summarize(times: list[float]) -> dict:
    return {"p50_ms": round(percentile(times, 0.5), 2), "p99_ms": round(percentile(times, 0.99), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per latency variant")
    parser.add_argument("--stream-repeats", type=int, default=20)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per load run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="proxy worker processes per load run")
    parser.add_argument("--batching-requests", type=int, default=64, help="/v1/check requests per batching variant (0: skip)")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data",
                        help="the shared datasets folder (for PII quality)")
    args = parser.parse_args()

    from shieldkit.guardrails.policy import default_policy_path

    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    results["pii"] = pii_quality(args.data)
    print(json.dumps({"pii": results["pii"]}, indent=2), flush=True)
    default_text = default_policy_path().read_text()
    policies = {  # name -> policy text
        "no checks": NO_CHECKS,
        "rules + PII": "\n".join(line for line in default_text.splitlines() if "kind: classifier" not in line),
        "default policy": default_text,  # rules + PII + the seven default classifiers on the embedded Gemma
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)

        def policy_file(text: str) -> Path:
            path = tmp_path / f"{len(list(tmp_path.glob('*.yaml')))}.yaml"
            path.write_text(text)
            return path

        def windowed(text: str, window: str, tokens: int) -> str:
            return text.replace("window: sentence", f"window: {window}").replace("tokens: 32", f"tokens: {tokens}")

        stub, stub_url = start_stub()
        proxies = {name: start_proxy(stub_url, policy_file(text), tmp_path / f"l{i}.sqlite3")
                   for i, (name, text) in enumerate(policies.items())}
        try:
            bases = {"stub directly": stub_url, **{f"proxy, {name}": url for name, (_, url) in proxies.items()}}
            measured, refused = sequential_latency(bases, args.requests)
            direct = measured.pop("stub directly")
            latency = {"stub directly": summarize(direct)}
            for name, times in measured.items():
                latency[name] = {**summarize(times), "refused": refused[name],
                                 "added_p50_ms": round(percentile(times, 0.5) - percentile(direct, 0.5), 2),
                                 "added_p99_ms": round(percentile(times, 0.99) - percentile(direct, 0.99), 2)}
            results["latency"] = latency
            print(json.dumps({"latency": latency}, indent=2), flush=True)
        finally:
            for process, _ in proxies.values():
                process.stop()
            stub.stop()

        # Streaming: a stub that sends one word every 20 ms (about a 50 tok/s model), windows of each kind.
        stub, stub_url = start_stub(token_delay=0.02)
        variants = [("no checks, window sentence", NO_CHECKS),
                    ("rules + PII, window sentence", policies["rules + PII"]),
                    ("rules + PII, window tokens: 8", windowed(policies["rules + PII"], "tokens", 8)),
                    ("rules + PII, window tokens: 32", windowed(policies["rules + PII"], "tokens", 32)),
                    ("default policy, window sentence", default_text)]
        try:
            streaming = {"stub directly": first_token_ms(stub_url, args.stream_repeats)}
            for label, text in variants:
                process, url = start_proxy(stub_url, policy_file(text), tmp_path / "s.sqlite3")
                try:
                    measured = first_token_ms(url, args.stream_repeats)
                    measured["added_ttft_ms"] = round(measured["ttft_ms"] - streaming["stub directly"]["ttft_ms"], 1)
                    streaming[f"proxy, {label}"] = measured
                finally:
                    process.stop()
            results["streaming"] = streaming
            print(json.dumps({"streaming": streaming}, indent=2), flush=True)
        finally:
            stub.stop()

        stub, stub_url = start_stub()
        try:
            results["load"] = {"stub directly": asyncio.run(load_run(stub_url, args.clients, args.duration))}
            print(json.dumps(results["load"], indent=2), flush=True)
            runs = [("rules + PII", workers) for workers in args.workers] + [("default policy", 1)]
            for index, (name, workers) in enumerate(runs):
                process, url = start_proxy(stub_url, policy_file(policies[name]), tmp_path / f"load{index}.sqlite3",
                                           workers=workers)
                try:
                    idle = process.rss_mb()
                    run = asyncio.run(load_run(url, args.clients, args.duration))
                    run["proxy_rss_mb_idle"], run["proxy_rss_mb_after"] = round(idle, 1), round(process.rss_mb(), 1)
                    results["load"][f"proxy, {name}, {workers} worker(s)"] = run
                    print(json.dumps({f"{name}, {workers} worker(s)": run}, indent=2), flush=True)
                finally:
                    process.stop()
        finally:
            stub.stop()
        if args.batching_requests:
            from shieldkit.model import GemmaRuntime, ModelSettings

            runtime = GemmaRuntime.load(ModelSettings.create(model="embedded"), progress=False)
            batching = {}
            for label, concurrency, max_texts in (("1 client", 1, 32), ("16 clients, no cross-request batching", 16, 1),
                                                  ("16 clients, micro-batched", 16, 32)):
                batching[label] = batching_run(concurrency, args.batching_requests, max_texts, runtime, tmp_path)
                print(json.dumps({label: batching[label]}), flush=True)
            results["classifier_batching"] = batching
    print(json.dumps(results))


if __name__ == "__main__":
    main()
