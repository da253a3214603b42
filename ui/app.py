"""The shieldkit model debugger, a Streamlit app: ``shieldkit ui`` (or ``streamlit run ui/app.py``).

The model comes from SHIELDKIT_* settings (``shieldkit ui --model tiny-random`` sets them) and is loaded once per
process; results are memoised per session, so moving a slider never recomputes what is already known.
"""

from __future__ import annotations

import streamlit as st

from shieldkit.ui import state
from shieldkit.ui.components import report_errors
from shieldkit.ui.options import sidebar
from shieldkit.ui.tabs import attention, classifier, compare, continuation

st.set_page_config(page_title="shieldkit · model debugger", page_icon="🔎", layout="wide")
st.title("Model debugger")
st.caption("Which tokens drove Gemma's continuation, or a classifier's decision — and where the model looked.")

runtime = report_errors(state.runtime)
if runtime is None:
    st.stop()
options = sidebar(runtime)

tab_continuation, tab_attention, tab_classifier, tab_compare = st.tabs(
    ["Continuation", "Attention", "Classifier", "Compare"]
)
with tab_continuation:
    continuation.render(runtime, options)
with tab_attention:
    attention.render(runtime)
with tab_classifier:
    classifier.render(runtime, options)
with tab_compare:
    compare.render(runtime, options)
