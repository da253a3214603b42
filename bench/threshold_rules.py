"""Threshold rules for the default heads compared on the held-out split of two or more training runs.

    # the held-out raw log-odds of a trained bank (default: the committed one), about 5 minutes on 2 cores
    flock /tmp/shieldkit-cpu.lock env HF_HUB_OFFLINE=1 .venv/bin/python bench/threshold_rules.py dump seed0.npz
    flock /tmp/shieldkit-cpu.lock env HF_HUB_OFFLINE=1 .venv/bin/python bench/threshold_rules.py dump seed1.npz --bank RUN_DIR
    .venv/bin/python bench/threshold_rules.py compare seed0.npz seed1.npz

A rule is judged out of sample: the held-out rows are split in two fixed halves; Platt scaling and the threshold
are fitted on one half and measured on the other, both ways, for every run. Printed per rule, as means over the
policies and fits: recall (R), the pooled benign false-positive rate (F), the worst everyday source's
false-positive rate (W, sources with >= 50 rows in the half); the worst single policy's F and W (Fmax, Wmax); and
the seed gap (S: the spread of recall between runs with the rule fitted on the whole split). Only the training
corpus's held-out split is read, no evaluation set. The committed rule is ``calibration.benign_threshold`` ("per
source"); the others are the alternatives tried against it (BENCHMARKS.md, "Threshold rules on two seeds").
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import torch

from shieldkit.classifiers.calibration import PROBABILITY_FLOOR, fpr_threshold
from shieldkit.classifiers.corpus import EVERYDAY_SOURCES, UNKNOWN
from shieldkit.classifiers.evaluation import fit_platt

BUDGET = 0.01


def _everyday(sources: np.ndarray, min_rows: int) -> list[np.ndarray]:
    return [sources == name for name in sorted(set(sources.tolist()) & set(EVERYDAY_SOURCES))
            if (sources == name).sum() >= min_rows]


def _per_source(budget_of):
    """The pooled budget and each everyday source with >= 100 rows on its own, at the budget ``budget_of(rows)``
    (``budget_of = BUDGET`` is the committed rule)."""
    def rule(p: np.ndarray, sources: np.ndarray) -> float:
        cut = fpr_threshold(p, BUDGET)
        for rows in _everyday(sources, 100):
            cut = max(cut, fpr_threshold(p[rows], budget_of(int(rows.sum()))))
        return max(cut, PROBABILITY_FLOOR)
    return rule


def _mean_over_sources(pooled: bool):
    """The lowest cut whose false-positive rate, averaged over the everyday sources with >= 20 rows (each weighing
    the same), is within the budget; with ``pooled``, the budget on all rows must hold too."""
    def rule(p: np.ndarray, sources: np.ndarray) -> float:
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
    "per source (committed)": _per_source(lambda n: BUDGET),
    "per source, >= 3 false positives": _per_source(lambda n: max(np.floor(BUDGET * n), 3) / n),
    "per source, >= 5 false positives": _per_source(lambda n: max(np.floor(BUDGET * n), 5) / n),
    "per source at 3 %": _per_source(lambda n: 0.03),
    "pooled only": lambda p, s: max(fpr_threshold(p, BUDGET), PROBABILITY_FLOOR),
    "mean over everyday sources": _mean_over_sources(pooled=False),
    "pooled + mean over everyday sources": _mean_over_sources(pooled=True),
}


def dump(out: Path, bank: Path | None) -> None:
    from shieldkit.classifiers.augment import training_corpus
    from shieldkit.classifiers.calibration import held_out_logodds
    from shieldkit.classifiers.defaults import DEFAULT_CARRIED
    from shieldkit.classifiers.registry import DEFAULT_POLICIES, POLICY_ROOT, SAFETY_ROOT, default_policy
    from shieldkit.classifiers.storage import load_head, load_safety
    from shieldkit.model import GemmaRuntime, ModelSettings

    data_root = Path(__file__).resolve().parents[2] / "shared" / "data"
    runtime = GemmaRuntime.load(ModelSettings.create(model="embedded", classifier_precision="float32"), progress=False)
    safety = load_safety(bank / "safety_model" if bank else SAFETY_ROOT, runtime)
    heads = {name: load_head(bank / name if bank else default_policy(name).classifier, safety).head
             for name in DEFAULT_POLICIES}
    corpus = training_corpus(data_root, POLICY_ROOT, carried=DEFAULT_CARRIED)
    held = corpus.subset("calibration")
    z = held_out_logodds(safety, heads, [corpus.texts[i] for i in held])
    np.savez(out, z=z, labels=corpus.labels[held], origin=np.array(corpus.origin)[held],
             policies=np.array(list(DEFAULT_POLICIES)))
    print(f"{len(held)} held-out rows of corpus {corpus.fingerprint()[:12]} -> {out}")


def _probabilities(calibration, z: np.ndarray) -> np.ndarray:
    return calibration.apply(torch.from_numpy(z)).numpy()  # as calibrate_heads computes them


def _fit(z, y, benign, sources, rule):
    known = y != UNKNOWN
    calibration = fit_platt(z[known], y[known])
    return calibration, rule(_probabilities(calibration, z[benign]), sources[benign])


def _measure(calibration, cut, z, y, benign, sources):
    p = _probabilities(calibration, z)
    recall = np.mean(p[y == 1] >= cut)
    flagged = p[benign] >= cut
    worst = max(np.mean(flagged[rows]) for rows in _everyday(sources[benign], 50))
    return recall, np.mean(flagged), worst


def compare(paths: list[Path]) -> None:
    runs = [np.load(path, allow_pickle=False) for path in paths]
    policies = [str(name) for name in runs[0]["policies"]]
    rows = len(runs[0]["origin"])
    half = np.array([int(hashlib.sha256(str(i).encode()).hexdigest(), 16) % 2 == 0 for i in range(rows)])
    print(f"{len(runs)} runs, {rows} held-out rows, budget {BUDGET:g}, floor {PROBABILITY_FLOOR:g}\n")
    print("| rule | R | F | W | Fmax | Wmax | S | thresholds per run |\n|---|---|---|---|---|---|---|---|")
    for name, rule in RULES.items():
        measured, gaps, fmax, wmax, cuts = [], [], [], [], []
        for column, policy in enumerate(policies):
            recalls, pooled, worst = [], [], []
            for run in runs:
                z, labels, sources = run["z"][:, column], run["labels"], run["origin"]
                y, benign = labels[:, column], (labels == 0).all(axis=1)
                for train in (half, ~half):
                    fitted = _fit(z[train], y[train], benign[train], sources[train], rule)
                    measured.append(_measure(*fitted, z[~train], y[~train], benign[~train], sources[~train]))
                    pooled.append(measured[-1][1])
                    worst.append(measured[-1][2])
                fitted = _fit(z, y, benign, sources, rule)
                recalls.append(_measure(*fitted, z, y, benign, sources)[0])
                cuts.append(f"{fitted[1]:.2f}")
            gaps.append(max(recalls) - min(recalls))
            fmax.append(np.mean(pooled))
            wmax.append(np.mean(worst))
        r, f, w = np.mean(measured, axis=0)
        per_policy = " ".join(f"{p[:4]} {'/'.join(cuts[i * len(runs):(i + 1) * len(runs)])}" for i, p in enumerate(policies))
        print(f"| {name} | {r:.3f} | {f:.4f} | {w:.4f} | {max(fmax):.4f} | {max(wmax):.4f} | {np.mean(gaps):.3f} | {per_policy} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    dumping = commands.add_parser("dump", help="held-out raw log-odds of a trained bank")
    dumping.add_argument("out", type=Path)
    dumping.add_argument("--bank", type=Path, help="a train-defaults output folder (default: the committed bank)")
    comparing = commands.add_parser("compare", help="compare the rules on two or more dumps")
    comparing.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.out, args.bank)
    else:
        compare(args.runs)


if __name__ == "__main__":
    main()
