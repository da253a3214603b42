"""Classifier cards: a Markdown page per classifier (intended use, training data and licences, metrics with the
sets named, known failure modes), written by ``shieldkit eval --card`` and shipped with every default policy."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shieldkit.classifiers.corpus import LICENCES, SETS

# Limits every Gemma 270M safety head shares (measured in BENCHMARKS.md; see the README's responsible deployment).
COMMON_LIMITS = (
    "English-first: the public training sets are mostly English; other languages are caught less often.",
    "Reads at most one window of text at a time (longer texts are scored window by window, the highest wins), so "
    "an instruction spread thinly over a long document can score low.",
    "Judges the text alone, not the conversation: a harmless-looking follow-up to a harmful exchange passes.",
    "Paraphrases and new jailbreak styles that resemble nothing in the training data can pass; red-team your own "
    "traffic and add what you find to your own examples.",
    "Small classifiers over-fire on text that only sounds risky (homonyms, history, safety questions); start in "
    "shadow mode (`action: flag`) and read the audit log before enforcing a custom policy.",
)


def _value(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _metrics_rows(name: str, metrics: Mapping[str, Any]) -> str:
    return (f"| {name} | {metrics.get('n', 'n/a')} | {metrics.get('positives', 'n/a')} | {_value(metrics.get('precision'))} "
            f"| {_value(metrics.get('recall'))} | {_value(metrics.get('false_positive_rate'))} | {_value(metrics.get('roc_auc'))} "
            f"| {_value(metrics.get('pr_auc'))} |")


def card_text(classifier, evaluations: Mapping[str, Mapping[str, Any]] | None = None,
              failure_modes: tuple[str, ...] = ()) -> str:
    """The card of ``classifier`` (a HeadClassifier); ``evaluations``: {set name: binary_metrics(...)}."""
    card, safety = classifier.card, classifier.safety.card
    lines = [f"# Classifier card: `{card.policy}`", "", "## Intended use", "",
             card.description or "(no description given)", "",
             f"Flags a text when its calibrated violation probability is at least **{card.threshold:.3f}**. "
             "Meant as one check of a guardrail (`shieldkit serve`) or a moderation endpoint, with a person reviewing "
             "what it flags; not for decisions about people.", "",
             "## Model", "",
             f"A linear head on the pooled state of shieldkit's safety model `{safety.fingerprint}`: "
             f"{safety.base_model.get('name')} {_layers(safety.start, safety.readout)}, states mean-pooled after layer "
             f"{safety.readout}; windows of {safety.max_tokens} tokens.", ""]
    lines += ["## Training data", ""]
    if card.training.get("joint"):
        lines += ["Trained jointly with the other default policies on public, permissively licensed sets (never on the "
                  "evaluation sets below; training rows that match them were dropped) plus team-written examples:", "",
                  "| set | licence |", "|---|---|"]
        lines += [f"| `{name}` | {LICENCES[name]} |" for name in SETS]
        lines += ["| team-written examples (`classifiers/policies/*/examples.jsonl`, `benign.jsonl`) | project licence |", ""]
        lines += [f"Threshold: {card.metrics.get('threshold_rule', 'n/a')}.", ""]
    else:
        data = card.data
        lines += [f"{data.get('n')} examples ({data.get('positives')} violating) from `{data.get('source')}` "
                  f"(sha256 `{str(data.get('sha256'))[:16]}…`). Threshold rule: {card.training.get('threshold_rule')} on "
                  f"{card.training.get('cv_folds')}-fold cross-validated scores{_repeats(card.training)}.", ""]
    lines += ["## Metrics", "", "| set | texts | violating | precision | recall | false-positive rate | ROC-AUC | PR-AUC |",
              "|---|---|---|---|---|---|---|---|"]
    held = card.metrics if card.training.get("joint") else card.metrics.get("cross_validated", {})
    lines.append(_metrics_rows("held-out split of the training data" if card.training.get("joint") else "cross-validated", held))
    for name, metrics in (evaluations or {}).items():
        lines.append(_metrics_rows(name, metrics))
    lines += ["", "## Known failure modes", ""]
    lines += [f"- {item}" for item in (*failure_modes, *COMMON_LIMITS)]
    return "\n".join(lines) + "\n"


def write_card(classifier, path: str | Path, evaluations: Mapping[str, Mapping[str, Any]] | None = None,
               failure_modes: tuple[str, ...] = ()) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(card_text(classifier, evaluations, failure_modes), encoding="utf-8")
    return path


def _repeats(training: dict) -> str:
    repeats = training.get("cv_repeats", 1)  # cards written before cv_repeats existed used one split
    return f", averaged over {repeats} fold splits" if repeats > 1 else ""


def _layers(start: int, readout: int) -> str:
    adapted = f"layers {start}-{readout - 1} with a shared LoRA"
    return f"layers 0-{start - 1} frozen, {adapted}" if start else adapted
