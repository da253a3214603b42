"""The sidebar: which saliency method, its settings, and how to aggregate — shared by every tab."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from shieldkit.debugger.aggregation import GRANULARITIES
from shieldkit.debugger.base import UNSIGNED_NOTE
from shieldkit.debugger.baselines import BASELINES
from shieldkit.debugger.methods import METHODS


@dataclass(frozen=True)
class SaliencyOptions:
    method: str  # registry name
    method_options: dict[str, Any] = field(default_factory=dict)
    granularity: str = "tokens"
    pattern: str | None = None
    show_control: bool = True

    def key(self) -> dict[str, Any]:
        return {"method": self.method, "options": self.method_options}


# per method: the sidebar widgets for its options (methods without options need no entry)
def _integrated_gradients_options() -> dict[str, Any]:
    steps = st.slider("Integration steps", 2, 64, 16, key="ig_steps", persist_state="page",
                      help="Points on the path from the baseline to the input.")
    baseline = st.selectbox("Baseline", list(BASELINES), key="ig_baseline", persist_state="page",
                            help="What the text tokens start from (<bos> stays).")
    return {"steps": steps, "baseline": baseline}


def _leave_one_out_options() -> dict[str, Any]:
    return {"baseline": st.selectbox("Left-out token becomes", list(BASELINES), key="loo_baseline", persist_state="page")}


METHOD_WIDGETS = {"integrated_gradients": _integrated_gradients_options, "leave_one_out": _leave_one_out_options}


def sidebar(runtime) -> SaliencyOptions:
    info = runtime.info
    with st.sidebar:
        st.markdown(f"**Model**: {info.name}  \n{info.num_layers} layers · {info.num_heads} heads · "
                    f"{info.parameters / 1e6:.0f}M parameters · {info.dtype} on {info.device}")
        st.divider()
        method = st.selectbox("Saliency method", METHODS.names(), format_func=lambda n: METHODS.get(n).label,
                              key="method")
        chosen = METHODS.get(method)
        st.caption(chosen.description)
        options = METHOD_WIDGETS.get(method, dict)()
        granularity = st.radio("Granularity", list(GRANULARITIES), horizontal=True, key="granularity")
        pattern = None
        if granularity == "regex":
            pattern = st.text_input("Regex (segments = its matches)", r"\w+", key="pattern", persist_state="page")
        show_control = st.checkbox("Show control tokens (<bos>, turns)", value=True, key="show_control")
        if not chosen.signed:
            st.caption(UNSIGNED_NOTE)
    return SaliencyOptions(method, options, granularity, pattern, show_control)
