"""Shared fixtures. The tiny random Gemma serves unit tests; the real embedded Gemma 3 270M is loaded once per
session for the tests marked ``real_model`` (its conversion cache is built on first use)."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("SHIELDKIT_PROGRESS", "0")
# The default classifier precision, auto, is bfloat16 on CPUs with AMX, mixed with AVX512-BF16 and float32 elsewhere:
# the suite pins float32 so a score means the same on every machine; the precision tests ask for the others by name.
os.environ.setdefault("SHIELDKIT_CLASSIFIER_PRECISION", "float32")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_runtime():
    from shieldkit.model import GemmaRuntime, ModelSettings

    return GemmaRuntime.load(ModelSettings.create(model="tiny-random"), progress=False)


@pytest.fixture(scope="session")
def real_runtime():
    from shieldkit.model import GemmaRuntime, ModelSettings

    return GemmaRuntime.load(ModelSettings.create(model="embedded"), progress=False)
