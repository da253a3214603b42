"""Method agreement: the same target explained by other methods, side by side, with rank and sign agreement.

Run on request (a toggle), since every extra method costs its own passes. Methods other than the sidebar's run with
their default settings, except that integrated gradients and leave-one-out take the sidebar's baseline and steps
when the sidebar method shares them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from shieldkit.debugger import explain, method_agreement
from shieldkit.debugger.methods import METHODS
from shieldkit.ui import state
from shieldkit.ui.components import report_errors
from shieldkit.ui.options import SaliencyOptions


def _options_for(method: str, options: SaliencyOptions) -> dict[str, Any]:
    if method == options.method:
        return dict(options.method_options)
    fields = {f.name for f in dataclasses.fields(METHODS.get(method).config_class)}
    return {k: v for k, v in options.method_options.items() if k in fields}


def agreement_panel(options: SaliencyOptions, key: dict, build: Callable[[], Any], shown, *, panel_key: str) -> None:
    """``build()`` makes the target; ``shown`` is the result of the sidebar's method on it."""
    if not st.toggle("Method agreement: explain the same target with other methods", key=f"{panel_key}_agree",
                     persist_state="page"):
        return
    others = [m for m in METHODS.names() if m != options.method]
    chosen = st.multiselect("Compare with", others, default=[m for m in others if m != "gradient_norm"],
                            format_func=lambda n: METHODS.get(n).label, key=f"{panel_key}_agree_methods",
                            persist_state="page")
    results = [shown]
    for method in chosen:
        settings = _options_for(method, options)

        def compute(progress, method=method, settings=settings):
            return explain(build(), method, progress=progress, **settings)

        result = report_errors(lambda method=method, settings=settings, compute=compute: state.computed(
            {**key, "method": method, "options": settings}, compute, panel=f"{panel_key}_agree_{method}",
            label=METHODS.get(method).label))
        if result is not None:
            results.append(result)
    if len(results) < 2:
        return
    rows = []
    for i, first in enumerate(results):
        for second in results[i + 1:]:
            a = method_agreement(first, second)
            rows.append({"methods": f"{a.first} vs {a.second}", "rank ρ": a.rank_correlation,
                         "same sign": a.sign_agreement, "top-3 shared": a.top_overlap})
    st.dataframe(pd.DataFrame(rows), hide_index=True, key=f"{panel_key}_agree_table", column_config={
        "rank ρ": st.column_config.NumberColumn(format="%.2f", help="Spearman rank correlation over text tokens"),
        "same sign": st.column_config.NumberColumn(format="percent", help="tokens both score non-zero, same sign"),
        "top-3 shared": st.column_config.NumberColumn(format="percent"),
    })
    st.caption("Low ρ or many sign flips: the methods disagree, and a conclusion from one of them alone is weak. "
               "Gradient × input is often wrong in sign on saturated predictions.")
    table = pd.DataFrame({"token": [t.piece for t in shown.tokens if t.kind == "text"]})
    for result in results:
        table[result.method_label] = [t.score for t in result.tokens if t.kind == "text"]
    st.dataframe(table, hide_index=True, key=f"{panel_key}_agree_scores",
                 column_config={r.method_label: st.column_config.NumberColumn(format="%+.4f" if r.signed else "%.4f")
                                for r in results})
