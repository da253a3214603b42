"""Debugger benchmark on the embedded Gemma 3 270M: saliency, integrated gradients, leave-one-out and attention
for a 128-token prompt with a 16-token target span, with the naive alternatives measured side by side.

    flock /tmp/shieldkit-cpu.lock .venv/bin/python bench/debugger.py [--repeats 3] [--model embedded]

Every row is the median wall-clock time of ``--repeats`` runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch

from shieldkit.debugger import ContinuationTarget, attention_maps, explain, logit_lens
from shieldkit.debugger.targets.language_model import token_logprobs
from shieldkit.model import GemmaRuntime, ModelSettings

# Written for this benchmark (no dataset text): long enough for 144 tokens.
TEXT = (
    "Safety classifiers for language model applications are usually trained on a few dozen labelled examples, "
    "so the people who write the policies need to see which words actually drive a decision. A debugger that "
    "highlights the tokens behind a score lets them spot shortcuts: a classifier that flags every message "
    "mentioning a weapon, even a museum label, or one that misses an insult because it is spelled with numbers. "
    "The same view explains why the base model continued a prompt the way it did, which matters when a guardrail "
    "depends on the model refusing politely rather than rambling on about something else entirely, and when a "
    "prompt injection hides inside a long retrieved document that nobody reads before it reaches the model. "
    "Attention maps add the other half of the story: which earlier words each position looked at, which heads "
    "simply park their attention on the first token, and how information flows through the layers."
)
PROMPT_TOKENS, TARGET_TOKENS = 128, 16


class FullLogitsTarget(ContinuationTarget):
    """The naive baseline: logits for every position and the whole vocabulary, then pick the span."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.span_positions = self.positions
        self.positions = torch.arange(len(self.document))

    def score_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return token_logprobs(logits[:, self.span_positions], self.target_ids).sum(-1)


def timed(action: Callable[[], object], repeats: int) -> float:
    action()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="embedded")
    args = parser.parse_args()
    runtime = GemmaRuntime.load(ModelSettings.create(model=args.model), progress=False)
    ids = runtime.encode(TEXT)
    if len(ids) < PROMPT_TOKENS + TARGET_TOKENS:
        raise SystemExit(f"benchmark text too short: {len(ids)} tokens")
    prompt, target_ids = ids[:PROMPT_TOKENS], ids[PROMPT_TOKENS : PROMPT_TOKENS + TARGET_TOKENS]
    target = ContinuationTarget(runtime, prompt, target_ids.tolist())
    naive = FullLogitsTarget(runtime, prompt, target_ids.tolist())
    quiet = {"progress": lambda done, total: None}
    print(f"# debugger benchmark: {runtime.info.name}, {platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), {runtime.info.dtype}; "
          f"{PROMPT_TOKENS}-token prompt + {TARGET_TOKENS}-token target span, median of {args.repeats}\n")
    rows: list[tuple[str, str, float, str]] = []

    def row(name: str, setting: str, seconds: float, goal: str = "") -> None:
        rows.append((name, setting, seconds, goal))
        print(f"  {name} [{setting}]: {seconds:.2f} s", flush=True)

    row("gradient × input", "logits at the 16 span positions only", timed(lambda: explain(target, "gradient_x_input", **quiet), args.repeats), "≤ 1.5 s")
    row("gradient × input", "naive: logits at all 144 positions", timed(lambda: explain(naive, "gradient_x_input", **quiet), args.repeats))
    row("gradient L2 norm", "logits at the span positions only", timed(lambda: explain(target, "gradient_norm", **quiet), args.repeats), "≤ 1.5 s")
    for batch in (16, 8, 4, 1):
        row("integrated gradients, 16 steps", f"batch {batch} path points per pass",
            timed(lambda: explain(target, "integrated_gradients", steps=16, batch_size=batch, **quiet), args.repeats),
            "≤ 10 s" if batch == 8 else "")
    gaps = {(baseline, steps): explain(target, "integrated_gradients", steps=steps, baseline=baseline, **quiet).completeness
            for baseline in ("zero", "pad") for steps in (16, 32, 64)}
    for batch in (16, 8):
        row("leave one out (143 tokens)", f"batch {batch}", timed(lambda: explain(target, "leave_one_out", batch_size=batch, **quiet), 1))
    row("attention, all 18 layers × 4 heads", "eager pass + rollout + sinks, 128 tokens", timed(lambda: attention_maps(runtime, prompt), args.repeats), "≤ 2 s")
    row("logit lens, 19 layers × 1 position", "top-5 per layer", timed(lambda: logit_lens(runtime, prompt), args.repeats))

    print("\n| computation | setting | seconds | target |\n|---|---|---|---|")
    for name, setting, seconds, goal in rows:
        print(f"| {name} | {setting} | {seconds:.2f} | {goal} |")
    print("\n| integrated gradients baseline | f(x) − f(baseline) | gap at 16 steps | 32 steps | 64 steps |\n|---|---|---|---|---|")
    for baseline, density in (("zero", 4), ("pad", 1)):
        first = gaps[(baseline, 16)]
        cells = " | ".join(f"{100 * gaps[(baseline, steps)].relative_gap:.1f}%" for steps in (16, 32, 64))
        print(f"| {baseline} (Gauss–Legendre, density {density}) | {first.target_value - first.baseline_value:.1f} | {cells} |")


if __name__ == "__main__":
    main()
