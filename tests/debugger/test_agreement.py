import dataclasses

import pytest

from shieldkit.debugger import ContinuationTarget, explain, method_agreement
from shieldkit.errors import ConfigError

QUIET = {"progress": lambda done, total: None}


@pytest.fixture(scope="module")
def results(tiny_runtime):
    target = ContinuationTarget(tiny_runtime, "A fox, tired of running, found a warm", " den")
    return {m: explain(target, m, **QUIET) for m in ("gradient_x_input", "integrated_gradients", "gradient_norm")}


def test_a_result_agrees_with_itself(results):
    same = method_agreement(results["gradient_x_input"], results["gradient_x_input"])
    assert same.rank_correlation == pytest.approx(1.0) and same.sign_agreement == 1.0 and same.top_overlap == 1.0
    assert same.tokens == sum(t.kind == "text" for t in results["gradient_x_input"].tokens)


def test_flipped_signs_disagree(results):
    first = results["integrated_gradients"]
    flipped = dataclasses.replace(first, tokens=tuple(dataclasses.replace(t, score=-t.score) for t in first.tokens))
    opposite = method_agreement(first, flipped)
    assert opposite.rank_correlation == pytest.approx(-1.0) and opposite.sign_agreement == 0.0
    assert opposite.top_overlap == 1.0  # the same tokens matter most, in the opposite direction


def test_unsigned_methods_are_compared_on_magnitudes(results):
    mixed = method_agreement(results["gradient_x_input"], results["gradient_norm"])
    assert mixed.sign_agreement is None and -1 <= mixed.rank_correlation <= 1


def test_different_inputs_are_refused(tiny_runtime, results):
    other = explain(ContinuationTarget(tiny_runtime, "Something else entirely", " here"), "gradient_x_input", **QUIET)
    with pytest.raises(ConfigError, match="different token sequences"):
        method_agreement(results["gradient_x_input"], other)
