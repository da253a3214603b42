"""Views shared by the tabs: the saliency heatmap with its legend, the sortable table, downloads, and
attention heatmaps (Vega-Lite, rendered by Streamlit's own bundled front end, so they work offline)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from shieldkit.debugger.html import saliency_fragment
from shieldkit.errors import ShieldkitError

if TYPE_CHECKING:
    import torch

    from shieldkit.debugger.results import SaliencyResult
    from shieldkit.ui.options import SaliencyOptions


def segments_frame(result: SaliencyResult, options: SaliencyOptions) -> pd.DataFrame:
    rows = [
        {"#": i, "segment": s.text, "score": s.score, "|score|": abs(s.score), "tokens": len(s.tokens), "kind": s.kind}
        for i, s in enumerate(result.segments(options.granularity, options.pattern))
        if s.kind != "outside" and (options.show_control or s.kind != "control")
    ]
    return pd.DataFrame(rows, columns=["#", "segment", "score", "|score|", "tokens", "kind"])


def show_saliency(result: SaliencyResult, options: SaliencyOptions, key: str, *, table: bool = True) -> None:
    """Facts, heatmap (with the sign legend), a sortable table and JSON/HTML downloads."""
    try:
        fragment = saliency_fragment(result, options.granularity, options.pattern, show_control=options.show_control)
    except ShieldkitError as exc:
        st.error(str(exc))
        return
    facts = f"{result.method_label} · {result.seconds:.2f} s"
    if result.completeness:
        c = result.completeness
        facts += (f" · completeness: Σ {c.attribution_sum:+.3f} vs f(x) − f(baseline) "
                  f"{c.target_value - c.baseline_value:+.3f} (gap {100 * c.relative_gap:.1f}%)")
    st.caption(facts)
    st.html(fragment)
    if table:
        st.dataframe(
            segments_frame(result, options), hide_index=True, key=f"{key}_table",
            column_config={"score": st.column_config.NumberColumn(format="%+.4f"),
                           "|score|": st.column_config.NumberColumn(format="%.4f")},
        )
    name = re.sub(r"[^a-z0-9]+", "-", f"{result.target_kind}-{result.method}".lower())
    left, right = st.columns(2)
    left.download_button("Download JSON", result.to_json(options.granularity, options.pattern),
                         file_name=f"{name}.json", mime="application/json", key=f"{key}_json")
    right.download_button("Download HTML", result.to_html(options.granularity, options.pattern),
                          file_name=f"{name}.html", mime="text/html", key=f"{key}_html")


def heatmap(matrix: torch.Tensor, rows: list[str], columns: list[str], *, title: str, value: str,
            scheme: str = "blues", row_title: str = "query", column_title: str = "key",
            domain: tuple[float, float] | None = None, numbered: bool = True, skip_zeros: bool = False) -> None:
    """A Vega-Lite heatmap of ``matrix`` [R, C] with tooltips; token labels are numbered by position.
    ``skip_zeros`` leaves exact zeros blank (the causal upper triangle of an attention map)."""

    def label(i: int, names: list[str]) -> str:
        return f"{i:>3} {names[i]}" if numbered else names[i]

    frame = pd.DataFrame(
        [
            {"row": label(i, rows), "column": label(j, columns), value: float(v), "r": i, "c": j}
            for i, line in enumerate(matrix.tolist())
            for j, v in enumerate(line)
            if not (skip_zeros and v == 0)
        ]
    )
    cell = max(4, min(26, 640 // max(len(rows), 1)))
    spec = {
        "title": title,
        "mark": {"type": "rect"},
        "height": {"step": cell},
        "encoding": {
            "y": {"field": "row", "type": "ordinal", "sort": {"field": "r"}, "title": row_title,
                  "axis": {"labelOverlap": True, "labelLimit": 140}},
            "x": {"field": "column", "type": "ordinal", "sort": {"field": "c"}, "title": column_title,
                  "axis": {"labelOverlap": True, "labelAngle": -60, "labelLimit": 120}},
            "color": {"field": value, "type": "quantitative",
                      "scale": {"scheme": scheme, **({"domain": list(domain)} if domain else {})}},
            "tooltip": [{"field": "row", "title": row_title}, {"field": "column", "title": column_title},
                        {"field": value, "format": ".4f"}],
        },
    }
    st.vega_lite_chart(frame, spec, width="stretch")


def report_errors(action):
    """Run ``action()``; a user error is shown as one red line (never a traceback) and yields None."""
    try:
        return action()
    except ShieldkitError as exc:
        st.error(str(exc))
        return None
