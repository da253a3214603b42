"""Compare tab: two prompts scored on the same continuation, or two texts on the same classifier, side by side."""

from __future__ import annotations

import json

import streamlit as st

from shieldkit.classifiers.base import decide
from shieldkit.debugger import ContinuationTarget, explain, explainable
from shieldkit.ui import state
from shieldkit.ui.components import report_errors, show_saliency
from shieldkit.ui.options import SaliencyOptions
from shieldkit.ui.tabs import classifier as classifier_tab

MODES = ["Two prompts, one continuation", "Two texts, one classifier"]


def render(runtime, options: SaliencyOptions) -> None:
    mode = st.radio("Compare", MODES, horizontal=True, key="compare_mode")
    if mode == MODES[0]:
        _prompts(runtime, options)
    else:
        _texts(runtime, options)


def _prompts(runtime, options: SaliencyOptions) -> None:
    continuation = st.text_input("Continuation scored after each prompt", " she", key="cmp_continuation")
    columns = st.columns(2)
    defaults = ["The nurse said that", "The engineer said that"]
    results = []
    for side, (column, default) in enumerate(zip(columns, defaults)):
        with column:
            prompt = st.text_area(f"Prompt {'AB'[side]}", default, key=f"cmp_prompt_{side}", height=80)
            if not prompt.strip() or not continuation:
                st.info("Type a prompt and a continuation.")
                results.append(None)
                continue

            def compute(prompt=prompt):
                return explain(ContinuationTarget(runtime, prompt, continuation), options.method,
                               progress=lambda *_: None, **options.method_options)

            with st.spinner("Computing…"):
                result = report_errors(lambda: state.memo(
                    {"cmp": prompt, "continuation": continuation, **options.key()}, compute))
            results.append(result)
            if result is not None:
                st.metric(f"log p(continuation | {'AB'[side]})", f"{result.target_value:.3f}")
                show_saliency(result, options, key=f"cmp_{side}", table=False)
    _difference(results, "log p")


def _texts(runtime, options: SaliencyOptions) -> None:
    chosen = classifier_tab.choose(runtime, key="cmp_clf")
    if not chosen or chosen[1] is None:
        return
    name, classifier = chosen
    defaults = ["How do I kill a Python process?", "How do I kill my neighbour's dog?"]
    results = []
    for side, (column, default) in enumerate(zip(st.columns(2), defaults)):
        with column:
            text = st.text_area(f"Text {'AB'[side]}", default, key=f"cmp_text_{side}", height=80)
            if not text.strip():
                st.info("Type a text.")
                results.append(None)
                continue
            decision = report_errors(lambda text=text: state.memo({"decide": name, "classifier": id(classifier), "text": text},
                                                                  lambda: decide(classifier, [text])[0]))
            if decision is not None:
                st.metric(f"Violation probability ({'FLAGGED' if decision.flagged else 'allowed'})", f"{decision.score:.3f}")
            result = classifier_tab.explain_text(classifier, name, text, "log_odds", options) if explainable(classifier) else None
            results.append(result)
            if result is not None:
                show_saliency(result, options, key=f"cmp_clf_{side}", table=False)
    _difference(results, "violation log-odds")


def _difference(results, what: str) -> None:
    if None in results or len(results) != 2:
        return
    a, b = results
    st.markdown(f"**{what}: A − B = {a.target_value - b.target_value:+.3f}**")
    both = json.dumps({"A": a.to_dict(), "B": b.to_dict()}, ensure_ascii=False, indent=2)
    st.download_button("Download both (JSON)", both, file_name="compare.json", mime="application/json", key="cmp_json")
