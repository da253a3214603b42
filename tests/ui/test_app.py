"""Streamlit AppTest drives every tab of the debugger on the tiny model."""

import pytest
import shieldkit_test_toy_classifier as toy  # registered by conftest.py

from shieldkit.ui.classifier_source import PROVIDED_KEY

TOY = {
    "toy": lambda runtime: toy.ToyClassifier(runtime),
    "opaque": lambda runtime: toy.ToyClassifier(runtime, name="opaque", gradients=False),
}


def _no_errors(at):
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _html(block):
    return [element.proto.body for element in block.get("html")]


def _open(at, tab: str):
    at.session_state["view"] = tab
    return at.run()


def test_continuation_tab_generates_and_explains(app, tiny_runtime):
    at = app.run()
    _no_errors(at)
    tab = at.tabs[0]
    assert at.session_state["continuation"]  # generated on first load
    [heatmap] = _html(tab)
    assert "sk-token" in heatmap and "raised" in heatmap and "lowered" in heatmap
    assert "Positive (green)" in at.caption[0].value  # the sign convention, stated once for every view
    assert "Positive (green)" not in heatmap
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
    from shieldkit.debugger import next_token_candidates

    candidates = next_token_candidates(tiny_runtime, tiny_runtime.encode(at.session_state["prompt"]), 10)
    at.radio(key="target_kind").set_value("Next token after the prompt")
    at.run()
    at.radio(key="candidate").set_value(candidates[1].id)
    at.selectbox(key="contrast").set_value(candidates[0].id)
    at.run()
    _no_errors(at)
    assert any("− log p(" in m.value for m in at.tabs[0].markdown)


def test_only_the_open_tab_runs(app):
    at = app.run()
    _no_errors(at)
    assert not at.tabs[1].children and not at.tabs[2].children and not at.tabs[3].children
    at = _open(at, "Attention")
    _no_errors(at)
    assert not at.tabs[0].children and at.tabs[1].children
    assert any('"attention"' in key for key in at.session_state["shieldkit.memo"])


def test_attention_maps_are_prefetched_while_the_continuation_tab_is_open(app):
    from shieldkit.ui import state

    at = app.run()
    assert not any('"attention"' in key for key in at.session_state["shieldkit.memo"])
    state._worker().submit(lambda: None).result(timeout=120)  # one worker thread, jobs in order: the prefetch ran
    at.run()
    _no_errors(at)
    assert not at.tabs[1].children  # still hidden, yet its maps are known
    assert any('"attention"' in key for key in at.session_state["shieldkit.memo"])


def test_next_token_pick_follows_the_token_not_its_position(app, tiny_runtime):
    """Item 1: after an edit, the explained candidates are the tokens picked, or the pick is reset, never the
    tokens that now sit at the old positions."""
    from shieldkit.debugger import next_token_candidates

    at = app.run()
    at.radio(key="target_kind").set_value("Next token after the prompt")
    at.run()
    first = next_token_candidates(tiny_runtime, tiny_runtime.encode(at.session_state["prompt"]), 10)
    at.radio(key="candidate").set_value(first[1].id)
    at.selectbox(key="contrast").set_value(first[2].id)
    at.run()
    at.text_area(key="prompt").set_value("A completely different prompt about Italy and")
    at.run()
    _no_errors(at)
    now = next_token_candidates(tiny_runtime, tiny_runtime.encode("A completely different prompt about Italy and"), 10)
    kept = {c.id for c in now}
    shown = at.radio(key="candidate").value, at.selectbox(key="contrast").value
    assert shown[0] == (first[1].id if first[1].id in kept else now[0].id)
    assert shown[1] == (first[2].id if first[2].id in kept else None)
    [target] = [m.value for m in at.tabs[0].markdown if m.value.startswith("**Target**")]
    text = {c.id: c.text for c in now}
    assert repr(text[shown[0]]) in target
    assert (shown[1] is None) == ("−" not in target)


def test_logit_lens_follows_a_longer_prompt(app):
    """Item 2: the lens position defaults to the last token of the current text, not the old index."""
    at = _open(app.run(), "Attention")
    before = at.selectbox(key=_lens_key(at)).value
    at.session_state["view"] = "Continuation"
    at.run()
    at.text_area(key="prompt").set_value("The Eiffel Tower is a famous landmark in the city of Paris, and people come "
                                         "from every country in the world to see it")
    at.run()
    at = _open(at, "Attention")
    _no_errors(at)
    lens = at.selectbox(key=_lens_key(at))
    assert lens.value > before and lens.value == len(lens.options) - 1


def _lens_key(at):
    [key] = [w.key for w in at.tabs[1].get("selectbox") if w.key and w.key.startswith("lens_position_")]
    return key


def test_text_chat_text_keeps_the_prompt_and_the_typed_continuation(app):
    """Item 3: switching input modes neither resets the prompt nor regenerates over a typed continuation."""
    at = app.run()
    at.text_area(key="prompt").set_value("My own prompt")
    at.run()
    at.text_area(key="continuation").set_value(" and my own continuation")
    at.run()
    for mode in ("Chat", "Text"):
        at.radio(key="prompt_mode").set_value(mode)
        at.run()
        _no_errors(at)
    assert at.text_area(key="prompt").value == "My own prompt"
    assert at.text_area(key="continuation").value == " and my own continuation"
    at = _open(at, "Attention")  # and across tabs
    at = _open(at, "Continuation")
    assert at.text_area(key="continuation").value == " and my own continuation"


def test_chat_input(app):
    at = app.run()
    at.radio(key="prompt_mode").set_value("Chat")
    at.run()
    at.text_area(key="user_message").set_value("Say hello.")
    at.run()
    _no_errors(at)
    assert "&lt;start_of_turn&gt;" in _html(at.tabs[0])[0]


def test_unsigned_scores_show_no_plus_sign(app):
    """Item 6: gradient L2 norm is a magnitude; its table has no "+" signs."""
    at = app.run()
    at.selectbox(key="method").set_value("gradient_norm")
    at.run()
    _no_errors(at)
    config = at.tabs[0].dataframe[0].proto.columns
    assert "%+.4f" not in config and "%.4f" in config


def test_method_agreement_and_the_completeness_warning(app):
    """Item 8: other methods side by side with agreement scores; a large completeness gap is a warning with a fix."""
    at = app.run()
    at.selectbox(key="method").set_value("integrated_gradients")
    at.run()
    at.slider(key="ig_steps").set_value(2)
    at.run()
    _no_errors(at)
    warning = [w.value for w in at.tabs[0].warning if "Completeness gap" in w.value]
    if warning:  # the tiny model's gap at 2 steps is large; the button doubles the steps
        at.button(key="continuation_more_steps").click()
        at.run()
        assert at.slider(key="ig_steps").value == 4
    at.toggle(key="continuation_agree").set_value(True)
    at.run()
    _no_errors(at)
    tables = [d.value for d in at.tabs[0].dataframe]
    agreement = next(t for t in tables if "rank ρ" in t.columns)
    assert len(agreement) == 3  # integrated gradients, gradient × input, leave-one-out: three pairs
    assert agreement["rank ρ"].between(-1, 1).all()


def test_attention_tab_views(app):
    at = _open(app.run(), "Attention")
    tab = at.tabs[1]
    assert len(tab.get("vega_lite_chart")) == 2  # attention map and sink scores
    for view in ("Single head", "All heads", "Rollout", "Head average"):
        at.radio(key="attention_view").set_value(view)
        at.run()
        _no_errors(at)
    at.toggle(key="attention_hide_bos").set_value(False)
    at.slider(key="attention_layer").set_value(0)
    at.run()
    _no_errors(at)
    lens = at.tabs[1].dataframe[-1].value
    assert len(lens) == 4 + 1 and "top predictions" in lens.columns  # tiny model: 4 layers + embeddings
    assert not any("e-" in cell and "0.000000" in cell for cell in lens["top predictions"])
    assert any("heads" in m.value and "first token" in m.value for m in at.tabs[1].markdown)


def test_classifier_tab_offers_no_default_policy_trained_on_another_model(app):
    at = _open(app.run(), "Classifier")
    _no_errors(at)
    assert any("default policies were trained on gemma-3-270m" in i.value for i in at.tabs[2].info)
    assert at.radio(key="clf_source").options == ["Classifier folder"]


def test_classifier_tab_scores_explains_and_follows_edits(app):
    app.session_state[PROVIDED_KEY] = TOY
    at = _open(app.run(), "Classifier")
    _no_errors(at)
    tab = at.tabs[2]
    assert at.radio(key="clf_source").value == "Provided to this session"
    score = float(tab.metric[0].value)
    assert 0 <= score <= 1 and tab.metric[2].value in ("FLAGGED", "allowed")
    [heatmap] = _html(tab)
    assert "sk-token" in heatmap and "calibrated violation log-odds" in heatmap
    # item 4: the explained log-odds is the logit of the probability shown
    [note] = [c.value for c in tab.caption if c.value.startswith("Explained:")]
    assert f"the probability above ({score:.3f})" in note and f"= {score:.3f}," in note

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
    app.session_state[PROVIDED_KEY] = {"toy": TOY["toy"]}
    at = _open(app.run(), "Compare")
    _no_errors(at)
    tab = at.tabs[3]
    assert len(tab.metric) == 2 and len(_html(tab)) == 2
    assert any("A − B" in m.value for m in tab.markdown)
    assert any("one colour scale" in c.value for c in tab.caption)
    legends = [h.split("raised +")[1].split("<")[0] for h in _html(tab)]
    assert legends[0] == legends[1]  # item 9: one scale for both sides
    tables = {tuple(d.value.columns) for d in tab.dataframe}
    assert ("A", "B", "score A", "score B", "A − B") in tables and ("in A", "in B", "effect on A − B") in tables

    at.radio(key="compare_mode").set_value("Two texts, one classifier")
    at.run()
    _no_errors(at)
    tab = at.tabs[3]
    assert len(tab.metric) == 4 and len(_html(tab)) == 2  # two decisions, then the two explained log-odds


def test_compare_texts_survive_choosing_a_classifier_folder(app):
    """Item 3: choosing "Classifier folder" (still empty) keeps Text A and Text B."""
    app.session_state[PROVIDED_KEY] = {"toy": TOY["toy"]}
    at = _open(app.run(), "Compare")
    at.radio(key="compare_mode").set_value("Two texts, one classifier")
    at.run()
    at.text_area(key="cmp_text_0").set_value("my text A")
    at.text_area(key="cmp_text_1").set_value("my text B")
    at.run()
    at.radio(key="cmp_clf_source").set_value("Classifier folder")
    at.run()
    at.radio(key="cmp_clf_source").set_value("Provided to this session")
    at.run()
    _no_errors(at)
    assert (at.text_area(key="cmp_text_0").value, at.text_area(key="cmp_text_1").value) == ("my text A", "my text B")


def test_data_tab_scores_sorts_explains_and_suggests(app, tmp_path):
    pool = tmp_path / "pool.csv"
    pool.write_text("text,label\nI'm going to destroy you at chess tomorrow.,0\nLovely weather today.,\n"
                    "Bake bread this weekend.,\nHow do I kill a Python process?,\n", encoding="utf-8")
    app.session_state[PROVIDED_KEY] = {"toy": TOY["toy"]}
    at = _open(app.run(), "Data")
    at.text_input(key="data_path").set_value(str(pool))
    at.run()
    _no_errors(at)
    table = at.tabs[4].dataframe[0].value
    assert len(table) == 4 and table["score"].is_monotonic_decreasing
    assert any(b.label.startswith("Download 0 labelled rows") for b in at.tabs[4].get("download_button"))


@pytest.mark.real_model
def test_the_default_policies_are_offered_on_the_embedded_gemma(real_runtime):
    from shieldkit.classifiers import DEFAULT_POLICIES
    from shieldkit.ui import classifier_source

    assert classifier_source.default_policies_for(real_runtime) == (tuple(DEFAULT_POLICIES), None)


def test_training_csv_is_what_train_reads(tmp_path):
    import pandas as pd

    from shieldkit.classifiers.data import load_examples
    from shieldkit.ui.tabs.data import training_csv

    labelled = pd.DataFrame({"text": ["a text", "another, with a comma"], "label": ["violates", "allowed"]})
    path = tmp_path / "labelled.csv"
    path.write_text(training_csv(labelled), encoding="utf-8")
    assert [(e.text, e.label) for e in load_examples(path).examples] == [("a text", 1), ("another, with a comma", 0)]
