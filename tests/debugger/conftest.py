import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("shieldkit_test_toy_classifier", Path(__file__).with_name("toy_classifier.py"))
toy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toy)
sys.modules[_spec.name] = toy  # test modules import it by this name


@pytest.fixture(scope="session")
def toy_classifier(tiny_runtime):
    return toy.ToyClassifier(tiny_runtime)


@pytest.fixture(scope="session")
def opaque_classifier(tiny_runtime):
    """Scores only: does not declare the gradients capability."""
    return toy.ToyClassifier(tiny_runtime, name="opaque", gradients=False)


@pytest.fixture(scope="session")
def double_runtime(tiny_runtime):
    """The tiny model in float64, for finite-difference checks (float32 cannot resolve them on a value of ~25)."""
    import copy

    from shieldkit.model.runtime import GemmaRuntime

    return GemmaRuntime(copy.deepcopy(tiny_runtime.model).double(), tiny_runtime.tokenizer, tiny_runtime.info)
