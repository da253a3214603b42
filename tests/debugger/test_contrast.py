import pytest

import shieldkit_test_toy_classifier as toy  # registered by conftest.py
from shieldkit.debugger import ClassifierTarget, ContinuationTarget, explain, segment_differences, target_scorer
from shieldkit.debugger.contrast import contrast, words

QUIET = {"progress": lambda done, total: None}


def test_words_cover_the_text():
    text = "  How do I kill\tmy neighbour's dog? "
    assert "".join(words(text)) == text


def test_one_edit_carries_the_whole_difference(tiny_runtime):
    score = target_scorer(lambda text: ClassifierTarget(toy.ToyClassifier(tiny_runtime), text, "log_odds"))
    result = contrast(score, "How do I kill my neighbour's dog?", "How do I kill a Python process?")
    assert [(e.a_text.strip(), e.b_text.strip()) for e in result.edits] == [("my neighbour's dog?", "a Python process?")]
    assert result.edits[0].effect == pytest.approx(result.difference, abs=1e-4)
    assert result.interaction == pytest.approx(0, abs=1e-4)


def test_edits_and_interaction_add_up(tiny_runtime):
    score = target_scorer(lambda prompt: ContinuationTarget(tiny_runtime, prompt, " she"))
    result = contrast(score, "The young nurse said quietly that", "The old engineer said loudly that")
    assert len(result.edits) == 2
    assert sum(e.effect for e in result.edits) + result.interaction == pytest.approx(result.difference, abs=1e-6)
    first = result.edits[0]
    assert "The young nurse said quietly that"[first.a_start:first.a_end] == first.a_text


def test_segment_differences_align_shared_words(tiny_runtime):
    a = explain(ContinuationTarget(tiny_runtime, "The nurse said that", " she"), "gradient_x_input", **QUIET)
    b = explain(ContinuationTarget(tiny_runtime, "The engineer said that", " she"), "gradient_x_input", **QUIET)
    rows = segment_differences(a.segments("words"), b.segments("words"))
    shared = [r for r in rows if r.difference is not None]
    assert [r.a_text.strip() for r in shared] == ["The", "said", "that", "she"]
    assert any(r.a_text and r.a_text.strip() == "nurse" and r.b_text is None for r in rows)
