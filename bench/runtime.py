"""Runtime benchmark: cold start (uncached conversion), cached start, and decoding speed in float32 vs bfloat16.

    .venv/bin/python bench/runtime.py [--tokens 64] [--repeats 3]

Starts are timed as a user sees them: a fresh ``shieldkit model info`` process, wall clock, with an empty cache
folder for the cold start and the same folder again for cached starts.
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

SHIELDKIT = str(Path(sys.executable).parent / "shieldkit")
PROMPT = "Write a short paragraph about the history of the printing press and why it mattered."


def timed_start(cache_dir: str) -> tuple[float, dict]:
    env = {**os.environ, "SHIELDKIT_CACHE_DIR": cache_dir, "SHIELDKIT_PROGRESS": "0", "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    out = subprocess.run([SHIELDKIT, "model", "info", "--json"], env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, json.loads(out.stdout)


def decode_speed(dtype: str, tokens: int, repeats: int) -> dict:
    runtime = GemmaRuntime.load(ModelSettings.create(dtype=dtype), progress=False)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"# runtime benchmark: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as cache_dir:
        cold, info = timed_start(cache_dir)
        warm = [timed_start(cache_dir)[0] for _ in range(args.repeats)]
    print(f"\n{info['name']}, {info['parameters']:,} parameters\n")
    print("| start | wall clock (s) |\n|---|---|")
    print(f"| cold (empty cache: assemble GGUF, dequantize, write safetensors) | {cold:.1f} |")
    print(f"| cached (median of {args.repeats}) | {statistics.median(warm):.1f} |")
    print(f"\n| dtype | prefill, 128-token prompt (tok/s) | greedy decode, {args.tokens} tokens (tok/s) |\n|---|---|---|")
    for dtype in ("float32", "bfloat16"):
        row = decode_speed(dtype, args.tokens, args.repeats)
        print(f"| {dtype} | {row['prefill_tok_s']:.0f} | {row['decode_tok_s']:.1f} |")


if __name__ == "__main__":
    main()
