"""Compare tab: two prompts scored on the same continuation, or two texts on the same classifier, side by side on
one colour scale; then where the two differ: a per-segment A − B table, and which edits from B to A carry the
difference in the score (contrastive attribution)."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from shieldkit.debugger import ClassifierTarget, ContinuationTarget, explain, explainable, segment_differences
from shieldkit.debugger.contrast import contrast, target_scorer
from shieldkit.debugger.html import segment_scale
from shieldkit.ui import examples, state
from shieldkit.ui.components import report_errors, score_format, show_saliency
from shieldkit.ui.options import SaliencyOptions
from shieldkit.ui.tabs import classifier as classifier_tab

MODES = ["Two prompts, one continuation", "Two texts, one classifier"]
PROMPTS = ("The nurse said that", "The engineer said that")


def render(runtime, options: SaliencyOptions) -> None:
    mode = st.radio("Compare", MODES, horizontal=True, key="compare_mode", persist_state="page")
    if mode == MODES[0]:
        _prompts(runtime, options)
    else:
        _texts(runtime, options)


def _prompts(runtime, options: SaliencyOptions) -> None:
    continuation = st.text_input("Continuation scored after each prompt", " she", key="cmp_continuation",
                                 persist_state="page")
    prompts = []
    for side, (column, default) in enumerate(zip(st.columns(2), PROMPTS)):
        prompts.append(column.text_area(f"Prompt {'AB'[side]}", default, key=f"cmp_prompt_{side}", height=80,
                                        persist_state="page"))
    if not continuation or not all(p.strip() for p in prompts):
        st.info("Type two prompts and a continuation.")
        return

    def make(prompt: str):
        return ContinuationTarget(runtime, prompt, continuation)

    key = {"cmp": "prompts", "continuation": continuation, "model": runtime.info.fingerprint}
    _side_by_side(options, key, prompts, make, "log p(continuation | {side})")


def _texts(runtime, options: SaliencyOptions) -> None:
    chosen = classifier_tab.choose(runtime, key="cmp_clf")
    name = chosen[0] if chosen else None
    pair = examples.PAIRS.get(name, examples.GENERIC_PAIR)
    untouched = {*(t for p in examples.PAIRS.values() for t in p), *examples.GENERIC_PAIR}
    texts = []
    for side, column in enumerate(st.columns(2)):
        if name is not None:  # no classifier chosen yet (an empty folder field): the texts stay as they are
            classifier_tab.follow_example(f"cmp_text_{side}", pair[side], untouched)
        texts.append(column.text_area(f"Text {'AB'[side]}", pair[side], key=f"cmp_text_{side}", height=80,
                                      persist_state="page"))
    if not chosen or chosen[1] is None:
        return
    classifier = chosen[1]
    if not all(t.strip() for t in texts):
        st.info("Type two texts.")
        return
    for side, (column, text) in enumerate(zip(st.columns(2), texts)):
        decision = classifier_tab.decision_of(classifier, name, text)
        if decision is not None:
            column.metric(f"{classifier_tab.probability_label(classifier)}, {'AB'[side]} "
                          f"({'FLAGGED' if decision.flagged else 'allowed'})", f"{decision.score:.3f}")
    if not explainable(classifier):
        st.info(f"{name!r} can be scored, not explained.")
        return

    def make(text: str):
        return ClassifierTarget(classifier, text, "log_odds")

    key = {"cmp": "texts", "clf": name, "classifier": id(classifier)}
    _side_by_side(options, key, texts, make, "calibrated violation log-odds of {side}")


def _side_by_side(options: SaliencyOptions, key: dict, inputs: list[str], make, what: str) -> None:
    results = []
    for side, text in enumerate(inputs):
        def compute(progress, text=text):
            return explain(make(text), options.method, progress=progress, **options.method_options)

        results.append(report_errors(lambda compute=compute, text=text: state.computed(
            {**key, "input": text, **options.key()}, compute, panel=f"compare_{side}",
            label=f"{options.method} on {'AB'[side]}")))
    if None in results:
        return
    scale = max(segment_scale(r.segments(options.granularity, options.pattern)) for r in results)
    st.caption(f"Both sides share one colour scale (full colour = |score| {scale:.3g}).")
    for side, (column, result) in enumerate(zip(st.columns(2), results)):
        with column:
            st.metric(what.format(side="AB"[side]), f"{result.target_value:.3f}")
            show_saliency(result, options, key=f"cmp_{side}", table=False, scale=scale)
    a, b = results
    st.markdown(f"**A − B = {a.target_value - b.target_value:+.3f}**")
    _differences(a, b, options)
    _contrast(key, inputs, make)
    both = json.dumps({"A": a.to_dict(), "B": b.to_dict()}, ensure_ascii=False, indent=2)
    st.download_button("Download both (JSON)", both, file_name="compare.json", mime="application/json",
                       key="cmp_json", on_click="ignore")


def _differences(a, b, options: SaliencyOptions) -> None:
    st.subheader("Where the same words matter differently")
    rows = segment_differences(a.segments(options.granularity, options.pattern),
                               b.segments(options.granularity, options.pattern))
    frame = pd.DataFrame([{"A": r.a_text, "B": r.b_text, "score A": r.a_score, "score B": r.b_score,
                           "A − B": r.difference} for r in rows])
    fmt = score_format(a.signed)
    st.dataframe(frame, hide_index=True, key="cmp_differences", column_config={
        "score A": st.column_config.NumberColumn(format=fmt), "score B": st.column_config.NumberColumn(format=fmt),
        "A − B": st.column_config.NumberColumn(format="%+.4f", help="blank where only one text has the segment"),
    })


def _contrast(key: dict, inputs: list[str], make) -> None:
    st.subheader("Which edits from B to A carry the difference")
    found = report_errors(lambda: state.computed({**key, "contrast": inputs}, lambda progress: contrast(
        target_scorer(make), inputs[0], inputs[1]), panel="compare_contrast", label="Scoring each edit"))
    if found is None:
        return
    if not found.edits:
        st.info("The two inputs have the same words.")
        return
    st.dataframe(pd.DataFrame([{"in A": e.a_text.strip() or "(nothing)", "in B": e.b_text.strip() or "(nothing)",
                                "effect on A − B": e.effect} for e in found.edits]), hide_index=True,
                 key="cmp_edits", column_config={"effect on A − B": st.column_config.NumberColumn(format="%+.4f")})
    st.caption(f"Effect of an edit = f(A) − f(A with that edit undone to B's words). The edits' effects add up to "
               f"{sum(e.effect for e in found.edits):+.3f} of A − B = {found.difference:+.3f}; the remaining "
               f"{found.interaction:+.3f} comes from edits acting together.")
