"""Indirect injections for training: the corpus's own prompt-injection rows placed inside its benign documents.

Injections often arrive inside the data an app hands its model (an email, a web page, a code file), while most
public injection rows are bare user messages. ``carry_injections`` adds rows built only from the train split: a
benign document (every label allowed, at least ``MIN_CARRIER_CHARS`` long, from an everyday source or the team's
examples) with one injection row inserted at a line or sentence boundary, anywhere from its start to its end.
A new row takes the injection's labels (the document allows everything) and stays in the train split, so the
held-out calibration split is exactly what it was.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from shieldkit.classifiers.corpus import EVERYDAY_SOURCES, Corpus, build_corpus
from shieldkit.classifiers.registry import POLICY_ROOT

MIN_CARRIER_CHARS = 200  # shorter benign rows are messages, not documents
MAX_PAYLOAD_CHARS = 400  # longer injection rows are documents themselves
ORIGIN = "augmented/carried-injection"
_BOUNDARY = re.compile(r"(?<=[.!?])\s+|\n+")


def _carriers(corpus: Corpus, train: np.ndarray) -> np.ndarray:
    benign = (corpus.labels[train] == 0).all(axis=1)
    everyday = np.array([corpus.origin[i] in EVERYDAY_SOURCES or corpus.origin[i].startswith("examples/") for i in train])
    long = np.array([len(corpus.texts[i]) >= MIN_CARRIER_CHARS for i in train])
    return train[benign & everyday & long]


def _payloads(corpus: Corpus, train: np.ndarray, column: int) -> np.ndarray:
    injection = corpus.labels[train, column] == 1
    short = np.array([len(corpus.texts[i]) <= MAX_PAYLOAD_CHARS for i in train])
    return train[injection & short]


def insert(document: str, payload: str, rng: np.random.Generator) -> str:
    """``payload`` inside ``document`` at one of its boundaries (or its start or end), chosen by ``rng``."""
    cuts = [0, *(m.end() for m in _BOUNDARY.finditer(document)), len(document)]
    cut = cuts[int(rng.integers(len(cuts)))]
    before, after = document[:cut].rstrip(), document[cut:].lstrip()
    joiner = "\n\n" if rng.random() < 0.5 else " "
    return joiner.join(part for part in (before, payload.strip(), after) if part)


def carry_injections(corpus: Corpus, seed: int, count: int, policy: str = "prompt_injection") -> Corpus:
    """``corpus`` plus ``count`` injection rows carried inside benign documents (unchanged when either is missing)."""
    column = corpus.policies.index(policy)
    train = corpus.subset("train")
    carriers, payloads = _carriers(corpus, train), _payloads(corpus, train, column)
    if not len(carriers) or not len(payloads) or count < 1:
        return corpus
    rng = np.random.default_rng([seed, 7])
    documents, injections = rng.choice(carriers, count), rng.choice(payloads, count)
    texts = [insert(corpus.texts[d], corpus.texts[p], rng) for d, p in zip(documents, injections)]
    return Corpus(
        texts=corpus.texts + texts,
        labels=np.concatenate([corpus.labels, corpus.labels[injections]]),
        weights=np.concatenate([corpus.weights, np.ones(count, dtype=np.float32)]),
        split=np.concatenate([corpus.split, np.full(count, "train")]),
        origin=corpus.origin + [ORIGIN] * count,
        policies=corpus.policies,
        dropped=dict(corpus.dropped),
    )


def training_corpus(data_root: str | Path, examples_root: str | Path = POLICY_ROOT, seed: int = 0, *,
                    carried: int) -> Corpus:
    """The corpus plus ``carried`` carried injections (0: the corpus as built); the defaults' count is
    ``defaults.DEFAULT_CARRIED``."""
    corpus = build_corpus(data_root, examples_root, seed)
    return carry_injections(corpus, seed, carried) if carried else corpus
