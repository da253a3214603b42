"""Streamlit AppTest drives every tab of the debugger on the tiny model."""

import pytest
import shieldkit_test_toy_classifier as toy  # registered by conftest.py

from shieldkit.ui.classifier_source import PROVIDED_KEY


def _no_errors(at):
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _html(block):
    return [element.proto.body for element in block.get("html")]


def test_continuation_tab_generates_and_explains(app):
    at = app.run()
    _no_errors(at)
    tab = at.tabs[0]
    assert at.session_state["continuation"]  # generated on first load
    [heatmap] = _html(tab)
    assert "sk-token" in heatmap and "raised" in heatmap and "lowered" in heatmap
    table = tab.dataframe[0].value
    assert {"segment", "score", "|score|"} <= set(table.columns) and len(table) > 5
    assert [b.label for b in tab.get("download_button")] == ["Download JSON", "Download HTML"]

    # integrated gradients, aggregated to words, on a typed continuation
    at.selectbox(key="method").set_value("integrated_gradients")
    at.run()
    at.slider(key="ig_steps").set_value(4)
    at.radio(key="granularity").set_value("words")
    at.text_area(key="continuation").set_value(" Paris, the capital of France.")
    at.run()
    _no_errors(at)
    tab = at.tabs[0]
    assert any("completeness" in c.value for c in tab.caption)
    words = tab.dataframe[0].value
    assert " Paris," in list(words["segment"]) and "data-granularity='words'" in _html(tab)[0]

    # next-token target with a contrast
    at.radio(key="target_kind").set_value("Next token after the prompt")
    at.run()
    at.radio(key="candidate").set_value(1)
    at.selectbox(key="contrast").set_value(0)
    at.run()
    _no_errors(at)
    assert any("− log p(" in m.value for m in at.tabs[0].markdown)


def test_chat_input(app):
    at = app.run()
    at.radio(key="prompt_mode").set_value("Chat")
    at.run()
    at.text_area(key="user_message").set_value("Say hello.")
    at.run()
    _no_errors(at)
    assert "&lt;start_of_turn&gt;" in _html(at.tabs[0])[0]


def test_attention_tab_views(app):
    at = app.run()
    tab = at.tabs[1]
    assert len(tab.get("vega_lite_chart")) == 2  # attention map and sink scores
    for view in ("Single head", "Rollout", "Head average"):
        at.radio(key="attention_view").set_value(view)
        at.run()
        _no_errors(at)
    at.slider(key="attention_layer").set_value(0)
    at.run()
    _no_errors(at)
    lens = at.tabs[1].dataframe[0].value
    assert len(lens) == 4 + 1 and "top predictions" in lens.columns  # tiny model: 4 layers + embeddings
    assert any("heads" in m.value and "first token" in m.value for m in at.tabs[1].markdown)


def test_classifier_tab_offers_no_default_policy_trained_on_another_model(app):
    at = app.run()  # the tiny model: the committed default policies were trained on the embedded Gemma
    _no_errors(at)
    assert any("default policies were trained on gemma-3-270m" in i.value for i in at.tabs[2].info)
    assert at.radio(key="clf_source").options == ["Classifier folder"]


def test_classifier_tab_scores_explains_and_follows_edits(app):
    app.session_state[PROVIDED_KEY] = {
        "toy": lambda runtime: toy.ToyClassifier(runtime),
        "opaque": lambda runtime: toy.ToyClassifier(runtime, name="opaque", gradients=False),
    }
    at = app.run()
    _no_errors(at)
    tab = at.tabs[2]
    assert at.radio(key="clf_source").value == "Provided to this session"
    score = float(tab.metric[0].value)
    assert 0 <= score <= 1 and tab.metric[2].value in ("FLAGGED", "allowed")
    [heatmap] = _html(tab)
    assert "sk-token" in heatmap and "violation log-odds" in heatmap

    at.text_area(key="clf_text").set_value("A completely different and much longer text about gardening.")
    at.run()
    _no_errors(at)
    changed = at.tabs[2].metric[0]
    assert float(changed.value) != score and changed.delta is not None

    at.selectbox(key="clf_provided").set_value("opaque")
    at.run()
    _no_errors(at)
    assert any("does not declare" in i.value for i in at.tabs[2].info)
    assert not _html(at.tabs[2])  # no saliency offered without the GRADIENTS capability


def test_compare_tab_both_modes(app):
    app.session_state[PROVIDED_KEY] = {"toy": lambda runtime: toy.ToyClassifier(runtime)}
    at = app.run()
    _no_errors(at)
    tab = at.tabs[3]
    assert len(tab.metric) == 2 and len(_html(tab)) == 2
    assert any("A − B" in m.value for m in tab.markdown)
    at.radio(key="compare_mode").set_value("Two texts, one classifier")
    at.run()
    _no_errors(at)
    tab = at.tabs[3]
    assert len(tab.metric) == 2 and len(_html(tab)) == 2


@pytest.mark.real_model
def test_the_default_policies_are_offered_on_the_embedded_gemma(real_runtime):
    from shieldkit.classifiers import DEFAULT_POLICIES
    from shieldkit.ui import classifier_source

    assert classifier_source.default_policies_for(real_runtime) == (tuple(DEFAULT_POLICIES), None)
