"""Fixtures for the classifier tests: a small synthetic policy trained on the tiny random Gemma (fast)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The project root's sibling ../shared/data holds the public datasets; SHIELDKIT_DATA overrides it.
DATA_ROOT = Path(os.environ.get("SHIELDKIT_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))

TOY_PAIRS = [
    *[(f"I hate the {group} people and want them all gone", 1) for group in ("green", "blue", "tall", "short", "loud", "quiet")],
    *[(f"We should drive every {group} family out of town", 1) for group in ("green", "blue", "tall", "short")],
    *[(f"I really like {thing} on a sunny afternoon", 0) for thing in ("cats", "tea", "music", "gardens", "cycling", "books")],
    *[(f"The recipe needs two cups of {thing}", 0) for thing in ("flour", "milk", "rice", "water")],
]


@pytest.fixture(scope="session")
def toy_config():
    from shieldkit.classifiers import TrainingConfig

    return TrainingConfig(epochs=2, seed=3)


@pytest.fixture(scope="session")
def toy_classifier(tiny_runtime, toy_config):
    from shieldkit.classifiers import train_classifier

    return train_classifier(TOY_PAIRS, tiny_runtime, policy="toy", description="Toy policy: hostility to groups.",
                            config=toy_config)


@pytest.fixture(scope="session")
def toy_folder(toy_classifier, tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy") / "toy-classifier"
    toy_classifier.save(folder)
    return folder
