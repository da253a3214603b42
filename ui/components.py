"""Views shared by the tabs: the saliency heatmap with its legend, the sortable table, downloads, the warnings a
result deserves, and attention heatmaps (Vega-Lite, rendered by Streamlit's own bundled front end, so they work
offline).

Downloads build their file only when clicked and do not rerun the app (``on_click="ignore"``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from shieldkit.debugger.html import saliency_fragment
from shieldkit.errors import ShieldkitError

if TYPE_CHECKING:
    from shieldkit.debugger.results import SaliencyResult
    from shieldkit.ui.options import SaliencyOptions

GAP_WARNING = 0.10  # integrated gradients: a completeness gap above this share is shown as a warning
STEP_CHOICES_MAX = 64  # the sidebar's largest number of integration steps


def segments_frame(result: SaliencyResult, options: SaliencyOptions) -> pd.DataFrame:
    rows = [
        {"#": i, "segment": s.text, "score": s.score, "|score|": abs(s.score), "tokens": len(s.tokens), "kind": s.kind}
        for i, s in enumerate(result.segments(options.granularity, options.pattern))
        if s.kind != "outside" and (options.show_control or s.kind != "control")
    ]
    return pd.DataFrame(rows, columns=["#", "segment", "score", "|score|", "tokens", "kind"])


def score_format(signed: bool) -> str:
    """Signed scores carry their sign; magnitudes (gradient L2 norm) never show a "+"."""
    return "%+.4f" if signed else "%.4f"


def show_saliency(result: SaliencyResult, options: SaliencyOptions, key: str, *, table: bool = True,
                  scale: float | None = None) -> None:
    """Facts, warnings, heatmap (with the legend), a sortable table and JSON/HTML downloads. ``scale``: the |score|
    of full colour, shared by views shown side by side."""
    try:
        fragment = saliency_fragment(result, options.granularity, options.pattern, show_control=options.show_control,
                                     scale=scale, note=False)
    except ShieldkitError as exc:
        st.error(str(exc))
        return
    facts = f"{result.method_label} · {result.seconds:.2f} s"
    if result.completeness:
        c = result.completeness
        facts += (f" · completeness: Σ {c.attribution_sum:+.3f} vs f(x) − f(baseline) "
                  f"{c.target_value - c.baseline_value:+.3f} (gap {100 * c.relative_gap:.1f}%)")
    st.caption(facts)
    completeness_warning(result, key)
    if result.method == "gradient_x_input":
        st.caption("Gradient × input is a first-order estimate: on saturated predictions it is often wrong in sign. "
                   "Check a conclusion with integrated gradients or leave-one-out (Method agreement).")
    st.html(fragment)
    if table:
        frame = segments_frame(result, options)
        st.vega_lite_chart(frame, scores_spec(result.signed, len(frame)), width="stretch", key=f"{key}_bars")
        st.dataframe(
            frame, hide_index=True, key=f"{key}_table",
            column_config={"score": st.column_config.NumberColumn(format=score_format(result.signed)),
                           "|score|": st.column_config.NumberColumn(format="%.4f")},
        )
    downloads(result, options, key)


def scores_spec(signed: bool, segments: int) -> dict:
    """One bar per segment, in text order: how much each one raised (red) or lowered (blue) the target, so the
    few that matter stand out before the table is read."""
    colour = ({"condition": {"test": "datum.score < 0", "value": "#2b6cb0"}, "value": "#c53030"} if signed
              else {"value": "#718096"})
    return {
        "mark": {"type": "bar"},
        "height": 140 if segments <= 40 else 200,
        "encoding": {
            "x": {"field": "#", "type": "ordinal", "title": None, "axis": {"labels": segments <= 40}},
            "y": {"field": "score", "type": "quantitative", "title": "score" if signed else "|gradient|"},
            "color": colour,
            "tooltip": [{"field": "segment"}, {"field": "score", "format": "+.4f" if signed else ".4f"}],
        },
    }


def downloads(result: SaliencyResult, options: SaliencyOptions, key: str) -> None:
    name = re.sub(r"[^a-z0-9]+", "-", f"{result.target_kind}-{result.method}".lower())
    granularity, pattern = options.granularity, options.pattern
    left, right = st.columns(2)
    left.download_button("Download JSON", lambda: result.to_json(granularity, pattern), file_name=f"{name}.json",
                         mime="application/json", key=f"{key}_json", on_click="ignore")
    right.download_button("Download HTML", lambda: result.to_html(granularity, pattern), file_name=f"{name}.html",
                          mime="text/html", key=f"{key}_html", on_click="ignore")


def completeness_warning(result: SaliencyResult, key: str) -> None:
    """Integrated gradients' attributions should add up to f(x) − f(baseline); a large gap is said in plain
    sight, with the fixes (more steps, another baseline)."""
    c = result.completeness
    if c is None or c.relative_gap <= GAP_WARNING:
        return
    steps, baseline = result.config.get("steps"), result.config.get("baseline")
    st.warning(f"**Completeness gap {100 * c.relative_gap:.1f}%**: the attributions add up to {c.attribution_sum:+.3f}, "
               f"but f(x) − f(baseline) is {c.target_value - c.baseline_value:+.3f}. The integral is not resolved at "
               f"{steps} steps from the {baseline!r} baseline, so single scores may be off. Raise the steps or try "
               "another baseline.")
    if isinstance(steps, int) and steps < STEP_CHOICES_MAX:
        more = min(2 * steps, STEP_CHOICES_MAX)
        st.button(f"Re-run with {more} steps", key=f"{key}_more_steps", on_click=_set_steps, args=(more,))


def _set_steps(steps: int) -> None:
    st.session_state["ig_steps"] = steps


def heatmap_frame(matrix, rows, columns, value: str, numbered: bool = True, skip_zeros: bool = False,
                  offset: int = 0) -> pd.DataFrame:
    """Long-form cells of ``matrix`` [R, C] for a Vega-Lite heatmap; labels are numbered by position from
    ``offset``; ``skip_zeros`` leaves exact zeros out (the causal upper triangle of an attention map)."""
    def label(i: int, names: list[str]) -> str:
        return f"{i + offset:>3} {names[i]}" if numbered else names[i]

    return pd.DataFrame(
        [
            {"row": label(i, rows), "column": label(j, columns), value: float(v), "r": i, "c": j}
            for i, line in enumerate(matrix.tolist())
            for j, v in enumerate(line)
            if not (skip_zeros and v == 0)
        ]
    )


def heatmap_spec(rows: int, *, title: str, value: str, scheme: str = "blues", row_title: str = "query",
                 column_title: str = "key", domain: tuple[float, float] | None = None, height: int = 640) -> dict:
    cell = max(4, min(26, height // max(rows, 1)))
    return {
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


def report_errors(action):
    """Run ``action()``; a user error is shown as one red line (never a traceback) and yields None."""
    try:
        return action()
    except ShieldkitError as exc:
        st.error(str(exc))
        return None
