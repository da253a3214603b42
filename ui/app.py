"""The shieldkit model debugger, a Streamlit app: ``shieldkit ui`` (or ``streamlit run ui/app.py``).

The model comes from SHIELDKIT_* settings (``shieldkit ui --model tiny-random`` sets them) and is loaded once per
process. Only the open tab runs (``st.tabs(on_change="rerun")``); results are memoised per session and computed on
a worker thread (``state.computed``), so moving a slider never recomputes what is already known and an edit made
while a method runs does not throw its work away. While the Continuation tab is open, the Attention tab's maps are
computed in the background (``state.prefetch``).
"""

from __future__ import annotations

import streamlit as st

from shieldkit.debugger.base import SIGN_CONVENTION
from shieldkit.ui import state
from shieldkit.ui.components import report_errors
from shieldkit.ui.options import sidebar
from shieldkit.ui.tabs import attention, classifier, compare, continuation, data

TABS = {
    "Continuation": continuation.render,
    "Attention": attention.render,
    "Classifier": classifier.render,
    "Compare": compare.render,
    "Data": data.render,
}

st.set_page_config(page_title="shieldkit · model debugger", page_icon="🔎", layout="wide")
st.title("Model debugger")
st.caption("Which tokens drove Gemma's continuation, or a classifier's decision — and where the model looked. "
           f"**Colours**: {SIGN_CONVENTION}")

runtime = report_errors(state.runtime)
if runtime is None:
    st.stop()
options = sidebar(runtime)

for name, tab in zip(TABS, st.tabs(list(TABS), key="view", on_change="rerun")):
    if tab.open:
        with tab:
            TABS[name](runtime, options)
        if name == "Continuation":  # its likely next view, computed while the user reads this one
            attention.prefetch(runtime)
