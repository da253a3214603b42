"""``shieldkit train``, ``classify``, ``eval`` and ``train-defaults``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shieldkit.errors import DataError
from shieldkit.model.cli import add_model_arguments, settings_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train", help="train a few-shot safety classifier from labelled examples",
        description="Fit a new policy head on the shared safety model from a CSV/JSONL file with text and label "
        "columns (1 = violates the policy, 0 = allowed; 16-100 examples are enough) and save it as a folder.",
    )
    train.add_argument("--data", required=True, metavar="FILE", help="CSV or JSONL with text and label")
    train.add_argument("--policy", required=True, metavar="NAME", help="the policy's name, e.g. spoilers")
    train.add_argument("--description", default="", metavar="TEXT", help="one paragraph: what the policy forbids and allows")
    train.add_argument("--out", required=True, metavar="DIR", help="folder to save the classifier in")
    _add_training_arguments(train)
    _add_column_arguments(train)
    _add_safety_argument(train)
    add_model_arguments(train)
    train.set_defaults(handler=run_train)

    classify = subparsers.add_parser(
        "classify", help="score texts with a classifier",
        description="Print one JSON line per text: {policy, score, threshold, flagged, text}. Texts come from the "
        "arguments, or from stdin as JSON lines ({\"text\": ...} or a JSON string) or plain lines.",
    )
    classify.add_argument("texts", nargs="*", metavar="TEXT", help="texts to score (default: read stdin)")
    classify.add_argument("--classifier", required=True, metavar="DIR|NAME", help="a saved folder or a default policy")
    classify.add_argument("--threshold", type=_probability, help="override the classifier's calibrated threshold (0-1)")
    classify.add_argument("--lines", action="store_true", help="read every stdin line as plain text, also lines "
                          "that start with { or \"")
    _add_safety_argument(classify)
    add_model_arguments(classify)
    classify.set_defaults(handler=run_classify)

    evaluate = subparsers.add_parser(
        "eval", help="measure a classifier on labelled data",
        description="Precision, recall, F1, ROC-AUC, PR-AUC, the threshold and the confusion matrix.",
    )
    evaluate.add_argument("--classifier", required=True, metavar="DIR|NAME", help="a saved folder or a default policy")
    evaluate.add_argument("--data", required=True, metavar="FILE", help="CSV or JSONL with text and label")
    evaluate.add_argument("--threshold", type=_probability, help="override the classifier's calibrated threshold (0-1)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--plot", metavar="FILE.png", help="write a precision-recall and calibration plot "
                          "(.png, .svg or .pdf)")
    evaluate.add_argument("--card", metavar="FILE.md", help="write a classifier card (intended use, data, metrics, limits)")
    _add_column_arguments(evaluate)
    _add_safety_argument(evaluate)
    add_model_arguments(evaluate)
    evaluate.set_defaults(handler=run_eval)

    defaults = subparsers.add_parser(
        "train-defaults", help="retrain the safety model and the default policies",
        description="Retrain the shared safety model and the default policy heads (hate, harassment, ...) from "
        "../shared/data/training and classifiers/policies/*/examples.jsonl into the package (or --out-dir). "
        "About 75 minutes on 2 CPU cores; the frozen layers' states are kept in the model cache, so a rerun on "
        "the same corpus takes about 60.",
    )
    defaults.add_argument("--data-root", metavar="DIR", help="the public data folder (default: $SHIELDKIT_DATA, "
                          "else ../shared/data beside the project)")
    defaults.add_argument("--out-dir", metavar="DIR", help="write <DIR>/safety_model and <DIR>/<policy> instead of "
                          "the package folders")
    add_model_arguments(defaults)
    defaults.set_defaults(handler=run_train_defaults)


def _probability(value: str) -> float:
    """argparse type of --threshold: a calibrated probability, so 0 to 1 (not a percentage)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0.0 <= number <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{value} is not a probability from 0 to 1")
    return number


def _add_training_arguments(parser: argparse.ArgumentParser) -> None:
    from shieldkit.classifiers.config import THRESHOLD_RULE_NAMES, TrainingConfig

    default = TrainingConfig()
    group = parser.add_argument_group("training")
    group.add_argument("--seed", type=int, help=f"seed for the fold splits (default {default.seed})")
    group.add_argument("--folds", type=int, help=f"cross-validation folds for threshold and calibration (default {default.cv_folds})")
    group.add_argument("--repeats", type=int, help=f"cross-validation repeats averaged per example (default {default.cv_repeats})")
    group.add_argument("--c", type=float, help="inverse L2 strength of the head (default: chosen by cross-validation)")
    group.add_argument("--threshold-rule", choices=THRESHOLD_RULE_NAMES,
                       help=f"how cross-validated scores set the threshold (default {default.threshold_rule})")


def _add_safety_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--safety-model", metavar="DIR", help="a safety model folder (default: the committed one, "
                        "trained on the embedded Gemma)")


def _safety(args: argparse.Namespace, runtime):
    from shieldkit.classifiers.registry import load_safety_model

    return load_safety_model(runtime, args.safety_model)


def _add_column_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text-column", default="text", help="name of the text column or key (default text)")
    parser.add_argument("--label-column", default="label", help="name of the label column or key (default label)")


def _training_config(args: argparse.Namespace):
    from shieldkit.classifiers.config import TrainingConfig

    values = {"seed": args.seed, "cv_folds": args.folds, "cv_repeats": args.repeats, "c": args.c,
              "threshold_rule": args.threshold_rule}
    return TrainingConfig(**{key: value for key, value in values.items() if value is not None})


def _runtime(args: argparse.Namespace):
    from shieldkit.model.runtime import GemmaRuntime

    return GemmaRuntime.load(settings_from_args(args))


def run_train(args: argparse.Namespace) -> int:
    from shieldkit.classifiers.data import load_examples
    from shieldkit.classifiers.training import train_classifier

    from shieldkit.classifiers.storage import check_head_target

    config = _training_config(args)
    check_head_target(args.out)  # before minutes of training, not after
    data = load_examples(args.data, text_column=args.text_column, label_column=args.label_column)
    for note in data.duplicates:
        print(f"shieldkit: duplicate: {data.source}: {note}", file=sys.stderr)
    runtime = _runtime(args)
    classifier = train_classifier(data, runtime, policy=args.policy, description=args.description, config=config,
                                  safety=_safety(args, runtime))
    classifier.save(args.out)
    cv = classifier.card.metrics["cross_validated"]
    print(
        f"saved {classifier.name!r} to {args.out}: {len(data)} examples, threshold {classifier.threshold:.3f}, "
        f"cross-validated F1 {cv['f1']:.3f}, ROC-AUC {_num(cv['roc_auc'])}, {classifier.card.metrics['seconds']:.0f} s"
    )
    return 0


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _read_stdin_texts(plain: bool = False) -> list[str]:
    """Texts from stdin (UTF-8, a byte-order mark allowed): plain lines, or JSON lines (a string or {"text": ...})
    where a line starts with ``{`` or ``"``, unless ``plain``."""
    try:
        content = sys.stdin.buffer.read().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"stdin is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    texts = []
    for number, line in enumerate(content.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        stripped = line.strip()
        if not plain and stripped[0] in "{\"":
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError as exc:
                raise DataError(f"stdin line {number}: invalid JSON ({exc.msg}); pass --lines to read every line "
                                "as plain text") from None
            if isinstance(value, dict):
                if not isinstance(value.get("text"), str):
                    raise DataError(f"stdin line {number}: a JSON object needs a string 'text'")
                value = value["text"]
            if not isinstance(value, str):
                raise DataError(f"stdin line {number}: expected a JSON string or an object with 'text'")
            texts.append(value)
        else:
            texts.append(line)
    return texts


def run_classify(args: argparse.Namespace) -> int:
    from shieldkit.classifiers.base import decide
    from shieldkit.classifiers.registry import load_classifier, resolve

    resolve(args.classifier)  # a bad reference fails before the model loads
    texts = list(args.texts) if args.texts else _read_stdin_texts(args.lines)
    if not texts:
        raise DataError("no texts: give TEXT arguments or JSON lines on stdin")
    runtime = _runtime(args)
    classifier = load_classifier(args.classifier, runtime, safety=_safety(args, runtime))
    for text, decision in zip(texts, decide(classifier, texts, args.threshold)):
        print(json.dumps({"policy": decision.policy, "score": round(decision.score, 6), "threshold": round(decision.threshold, 6),
                          "flagged": decision.flagged, "text": text}, ensure_ascii=False))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from shieldkit.classifiers.data import load_examples
    from shieldkit.classifiers.evaluation import binary_metrics, format_report, plot_curves
    from shieldkit.classifiers.registry import load_classifier, resolve

    resolve(args.classifier)
    _check_outputs(args)
    data = load_examples(args.data, text_column=args.text_column, label_column=args.label_column, both_classes=False)
    for note in data.duplicates:
        print(f"shieldkit: duplicate: {data.source}: {note}", file=sys.stderr)
    runtime = _runtime(args)
    classifier = load_classifier(args.classifier, runtime, safety=_safety(args, runtime))
    threshold = classifier.threshold if args.threshold is None else args.threshold
    scores = classifier.score(data.texts)
    metrics = binary_metrics(data.labels, scores, threshold)
    metrics["policy"] = classifier.name
    print(json.dumps(metrics) if args.json else format_report(metrics, f"{classifier.name} on {args.data}"))
    try:  # after printing, so a file that cannot be written loses no measurement
        if args.plot:
            plot_curves(data.labels, scores, threshold, args.plot, f"{classifier.name} on {Path(args.data).name}")
        if args.card:
            from shieldkit.classifiers.cards import write_card

            write_card(classifier, args.card, {Path(args.data).name: metrics})
    except OSError as exc:
        raise DataError(f"cannot write {exc.filename or 'the output'}: {exc.strerror or exc}") from None
    if not args.json:
        for label, value in (("plot", args.plot), ("card", args.card)):
            if value:
                print(f"  {label:<10} {value}")
    return 0


def _check_outputs(args: argparse.Namespace) -> None:
    """--plot and --card, checked before the model loads and the data is scored."""
    from shieldkit.classifiers.evaluation import PLOT_SUFFIXES

    if args.plot and Path(args.plot).suffix.lower() not in PLOT_SUFFIXES:
        raise DataError(f"--plot {args.plot}: the file name must end in {', '.join(PLOT_SUFFIXES)}")
    for flag, value in (("--plot", args.plot), ("--card", args.card)):
        if value and Path(value).is_dir():
            raise DataError(f"{flag} {value} is a folder; give a file name")


def run_train_defaults(args: argparse.Namespace) -> int:
    import os

    from shieldkit.classifiers.defaults import train_defaults
    from shieldkit.model.runtime import GemmaRuntime

    data_root = args.data_root or os.environ.get("SHIELDKIT_DATA") or str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    settings = settings_from_args(args)
    runtime = GemmaRuntime.load(settings)
    safety, heads, folders = train_defaults(runtime, data_root, args.out_dir,
                                            cache_dir=settings.resolved_cache_dir / "trunk-states")
    print(f"safety model: saved to {folders['safety model']} ({safety.card.metrics['seconds']:.0f} s)")
    for name, classifier in heads.items():
        m = classifier.card.metrics
        print(f"{name}: saved to {folders[name]} (threshold {classifier.threshold:.3f}; held-out recall {m['recall']:.3f}, "
              f"ROC-AUC {_num(m['roc_auc'])}, PR-AUC {_num(m['pr_auc'])})")
    return 0
