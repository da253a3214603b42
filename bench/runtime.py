"""Runtime benchmark: cold and cached start, float32 vs bfloat16, and the decoding paths side by side.

    flock /tmp/shieldkit-cpu.lock .venv/bin/python bench/runtime.py [--tokens 64] [--repeats 3] [--skip-starts]

Starts are timed as a user sees them: a fresh ``shieldkit model info`` process, wall clock, with an empty cache
folder for the cold start and the same folder again for cached starts.

The decoding table runs every ``decode`` mode (``shieldkit.model.decoding``) on the same loaded float32 model in
the same process, interleaved (reference, int8-head, int8, llama-cpp, reference, ...) so drifting load on the machine hits
each path alike. "decode" is completion tokens / whole generate() time (including the prompt's prefill), as the
earlier figures were measured. Greedy agreement: the first ``--match-tokens`` greedy tokens of each mode against
the reference, on ``MATCH_PROMPTS`` (continuations and chat turns as the runtime renders them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from shieldkit.model import GemmaRuntime, GenerationConfig, ModelSettings
from shieldkit.model.decoding import DECODE_MODES, greedy_ids

SHIELDKIT = str(Path(sys.executable).parent / "shieldkit")
PROMPT = "Write a short paragraph about the history of the printing press and why it mattered."
MODES = DECODE_MODES  # reference, int8-head, int8, llama-cpp (the last needs the llama-cpp extra)
MATCH_PROMPTS = (  # fixed; strings are continued, lists are chats
    "The capital of France is",
    "Once upon a time, in a small village by the sea,",
    "The three primary colours are",
    "To make a cup of tea, first",
    "Photosynthesis is the process by which",
    "def fibonacci(n):",
    "The most important thing about learning a new language is",
    "In 1969, astronauts",
    "My favourite season is autumn because",
    "A healthy breakfast could include",
    "The train was late again, so",
    "Water boils at",
    [{"role": "user", "content": "What is the capital of Italy?"}],
    [{"role": "user", "content": "Give me a tip for sleeping better."}],
    [{"role": "user", "content": "What is a guardrail in software?"}],
    [{"role": "user", "content": "Name three fruits."}],
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Why is the sea salty?"}],
    [{"role": "user", "content": "How do I boil an egg?"}],
    [{"role": "user", "content": "Write a haiku about rain."}],
    [{"role": "user", "content": "What does a cat eat?"}],
)


def timed_start(cache_dir: str) -> tuple[float, dict]:
    env = {**os.environ, "SHIELDKIT_CACHE_DIR": cache_dir, "SHIELDKIT_PROGRESS": "0", "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    out = subprocess.run([SHIELDKIT, "model", "info", "--json"], env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, json.loads(out.stdout)


def decode_speed(dtype: str, tokens: int, repeats: int) -> dict:
    runtime = GemmaRuntime.load(ModelSettings.create(dtype=dtype, decode="reference"), progress=False)
    prompt_ids = runtime.encode(PROMPT * 4)[:128]
    config = GenerationConfig(max_new_tokens=tokens)
    runtime.generate("warm up", GenerationConfig(max_new_tokens=4))
    rates, prefill = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        runtime.forward(prompt_ids)
        prefill.append(len(prompt_ids) / (time.perf_counter() - started))
        result = runtime.generate(PROMPT, config)
        rates.append(result.completion_tokens / result.seconds)
    return {"dtype": dtype, "decode_tok_s": statistics.median(rates), "prefill_tok_s": statistics.median(prefill)}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def prompt_greedy_ids(runtime: GemmaRuntime, prompt: str | list, tokens: int) -> list[int]:
    """The first ``tokens`` greedy tokens of a text or chat prompt through the runtime's decoding step."""
    ids = runtime.encode(prompt) if isinstance(prompt, str) else runtime.encode_chat(prompt)
    return greedy_ids(runtime.decode_step(), ids, tokens)


def decode_paths(tokens: int, repeats: int, match_tokens: int) -> None:
    base = GemmaRuntime.load(ModelSettings.create(decode="llama-cpp"), progress=False)  # finds the GGUF file
    base.forward("warm up")  # fault in the (memory-mapped) float weights first
    runtimes, built = {}, {}
    for mode in MODES:  # one float model, one runtime (and decoding copy) per mode
        before, started = rss_mb(), time.perf_counter()
        runtimes[mode] = GemmaRuntime(base.model, base.tokenizer, base.info, decode=mode, gguf=base.gguf)
        runtimes[mode].decode_step()
        built[mode] = (time.perf_counter() - started, rss_mb() - before)
    config = GenerationConfig(max_new_tokens=tokens)
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    for runtime in runtimes.values():
        runtime.generate("warm up", GenerationConfig(max_new_tokens=4))
    for _ in range(repeats):
        for mode, runtime in runtimes.items():
            result = runtime.generate(PROMPT, config)
            rates[mode].append(result.completion_tokens / result.seconds)
    reference = {i: prompt_greedy_ids(runtimes["reference"], p, match_tokens) for i, p in enumerate(MATCH_PROMPTS)}
    print(f"\n| decode | greedy decode, {tokens} tokens (tok/s, median of {repeats}) | × reference | "
          f"build (s) | added memory (MB) | prompts whose first {match_tokens} greedy tokens match "
          f"(of {len(MATCH_PROMPTS)}) | matching tokens before the first difference (mean) |")
    print("|---|---|---|---|---|---|---|")
    ref_rate = statistics.median(rates["reference"])
    for mode in MODES:
        same, prefix = 0, []
        for i, prompt in enumerate(MATCH_PROMPTS):
            ids = reference[i] if mode == "reference" else prompt_greedy_ids(runtimes[mode], prompt, match_tokens)
            common = next((k for k, (a, b) in enumerate(zip(ids, reference[i])) if a != b), match_tokens)
            same += common == match_tokens
            prefix.append(common)
        rate = statistics.median(rates[mode])
        seconds, memory = built[mode]
        print(f"| {mode} | {rate:.1f} | {rate / ref_rate:.2f} | {seconds:.1f} | {memory:.0f} | {same} | "
              f"{statistics.mean(prefix):.1f} |")
    print("\nall decode rates (tok/s):", {mode: [round(r, 1) for r in values] for mode, values in rates.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--match-tokens", type=int, default=32)
    parser.add_argument("--skip-starts", action="store_true", help="skip the cold and cached start timings")
    parser.add_argument("--skip-dtypes", action="store_true", help="skip the float32 vs bfloat16 table")
    args = parser.parse_args()
    print(f"# runtime benchmark: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if not args.skip_starts:
        with tempfile.TemporaryDirectory() as cache_dir:
            cold, info = timed_start(cache_dir)
            warm = [timed_start(cache_dir)[0] for _ in range(args.repeats)]
        print(f"\n{info['name']}, {info['parameters']:,} parameters\n")
        print("| start | wall clock (s) |\n|---|---|")
        print(f"| cold (empty cache: assemble GGUF, dequantize, write safetensors) | {cold:.1f} |")
        print(f"| cached (median of {args.repeats}) | {statistics.median(warm):.1f} |")
    if not args.skip_dtypes:
        print(f"\n| dtype (reference decode) | prefill, 128-token prompt (tok/s) | greedy decode, {args.tokens} tokens "
              "(tok/s) |\n|---|---|---|")
        for dtype in ("float32", "bfloat16"):
            row = decode_speed(dtype, args.tokens, args.repeats)
            print(f"| {dtype} | {row['prefill_tok_s']:.0f} | {row['decode_tok_s']:.1f} |")
    decode_paths(args.tokens, args.repeats, args.match_tokens)


if __name__ == "__main__":
    main()
