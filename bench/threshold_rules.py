"""Threshold rules for the default heads compared on the held-out split of two or more training runs.

    # held-out and reserve raw log-odds of a trained bank (default: the committed one), about 7 minutes on 2 cores
    flock /tmp/shieldkit-cpu.lock env HF_HUB_OFFLINE=1 .venv/bin/python bench/threshold_rules.py dump seed0.npz
    flock /tmp/shieldkit-cpu.lock env HF_HUB_OFFLINE=1 .venv/bin/python bench/threshold_rules.py dump seed1.npz --bank RUN_DIR
    .venv/bin/python bench/threshold_rules.py compare seed0.npz seed1.npz

A rule is judged out of sample: the held-out rows and the reserve rows (``reserve.py``) are each split in two
fixed halves; Platt scaling and the threshold are fitted on one half and measured on the other, both ways, for
every run. Printed per rule, as means over the policies and fits: recall (R), the pooled benign false-positive
rate (F), the worst everyday source's false-positive rate (W, over its held-out and reserve rows in the half,
sources with >= 50); the worst single policy's F and W (Fmax, Wmax); and the seed gap (S: the spread of recall
between runs with the rule fitted on the whole split). Only the training data is read, no evaluation set. The
committed rule is ``calibration.benign_threshold`` with the reserve ("per source + reserve"); the others are the
alternatives tried (BENCHMARKS.md, "Threshold rules on two seeds").
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from shieldkit.classifiers.calibration import PROBABILITY_FLOOR, benign_threshold, fpr_threshold
from shieldkit.classifiers.corpus import EVERYDAY_SOURCES, UNKNOWN
from shieldkit.classifiers.evaluation import fit_platt
from shieldkit.classifiers.reserve import by_source

BUDGET = 0.01


def _everyday(sources: np.ndarray, min_rows: int) -> list[np.ndarray]:
    return [sources == name for name in sorted(set(sources.tolist()) & set(EVERYDAY_SOURCES))
            if (sources == name).sum() >= min_rows]


def _per_source(budget_of):
    """The pooled budget and each everyday source with >= 100 rows on its own, at the budget ``budget_of(rows)``."""
    def rule(p: np.ndarray, sources: np.ndarray, reserve: dict) -> float:
        cut = fpr_threshold(p, BUDGET)
        for rows in _everyday(sources, 100):
            cut = max(cut, fpr_threshold(p[rows], budget_of(int(rows.sum()))))
        return max(cut, PROBABILITY_FLOOR)
    return rule


def _mean_over_sources(pooled: bool):
    """The lowest cut whose false-positive rate, averaged over the everyday sources with >= 20 rows (each weighing
    the same), is within the budget; with ``pooled``, the budget on all rows must hold too."""
    def rule(p: np.ndarray, sources: np.ndarray, reserve: dict) -> float:
        levels = np.unique(p)[::-1]  # candidate cuts, descending: flagging more levels only raises each rate
        def share(scores):
            return (len(scores) - np.searchsorted(np.sort(scores), levels, side="left")) / len(scores)
        ok = np.mean([share(p[rows]) for rows in _everyday(sources, 20)], axis=0) <= BUDGET
        if pooled:
            ok &= share(p) <= BUDGET
        flagged = int(ok.sum())  # ok is True for a prefix of the levels
        cut = 0.0 if flagged >= len(levels) else (
            (levels[flagged] + levels[flagged - 1]) / 2 if flagged else min(1.0, levels[0] + 1e-3))
        return max(float(cut), PROBABILITY_FLOOR)
    return rule


RULES = {
    "per source": lambda p, s, reserve: benign_threshold(p, s, BUDGET)[0],
    "per source + reserve": lambda p, s, reserve: benign_threshold(p, s, BUDGET, reserve)[0],
    "per source, >= 3 false positives": _per_source(lambda n: max(np.floor(BUDGET * n), 3) / n),
    "per source, >= 5 false positives": _per_source(lambda n: max(np.floor(BUDGET * n), 5) / n),
    "per source at 3 %": _per_source(lambda n: 0.03),
    "pooled only": lambda p, s, reserve: max(fpr_threshold(p, BUDGET), PROBABILITY_FLOOR),
    "mean over everyday sources": _mean_over_sources(pooled=False),
    "pooled + mean over everyday sources": _mean_over_sources(pooled=True),
}


def dump(out: Path, bank: Path | None, data_root: Path) -> None:
    from shieldkit.classifiers.augment import training_corpus
    from shieldkit.classifiers.calibration import held_out_logodds
    from shieldkit.classifiers.defaults import DEFAULT_CARRIED
    from shieldkit.classifiers.registry import DEFAULT_POLICIES, POLICY_ROOT, SAFETY_ROOT, default_policy
    from shieldkit.classifiers.reserve import benign_reserve
    from shieldkit.classifiers.storage import load_head, load_safety
    from shieldkit.model import GemmaRuntime, ModelSettings

    runtime = GemmaRuntime.load(ModelSettings.create(model="embedded", classifier_precision="float32"), progress=False)
    safety = load_safety(bank / "safety_model" if bank else SAFETY_ROOT, runtime)
    heads = {name: load_head(bank / name if bank else default_policy(name).classifier, safety).head
             for name in DEFAULT_POLICIES}
    corpus = training_corpus(data_root, POLICY_ROOT, carried=DEFAULT_CARRIED)
    reserve = benign_reserve(data_root, corpus)
    held = corpus.subset("calibration")
    z = held_out_logodds(safety, heads, [corpus.texts[i] for i in held])
    z_reserve = held_out_logodds(safety, heads, reserve.texts)
    np.savez(out, z=z, labels=corpus.labels[held], origin=np.array(corpus.origin)[held],
             z_reserve=z_reserve, reserve_origin=np.array(reserve.origin), policies=np.array(list(DEFAULT_POLICIES)))
    print(f"{len(held)} held-out and {len(reserve)} reserve rows of corpus {corpus.fingerprint()[:12]} -> {out}")


def _probabilities(calibration, z: np.ndarray) -> np.ndarray:
    return calibration.apply(torch.from_numpy(z)).numpy()  # as calibrate_heads computes them


def _halves(rows: int, salt: str) -> np.ndarray:
    return np.array([int(hashlib.sha256(f"{salt}{i}".encode()).hexdigest(), 16) % 2 == 0 for i in range(rows)], dtype=bool)


class _Run:
    """One policy's held-out and reserve scores of one run, restricted to some rows."""

    def __init__(self, run, column: int, held: np.ndarray, kept: np.ndarray) -> None:
        labels = run["labels"][held]
        self.z, self.y = run["z"][held, column], labels[:, column]
        self.benign, self.sources = (labels == 0).all(axis=1), run["origin"][held]
        self.z_reserve, self.reserve_origin = run["z_reserve"][kept, column], run["reserve_origin"][kept]

    def fit(self, rule):
        known = self.y != UNKNOWN
        calibration = fit_platt(self.z[known], self.y[known])
        reserve = by_source(_probabilities(calibration, self.z_reserve), self.reserve_origin)
        return calibration, rule(_probabilities(calibration, self.z[self.benign]), self.sources[self.benign], reserve)

    def measure(self, calibration, cut):
        """(recall, pooled held-out benign FPR, worst everyday source's FPR over its held-out and reserve rows)."""
        p, reserve = _probabilities(calibration, self.z), _probabilities(calibration, self.z_reserve)
        flagged, sources = p[self.benign] >= cut, self.sources[self.benign]
        rates = []
        for name in sorted(set(EVERYDAY_SOURCES)):
            own = np.concatenate([flagged[sources == name], reserve[self.reserve_origin == name] >= cut])
            if len(own) >= 50:
                rates.append(np.mean(own))
        return np.mean(p[self.y == 1] >= cut), np.mean(flagged), max(rates)


def compare(paths: list[Path]) -> None:
    runs = [np.load(path, allow_pickle=False) for path in paths]
    policies = [str(name) for name in runs[0]["policies"]]
    rows, reserve_rows = len(runs[0]["origin"]), len(runs[0]["reserve_origin"])
    half, reserve_half = _halves(rows, ""), _halves(reserve_rows, "reserve")
    every, every_reserve = np.ones(rows, bool), np.ones(reserve_rows, bool)
    print(f"{len(runs)} runs, {rows} held-out and {reserve_rows} reserve rows, budget {BUDGET:g}, "
          f"floor {PROBABILITY_FLOOR:g}\n")
    print("| rule | R | F | W | Fmax | Wmax | S | thresholds per run |\n|---|---|---|---|---|---|---|---|")
    for name, rule in RULES.items():
        measured, gaps, fmax, wmax, cuts = [], [], [], [], []
        for column, policy in enumerate(policies):
            recalls, mine = [], []
            for run in runs:
                for held, kept in ((half, reserve_half), (~half, ~reserve_half)):
                    fitted = _Run(run, column, held, kept).fit(rule)
                    mine.append(_Run(run, column, ~held, ~kept).measure(*fitted))
                whole = _Run(run, column, every, every_reserve)
                fitted = whole.fit(rule)
                recalls.append(whole.measure(*fitted)[0])
                cuts.append(f"{fitted[1]:.2f}")
            measured += mine
            gaps.append(max(recalls) - min(recalls))
            fmax.append(np.mean([m[1] for m in mine]))
            wmax.append(np.mean([m[2] for m in mine]))
        r, f, w = np.mean(measured, axis=0)
        per_policy = " ".join(f"{p[:4]} {'/'.join(cuts[i * len(runs):(i + 1) * len(runs)])}" for i, p in enumerate(policies))
        print(f"| {name} | {r:.3f} | {f:.4f} | {w:.4f} | {max(fmax):.4f} | {max(wmax):.4f} | {np.mean(gaps):.3f} | {per_policy} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    dumping = commands.add_parser("dump", help="held-out raw log-odds of a trained bank")
    dumping.add_argument("out", type=Path)
    dumping.add_argument("--bank", type=Path, help="a train-defaults output folder (default: the committed bank)")
    dumping.add_argument("--data-root", type=Path,
                         default=os.environ.get("SHIELDKIT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    comparing = commands.add_parser("compare", help="compare the rules on two or more dumps")
    comparing.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.out, args.bank, Path(args.data_root))
    else:
        compare(args.runs)


if __name__ == "__main__":
    main()
