"""Classifier tab: pick a default policy, a saved classifier folder or a classifier provided to the session; see
its score and decision, and the saliency of that decision when the classifier declares GRADIENTS.

Every number says its scale: the probability shown is the one the classifier reports (calibrated, for the shipped
heads), and the explanation is of that same probability or of its log-odds, unless raw log-odds are asked for.
"""

from __future__ import annotations

import math

import streamlit as st

from shieldkit.classifiers.base import GRADIENTS, decide
from shieldkit.debugger import ClassifierTarget, explain, explainable
from shieldkit.debugger.targets.classifier import CLASSIFIER_SCORES, Calibrated
from shieldkit.ui import classifier_source, examples, state
from shieldkit.ui.agreement import agreement_panel
from shieldkit.ui.components import report_errors, show_saliency
from shieldkit.ui.options import SaliencyOptions


def choose(runtime, key: str = "clf"):
    """Widgets to pick a classifier; returns (name, classifier) or None. Also used by the Compare and Data tabs."""
    provided = classifier_source.provided(st.session_state)
    defaults, note = classifier_source.default_policies_for(runtime)
    sources = (["Provided to this session"] if provided else []) + (["Default policy"] if defaults else [])
    sources += ["Classifier folder"]
    if note:
        st.info(note)
    source = st.radio("Classifier", sources, horizontal=True, key=f"{key}_source", persist_state="page")
    if source == "Provided to this session":
        name = st.selectbox("Name", list(provided), key=f"{key}_provided", persist_state="page")
        factory = provided[name]
        return name, report_errors(lambda: state.memo({"provided": name, "model": runtime.info.fingerprint},
                                                      lambda: factory(runtime)))
    if source == "Default policy":
        ref = st.selectbox("Policy", defaults, key=f"{key}_policy", persist_state="page")
    else:
        presets = classifier_source.preset_folders()
        ref = st.text_input("Classifier folder", presets[0] if presets else "", key=f"{key}_folder",
                            persist_state="page").strip()
        if not ref:
            st.info("Enter the folder of a saved classifier.")
            return None
    return ref, report_errors(lambda: state.classifier(ref, runtime))


def follow_example(key: str, example: str, untouched: set[str]) -> None:
    """Before the text widget ``key`` is drawn: if it still holds an example the user did not edit, show
    ``example`` (the one for the classifier now chosen) instead."""
    if st.session_state.get(key, example) in untouched:
        st.session_state[key] = example


def probability_label(classifier) -> str:
    return "Violation probability (calibrated)" if isinstance(classifier, Calibrated) else "Violation probability"


def decision_of(classifier, name: str, text: str):
    return report_errors(lambda: state.memo({"decide": name, "classifier": id(classifier), "text": text},
                                            lambda: decide(classifier, [text])[0]))


def render(runtime, options: SaliencyOptions) -> None:
    chosen = choose(runtime)
    if not chosen or chosen[1] is None:
        return
    name, classifier = chosen
    st.caption(classifier.description)
    follow_example("clf_text", examples.TEXT.get(name, examples.GENERIC), {*examples.TEXT.values(), examples.GENERIC})
    text = st.text_area("Text to classify (edit it and watch the score)", examples.TEXT.get(name, examples.GENERIC),
                        key="clf_text", height=90, persist_state="page")
    if not text.strip():
        st.info("Type a text to classify.")
        return
    decision = decision_of(classifier, name, text)
    if decision is None:
        return
    previous = st.session_state.get("clf_previous")
    delta = None if previous is None or previous[0] != name or previous[1] == text else decision.score - previous[2]
    st.session_state["clf_previous"] = (name, text, decision.score)
    a, b, c = st.columns(3)
    a.metric(probability_label(classifier), f"{decision.score:.3f}", delta=None if delta is None else f"{delta:+.3f}",
             delta_color="inverse")
    b.metric("Threshold", f"{decision.threshold:.3f}")
    c.metric("Decision", "FLAGGED" if decision.flagged else "allowed")
    if not explainable(classifier):
        st.info(f"{name!r} does not declare the {GRADIENTS!r} capability: it can be scored, not explained.")
        return
    explanation(classifier, name, text, decision.score, options)


@st.fragment
def explanation(classifier, name: str, text: str, reported: float, options: SaliencyOptions) -> None:
    score = st.radio("Explain", list(CLASSIFIER_SCORES), format_func=CLASSIFIER_SCORES.get, horizontal=True,
                     key="clf_score", persist_state="page")
    key = {"clf": name, "classifier": id(classifier), "text": text, "score": score}
    result = explain_text(classifier, name, text, score, options, panel="classifier")
    if result is None:
        return
    st.caption(scale_note(score, result.target_value, reported))
    show_saliency(result, options, key="classifier")
    agreement_panel(options, key, lambda: ClassifierTarget(classifier, text, score), result, panel_key="classifier")


def scale_note(score: str, value: float, reported: float) -> str:
    """How the explained number relates to the probability shown above it."""
    if score == "log_odds":
        return (f"Explained: calibrated log-odds {value:+.3f} = logit(p); p = sigmoid({value:+.3f}) = "
                f"{1 / (1 + math.exp(-value)):.3f}, the probability above ({reported:.3f}).")
    if score == "probability":
        return f"Explained: the probability above itself ({value:.3f}); it saturates near 0 and 1."
    return (f"Explained: the head's raw log-odds {value:+.3f}, before calibration; it is not on the scale of the "
            f"probability above ({reported:.3f}).")


def explain_text(classifier, name: str, text: str, score: str, options: SaliencyOptions, *, panel: str):
    def compute(progress):
        return explain(ClassifierTarget(classifier, text, score), options.method, progress=progress,
                       **options.method_options)

    return report_errors(lambda: state.computed(
        {"clf": name, "classifier": id(classifier), "text": text, "score": score, **options.key()}, compute,
        panel=panel, label=f"{options.method} for {name}"))
