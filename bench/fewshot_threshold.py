"""How a few-shot head's threshold holds up across training samples: one fold split vs repeated splits.

    flock /tmp/shieldkit-cpu.lock env HF_HUB_OFFLINE=1 SHIELDKIT_PROGRESS=0 .venv/bin/python bench/fewshot_threshold.py

Works on ETHOS's *pool* only (the comments the few-shot curve samples its training sets from), never on the curve's
fixed test split: each seed draws a training sample from the pool (balanced k, or "positives:negatives"), fits a head
on the safety model's first-window states with ``fit_head`` exactly as ``shieldkit train`` does, and scores the rest
of the pool. Seeds start at 100 so that no sample equals one of the curve's (seeds 0-2). Prints, per setting and
``cv_repeats``, the F1 on the pool remainder over seeds: mean, standard deviation, 10th percentile, minimum, and how
many seeds fell below 0.5 (a threshold that transferred badly).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ethos_curve import balanced, ethos  # noqa: E402


def sample(pool: np.ndarray, labels: np.ndarray, setting: str, seed: int) -> list[int]:
    if ":" not in setting:
        return balanced(pool, labels, int(setting), seed)
    positives, negatives = (int(part) for part in setting.split(":"))
    rng = np.random.default_rng(1000 + seed)
    return (list(rng.choice([int(i) for i in pool if labels[i] == 1], positives, replace=False))
            + list(rng.choice([int(i) for i in pool if labels[i] == 0], negatives, replace=False)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path,
                        default=os.environ.get("SHIELDKIT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--settings", default="10,16,8:24,24:8,64,50:150",
                        help="training samples: balanced sizes or positives:negatives (default %(default)s)")
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--repeats", default="1,5", help="cv_repeats values to compare (default %(default)s)")
    parser.add_argument("--rules", default="f1", help="threshold rules to compare (default %(default)s)")
    args = parser.parse_args()

    from sklearn.metrics import f1_score
    from tqdm import tqdm

    from shieldkit.classifiers import TrainingConfig, load_safety_model
    from shieldkit.classifiers.training import first_window_states, fit_head
    from shieldkit.model import GemmaRuntime, ModelSettings

    texts, labels, _, pool = ethos(args.data_root)
    runtime = GemmaRuntime.load(ModelSettings.create(model="embedded"), progress=False)
    states = first_window_states(load_safety_model(runtime), [texts[i] for i in pool])  # [P, D]
    index = {int(i): row for row, i in enumerate(pool)}
    variants = [(int(r), rule) for r in args.repeats.split(",") for rule in args.rules.split(",")]

    print("| training sample | cv_repeats | threshold rule | F1 mean | sd | p10 | min | seeds < 0.5 |")
    print("|---|---|---|---|---|---|---|---|")
    for setting in args.settings.split(","):
        f1 = {variant: [] for variant in variants}
        for seed in tqdm(range(100, 100 + args.seeds), desc=f"sample {setting}", file=sys.stderr):
            train = [index[i] for i in sample(pool, labels, setting, seed)]
            rest = np.setdiff1d(np.arange(len(pool)), train)
            x, y = states[train], labels[pool[train]]
            for r, rule in variants:
                fit = fit_head(x, y, TrainingConfig(seed=seed, cv_repeats=r, threshold_rule=rule))
                f1[r, rule].append(f1_score(labels[pool[rest]], fit.probabilities(states[rest]) >= fit.threshold))
        for r, rule in variants:
            v = np.array(f1[r, rule])
            print(f"| {setting} | {r} | {rule} | {v.mean():.3f} | {v.std():.3f} | {np.quantile(v, 0.1):.3f} | "
                  f"{v.min():.3f} | {int((v < 0.5).sum())} of {len(v)} |", flush=True)


if __name__ == "__main__":
    main()
