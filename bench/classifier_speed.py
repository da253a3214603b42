"""Classifier speed: the seven default policies scored in float32, bfloat16, mixed and int8, beside one plain forward pass
of the whole embedded model, in the same run (issue 11, item 2).

    flock /tmp/shieldkit-cpu.lock env HF_HUB_OFFLINE=1 SHIELDKIT_PROGRESS=0 .venv/bin/python bench/classifier_speed.py

Measured, on the embedded Gemma 3 270M with the shipped safety model:

- one 64-token text scored against all seven default policies (``bank.score`` path, ``score_heads``): p50 and p90
  of each precision, and one plain forward of the whole model on the same ids (18 layers; last-token logits,
  as a generation prefill, and all-token logits), interleaved repeat by repeat so a noisy neighbour hits each alike;
- texts/s for batches of 8 and 32 short texts (the team's everyday messages), in each precision;
- the accuracy the 0.01 bar is about: max and mean |fast - float32| per policy and fast precision on the
  everyday messages and the harmful / injection texts of tests/classifiers (it does not depend on load).

Prints markdown tables with the bars (p50 <= 40 ms; p50 <= 0.7 x the forward) and the load average before and
after, so a contended run shows itself. ``--json FILE`` also writes the raw numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests" / "classifiers"
PARAGRAPH = ("The quarterly planning meeting covered the budget for the coming year, the hiring plan for the support "
             "team, and the schedule for moving the office to the new building in the spring. Everyone agreed to send "
             "their comments on the draft by Friday, and the finance team will share updated numbers next week so "
             "that the final plan can be approved before the end of the month.")
FAST = ("bfloat16", "mixed", "int8")  # the scoring copies compared with float32
BARS = {"p50_ms": 40.0, "ratio_to_forward": 0.7}  # issue 11: /v1/check of a 64-token text, all seven policies


def lines(name: str) -> list[str]:
    with (TESTS / name).open(encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle if line.strip() and not line.startswith("#")]


def text_of(runtime, tokens: int) -> str:
    """A fixed English text of exactly ``tokens`` tokens (without <bos>) for this tokenizer."""
    ids = runtime.encode(PARAGRAPH * 4, add_bos=False)[:tokens]
    text = runtime.decode(ids)
    if len(runtime.encode(text, add_bos=False)) != tokens:
        raise RuntimeError(f"the {tokens}-token text does not re-encode to {tokens} tokens")
    return text


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def single_text(runtime, bank, text: str, repeats: int) -> dict[str, list[float]]:
    """Seconds per call, the variants interleaved repeat by repeat."""
    from shieldkit.classifiers.safety import score_heads

    ids = runtime.encode(text)[None]  # [1, 65]: <bos> + 64 tokens
    heads = bank.classifiers

    def forward(keep: int):
        with torch.inference_mode(), runtime.lock:
            runtime.model(input_ids=ids, use_cache=False, logits_to_keep=keep)

    variants = {
        **{f"7 policies, {precision}": (lambda precision=precision: score_heads(bank.safety, heads, [text],
                                                                                precision=precision))
           for precision in ("float32", *FAST)},
        "full forward, last-token logits": lambda: forward(1),
        "full forward, all-token logits": lambda: forward(0),
    }
    for fn in variants.values():  # warm-up, not timed
        fn()
        fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            times[name].append(timed(fn))
    return times


def throughput(bank, texts: list[str], batch: int, repeats: int) -> dict[str, float]:
    """texts/s scoring ``texts`` in calls of ``batch`` texts, the precisions interleaved; median over repeats."""
    from shieldkit.classifiers.safety import score_heads

    chunks = [texts[i:i + batch] for i in range(0, len(texts) - batch + 1, batch)]
    rates: dict[str, list[float]] = {precision: [] for precision in ("float32", *FAST)}
    for _ in range(repeats):
        for precision in rates:
            seconds = timed(lambda: [score_heads(bank.safety, bank.classifiers, chunk, precision=precision)
                                     for chunk in chunks])
            rates[precision].append(len(chunks) * batch / seconds)
    return {precision: statistics.median(values) for precision, values in rates.items()}


def accuracy(bank, precision: str) -> dict[str, dict[str, float]]:
    """Per policy: max and mean |score in ``precision`` - float32 score| and the decisions that flip."""
    from shieldkit.classifiers.safety import score_heads

    texts = lines("everyday_messages.txt") + lines("harmful_messages.txt")
    reference = score_heads(bank.safety, bank.classifiers, texts, precision="float32")
    fast = score_heads(bank.safety, bank.classifiers, texts, precision=precision)
    out = {}
    for name, classifier in bank.classifiers.items():
        gaps = [abs(a - b) for a, b in zip(reference[name], fast[name])]
        flips = sum((a >= classifier.threshold) != (b >= classifier.threshold) and abs(a - classifier.threshold) > 0.01
                    for a, b in zip(reference[name], fast[name]))
        out[name] = {"max": max(gaps), "mean": statistics.mean(gaps), "flips": flips, "texts": len(texts)}
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per single-text variant (default 30)")
    parser.add_argument("--batch-repeats", type=int, default=3, help="passes over the texts per batch size (default 3)")
    parser.add_argument("--tokens", type=int, default=64, help="tokens in the single text (default 64)")
    parser.add_argument("--json", metavar="FILE", help="also write the raw numbers here")
    args = parser.parse_args(argv)

    from shieldkit.classifiers import load_bank
    from shieldkit.model import GemmaRuntime, ModelSettings

    load_before = os.getloadavg()
    runtime = GemmaRuntime.load(ModelSettings.create(model="embedded"), progress=False)
    bank = load_bank(None, runtime)
    build = {precision: timed(lambda precision=precision: bank.safety.scoring_layers(precision)) for precision in FAST}
    text = text_of(runtime, args.tokens)
    results: dict = {"machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                                 "load_before": load_before}, "build_seconds": build}

    times = single_text(runtime, bank, text, args.repeats)
    forward = statistics.median(times["full forward, last-token logits"])
    results["single"] = {name: {"p50_ms": 1000 * percentile(values, 0.5), "p90_ms": 1000 * percentile(values, 0.9)}
                         for name, values in times.items()}
    print(f"\n### One {args.tokens}-token text, all seven default policies ({args.repeats} interleaved repeats)\n")
    print("| what | p50 (ms) | p90 (ms) | p50 / full forward (last-token logits) | bars |")
    print("|---|---|---|---|---|")
    for name, values in times.items():
        p50 = statistics.median(values)
        bars = ""
        if name.startswith("7 policies"):
            ok_ms, ok_ratio = 1000 * p50 <= BARS["p50_ms"], p50 / forward <= BARS["ratio_to_forward"]
            bars = f"<= 40 ms {'✓' if ok_ms else '✗'}, <= 0.7 x {'✓' if ok_ratio else '✗'}"
        print(f"| {name} | {1000 * p50:.1f} | {1000 * percentile(values, 0.9):.1f} | {p50 / forward:.2f} | {bars} |")

    short = lines("everyday_messages.txt")
    print("\n### Short texts (the team's everyday messages) in batches: texts/s\n")
    print("| batch | float32 | " + " | ".join(FAST) + " | " + " | ".join(f"{p} / float32" for p in FAST) + " |")
    print("|---|---|" + "---|" * (2 * len(FAST)))
    results["throughput"] = {}
    for batch in (8, 32):
        rates = throughput(bank, short, batch, args.batch_repeats)
        results["throughput"][batch] = rates
        print(f"| {batch} | {rates['float32']:.1f} | " + " | ".join(f"{rates[p]:.1f}" for p in FAST) + " | "
              + " | ".join(f"{rates[p] / rates['float32']:.2f}" for p in FAST) + " |")

    results["accuracy"] = {}
    for precision in FAST:
        measured = results["accuracy"][precision] = accuracy(bank, precision)
        n = next(iter(measured.values()))["texts"]
        print(f"\n### |{precision} - float32| on the calibrated probability ({n} texts: everyday + harmful/injection); "
              "bar <= 0.01\n")
        print("| policy | max | mean | flipped decisions (float score > 0.01 from the threshold) |")
        print("|---|---|---|---|")
        for name, values in measured.items():
            print(f"| {name} | {values['max']:.4f} {'✓' if values['max'] <= 0.01 else '✗'} | {values['mean']:.4f} | "
                  f"{values['flips']} |")

    results["machine"]["load_after"] = os.getloadavg()
    print(f"\ncopies built in {', '.join(f'{p} {t:.2f} s' for p, t in build.items())}; torch threads {torch.get_num_threads()}; load average before "
          f"{load_before[0]:.2f}, after {results['machine']['load_after'][0]:.2f} (above ~0.5 the timings are contended)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
