"""``shieldkit suggest``: which texts of an unlabelled pool to label next for a classifier (a CSV on stdout that,
once its label column is filled in, ``shieldkit train --data`` takes)."""

from __future__ import annotations

import argparse
import csv
import sys

from shieldkit.model.cli import add_model_arguments, settings_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    suggest = subparsers.add_parser(
        "suggest", help="rank an unlabelled pool by how much a label would help a classifier",
        description="Score every text of a CSV/JSONL pool with a classifier and print the N to label next, best "
        "first: the ones it is least sure about (near its threshold), spread over the pool, without "
        "near-duplicates. Rows that already have a label are skipped. Output: CSV with text, label (empty, to fill "
        "in), score, uncertainty and novelty.",
    )
    suggest.add_argument("--classifier", required=True, metavar="DIR|NAME", help="a saved folder or a default policy")
    suggest.add_argument("--pool", required=True, metavar="FILE", help="CSV or JSONL with a text column")
    suggest.add_argument("-n", type=int, default=20, help="how many texts to suggest (default 20)")
    suggest.add_argument("--text-column", default="text", help="name of the text column or key (default text)")
    suggest.add_argument("--label-column", default="label", help="name of the label column or key, if any")
    add_model_arguments(suggest)
    suggest.set_defaults(handler=run_suggest)


def run_suggest(args: argparse.Namespace) -> int:
    from shieldkit.classifiers.registry import load_classifier, resolve
    from shieldkit.debugger.pool import rank_for_labelling, read_pool
    from shieldkit.errors import DataError
    from shieldkit.model.runtime import GemmaRuntime

    if args.n < 1:
        raise DataError(f"-n must be >= 1, got {args.n}")
    resolve(args.classifier)  # a bad reference fails before the model loads
    rows = [row for row in read_pool(args.pool, text_column=args.text_column, label_column=args.label_column)
            if row.label is None]
    if not rows:
        raise DataError(f"{args.pool}: every row is labelled already; nothing to suggest")
    classifier = load_classifier(args.classifier, GemmaRuntime.load(settings_from_args(args)))
    texts = [row.text for row in rows]
    picks = rank_for_labelling(texts, classifier.score(texts), classifier.threshold, args.n)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["text", "label", "score", "uncertainty", "novelty"])
    for pick in picks:
        writer.writerow([pick.text, "", f"{pick.score:.4f}", f"{pick.uncertainty:.3f}", f"{pick.novelty:.3f}"])
    return 0
