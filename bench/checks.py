"""The classifier checks' bars: check latency against a plain forward pass, added chat latency, added time to first
token when streaming, throughput under 16 clients, and fairness while another client floods the moderations API.

    flock /tmp/shieldkit-cpu.lock env HF_HUB_OFFLINE=1 .venv/bin/python bench/checks.py [--requests 100]

The proxy (``shieldkit serve``, the default policy: seven classifiers on the input, six on the output, on the
embedded Gemma in the proxy) and the stub upstream run as separate processes on loopback; this script is the
client. Every text sent is distinct (the proxy's score cache would otherwise answer repeats at once), and the stub
puts a prefix before each echo so an answer is never the text its message was. One plain forward pass of the whole
embedded model on the same texts runs in this process after the proxy measurements, with the proxy idle.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path

import httpx
from proxy import percentile, start_proxy, start_stub  # bench/proxy.py: the same processes and helpers

SENTENCES = [
    "I spent the morning repotting the tomatoes on the balcony.", "The bus was late again, so I walked to work.",
    "Could you suggest a simple recipe with chickpeas and spinach?", "My daughter starts school next week.",
    "We are planning a short trip to the coast in May.", "The meeting moved to Thursday afternoon.",
    "Please check the spreadsheet before you send it to the client.", "The new library opens at nine.",
    "I am trying to learn the basics of watercolour painting.", "Our neighbour lent us a ladder for the gutters.",
    "What is a good way to store fresh herbs?", "The film was longer than I expected but worth it.",
    "I need to renew my passport before the summer.", "The team finished the report a day early.",
    "Can you explain how compound interest works?", "It snowed a little overnight and the roads are icy.",
    "I would like to start running twice a week.", "The café on the corner makes excellent croissants.",
    "Remind me to call the dentist tomorrow.", "We watched the match at my brother's place.",
    "How long should I rest bread dough before baking?", "The printer on the second floor is out of toner.",
    "I finally finished the puzzle we started at Christmas.", "The garden needs watering twice a day in July.",
    "Is it better to rent or buy a bike for a week?", "My laptop fan gets loud when I join video calls.",
    "The museum has a new exhibition about the Vikings.", "I am looking for a present for my grandmother.",
    "The train to the airport leaves every fifteen minutes.", "Could you translate this menu into English?",
]
PREFIX = "Here is what you wrote, back to you: "


def distinct_texts(tokenizer, count: int, tokens: int, seed: int) -> list[str]:
    """``count`` distinct texts of exactly ``tokens`` tokens: shuffled everyday sentences, cut to length."""
    rng, texts = random.Random(seed), []
    while len(texts) < count:
        words = " ".join(rng.sample(SENTENCES, len(SENTENCES)))
        text = tokenizer.decode(tokenizer(words, add_special_tokens=False)["input_ids"][:tokens]).strip()
        if text not in texts:
            texts.append(text)
    return texts


def timed(client: httpx.Client, path: str, body: dict) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.post(path, json=body)
    return (time.perf_counter() - started) * 1000, response


def check_latency(base: str, texts: list[str]) -> dict:
    with httpx.Client(base_url=base, timeout=300) as client:
        measured = [timed(client, "/check", {"text": text}) for text in texts]
    client_ms = [ms for ms, _ in measured]
    server_ms = [r.json()["latency_ms"] for _, r in measured]
    return {"client_p50_ms": round(percentile(client_ms, 0.5), 2), "client_p99_ms": round(percentile(client_ms, 0.99), 2),
            "server_p50_ms": round(percentile(server_ms, 0.5), 2), "errors": sum(r.status_code != 200 for _, r in measured)}


def chat_latency(bases: dict[str, str], texts: list[str]) -> dict:
    """Non-streaming chat, variants interleaved request by request (so drift hits every variant alike). Latencies
    are of answered (200) requests only: a refused message skips the upstream and the output check, so counting it
    would make the checks look cheaper than they are (the status codes say how many were refused)."""
    times: dict[str, list[float]] = {name: [] for name in bases}
    statuses: dict[str, dict[int, int]] = {name: {} for name in bases}
    clients = {name: httpx.Client(base_url=base, timeout=300) for name, base in bases.items()}
    try:
        for text in texts:
            for name, client in clients.items():
                ms, response = timed(client, "/chat/completions", {"model": "stub", "messages": [{"role": "user", "content": text}]})
                if response.status_code == 200:
                    times[name].append(ms)
                statuses[name][response.status_code] = statuses[name].get(response.status_code, 0) + 1
    finally:
        for client in clients.values():
            client.close()
    return {name: {"p50_ms": round(percentile(t, 0.5), 2), "p99_ms": round(percentile(t, 0.99), 2),
                   "status_codes": statuses[name]} for name, t in times.items()}


def first_token(base: str, texts: list[str]) -> tuple[float, int]:
    """(median ms from sending a streaming chat request to its first content token, streams refused before any
    content): refused streams carry no first token, so the median is over the others."""
    firsts = []
    with httpx.Client(base_url=base, timeout=300) as client:
        for text in texts:
            started = time.perf_counter()
            body = {"model": "stub", "stream": True, "messages": [{"role": "user", "content": text}]}
            first = None
            with client.stream("POST", "/chat/completions", json=body) as response:
                for line in response.iter_lines():  # read to the end: the stream finishes before the next request
                    if first is None and line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                        first = (time.perf_counter() - started) * 1000
            if first is not None:
                firsts.append(first)
    return round(percentile(firsts, 0.5), 1), len(texts) - len(firsts)


async def throughput(base: str, texts: list[str], clients: int) -> dict:
    """``clients`` concurrent clients checking distinct texts, one per request, until the texts run out."""
    queue, codes = list(reversed(texts)), {}
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=httpx.Limits(max_connections=clients)) as client:
        async def worker() -> None:
            while queue:
                response = await client.post("/check", json={"text": queue.pop()})
                codes[response.status_code] = codes.get(response.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {"texts": len(texts), "seconds": round(elapsed, 2), "texts_per_s": round(codes.get(200, 0) / elapsed, 1),
            "status_codes": codes}


async def fairness(base: str, batches: list[list[str]], singles: list[str]) -> dict:
    """One client sends 16-text moderation batches back to back; another sends single chat requests meanwhile."""
    codes: dict[str, dict[int, int]] = {"moderations": {}, "chat": {}}
    latencies, stop = [], asyncio.Event()
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        async def flood() -> None:
            for batch in batches:
                if stop.is_set():
                    return
                response = await client.post("/moderations", json={"input": batch})
                codes["moderations"][response.status_code] = codes["moderations"].get(response.status_code, 0) + 1

        async def single() -> None:
            await asyncio.sleep(1.0)  # the flood is under way
            for text in singles:
                started = time.perf_counter()
                response = await client.post("/chat/completions", json={"model": "stub", "messages": [{"role": "user", "content": text}]})
                latencies.append((time.perf_counter() - started) * 1000)
                codes["chat"][response.status_code] = codes["chat"].get(response.status_code, 0) + 1
            stop.set()

        await asyncio.gather(flood(), single())
    return {"chat_p50_ms": round(percentile(latencies, 0.5), 1), "chat_p99_ms": round(percentile(latencies, 0.99), 1),
            "status_codes": codes}


def forward_ms(runtime, texts: list[str]) -> float:
    """p50 of one plain forward pass of the whole embedded model (all layers, the last token's logits)."""
    import torch

    times = []
    with torch.inference_mode():
        for text in texts:
            ids = runtime.encode(text)[None]
            started = time.perf_counter()
            runtime.model(input_ids=ids, logits_to_keep=1)
            times.append((time.perf_counter() - started) * 1000)
    return round(percentile(times, 0.5), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="sequential requests per latency measurement")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--throughput-texts", type=int, default=640)
    args = parser.parse_args()

    from shieldkit.guardrails.policy import default_policy_path
    from shieldkit.model import GemmaRuntime, ModelSettings

    runtime = GemmaRuntime.load(ModelSettings.create(model="embedded"), progress=False)  # idle until the end
    tokenizer = runtime.tokenizer
    n = args.requests
    check_texts = distinct_texts(tokenizer, n, 64, seed=1)
    chat_texts = distinct_texts(tokenizer, n, 50, seed=2)
    stream_texts = distinct_texts(tokenizer, max(10, n // 5), 50, seed=3)
    load_texts = distinct_texts(tokenizer, args.throughput_texts, 24, seed=4)
    flood = distinct_texts(tokenizer, 16 * 200, 24, seed=5)
    singles = distinct_texts(tokenizer, max(4, n), 24, seed=6)
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        policy = tmp_path / "default.yaml"
        policy.write_text(default_policy_path().read_text())
        plain = tmp_path / "plain.yaml"
        plain.write_text("version: 1\npolicies:\n  default:\n    refusal: Sorry.\n")
        stub, stub_url = start_stub(prefix=PREFIX)
        checked, checked_url = start_proxy(stub_url, policy, tmp_path / "a.sqlite3")
        unchecked, unchecked_url = start_proxy(stub_url, plain, tmp_path / "b.sqlite3")
        try:
            results["check_64_tokens"] = check_latency(checked_url, check_texts)
            print(json.dumps({"check_64_tokens": results["check_64_tokens"]}), flush=True)
            results["chat"] = chat_latency({"stub directly": stub_url, "proxy, no checks": unchecked_url,
                                            "proxy, default policy": checked_url}, chat_texts)
            print(json.dumps({"chat": results["chat"]}), flush=True)
            results["throughput"] = asyncio.run(throughput(checked_url, load_texts, args.clients))
            print(json.dumps({"throughput": results["throughput"]}), flush=True)
            idle = chat_latency({"idle": checked_url}, singles[: len(singles) // 2])["idle"]
            busy = asyncio.run(fairness(checked_url, [flood[i : i + 16] for i in range(0, len(flood), 16)],
                                        singles[len(singles) // 2 :]))
            results["fairness"] = {"idle_chat_p50_ms": idle["p50_ms"], **busy}
            print(json.dumps({"fairness": results["fairness"]}), flush=True)
        finally:
            checked.stop()
            unchecked.stop()
            stub.stop()
        slow_stub, slow_url = start_stub(token_delay=0.02, prefix=PREFIX)  # one word per 20 ms: about 50 tok/s
        streaming, streaming_url = start_proxy(slow_url, policy, tmp_path / "c.sqlite3")
        try:
            direct, _ = first_token(slow_url, stream_texts)
            proxied, refused = first_token(streaming_url, [f"{t} (again)" for t in stream_texts])
            results["streaming"] = {"stub_ttft_ms": direct, "proxy_ttft_ms": proxied,
                                    "added_ttft_ms": round(proxied - direct, 1), "refused": refused}
        finally:
            streaming.stop()
            slow_stub.stop()
        print(json.dumps({"streaming": results["streaming"]}), flush=True)
    results["forward_64_tokens_p50_ms"] = forward_ms(runtime, check_texts)
    report(results)


def report(r: dict) -> None:
    check, chat, fair = r["check_64_tokens"], r["chat"], r["fairness"]
    added_p50 = chat["proxy, default policy"]["p50_ms"] - chat["stub directly"]["p50_ms"]
    added_p99 = chat["proxy, default policy"]["p99_ms"] - chat["stub directly"]["p99_ms"]
    ratio = check["client_p50_ms"] / r["forward_64_tokens_p50_ms"]
    served_503 = sum(codes.get(503, 0) for codes in fair["status_codes"].values())
    rows = [
        ("/v1/check, 64 tokens, 7 policies: p50 (ms)", f"{check['client_p50_ms']:.1f}", "<= 40", check["client_p50_ms"] <= 40),
        ("  ... / one plain forward pass of the model "
         f"({r['forward_64_tokens_p50_ms']:.1f} ms)", f"{ratio:.2f}", "<= 0.7", ratio <= 0.7),
        ("chat, added p50 (ms)", f"{added_p50:.1f}", "<= 100", added_p50 <= 100),
        ("chat, added p99 (ms)", f"{added_p99:.1f}", "<= 250", added_p99 <= 250),
        ("streaming at 50 tok/s, added first token (ms)", f"{r['streaming']['added_ttft_ms']:.1f}", "<= 150",
         r["streaming"]["added_ttft_ms"] <= 150),
        ("distinct texts, 16 clients (texts/s)", f"{r['throughput']['texts_per_s']:.1f}", ">= 40",
         r["throughput"]["texts_per_s"] >= 40),
        ("fairness: chat p99 under a moderation flood / idle p50",
         f"{fair['chat_p99_ms'] / fair['idle_chat_p50_ms']:.2f}", "<= 3", fair["chat_p99_ms"] <= 3 * fair["idle_chat_p50_ms"]),
        ("fairness: 503 answers in the run", str(served_503), "0", served_503 == 0),
    ]
    codes = chat["proxy, default policy"]["status_codes"]
    print(f"\nrefused by the default policy (not timed): {sum(v for k, v in codes.items() if str(k) != '200')} of "
          f"{sum(codes.values())} chat requests, {r['streaming']['refused']} streams")
    print("\n| measure | measured | bar | |\n|---|---|---|---|")
    for name, value, bar, ok in rows:
        print(f"| {name} | {value} | {bar} | {'✓' if ok else '✗'} |")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
