"""Attention tab: per-layer/per-head weights, all heads of a layer, the head average, rollout, attention sinks,
and the logit lens.

By default <bos> is taken out and every row rescaled: sink heads park most of their weight there, which washes out
the colour scale of everything else. Clicking a cell shows that query's row as a ranked list.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from shieldkit.debugger import attention_maps, logit_lens, without_first_token
from shieldkit.debugger.html import attention_page
from shieldkit.errors import ConfigError
from shieldkit.ui import state
from shieldkit.ui.components import heatmap_frame, heatmap_spec, report_errors
from shieldkit.ui.tabs.continuation import attention_input

VIEWS = ["Head average", "Single head", "All heads", "Rollout"]
ISOLATE = "\u2068{}\u2069"  # first-strong isolate: a right-to-left token cannot reorder the text around it


def readable(probability: float) -> str:
    """A probability people can read: three decimals, or two significant digits in scientific notation."""
    return f"{probability:.3f}" if probability >= 0.001 else f"{probability:.1e}"


def render(runtime, options=None) -> None:
    inputs = report_errors(attention_input)
    if inputs is None:
        return
    prompt, continuation = inputs
    st.caption("The prompt and continuation from the Continuation tab. Rows are queries, columns are keys; "
               "each row sums to 1. Eager attention is switched on for this one forward pass.")
    key = maps_key(runtime, prompt, continuation)
    maps = report_errors(lambda: state.computed(key, lambda progress: attention_maps(runtime, prompt, continuation),
                                                panel="attention", label="Running the model with attention weights"))
    if maps is None:
        return
    maps_view(maps)
    sinks_view(maps)
    lens_view(runtime, maps, key)


def maps_key(runtime, prompt, continuation: str) -> dict:
    return {"attention": repr(prompt), "continuation": continuation, "model": runtime.info.fingerprint}


def prefetch(runtime) -> None:
    """Compute the attention maps of the Continuation tab's text in the background (about a quarter of a second
    for a short text), so opening this tab shows them at once; nothing when there is no prompt yet."""
    try:
        prompt, continuation = attention_input()
    except ConfigError:
        return
    state.prefetch(maps_key(runtime, prompt, continuation),
                   lambda progress: attention_maps(runtime, prompt, continuation), panel="attention")


@st.fragment
def maps_view(maps) -> None:
    layers, heads = maps.weights.shape[:2]
    left, middle, right = st.columns([3, 2, 1])
    view = left.radio("View", VIEWS, horizontal=True, key="attention_view", persist_state="page")
    layer = middle.slider("Layer", 0, layers - 1, layers - 1, key="attention_layer", persist_state="page")
    head = right.selectbox("Head", list(range(heads)), key="attention_head", disabled=view != "Single head",
                           persist_state="page")
    hide_bos = st.toggle("Leave out <bos> and rescale rows", value=len(maps.pieces) > 2, key="attention_hide_bos",
                         persist_state="page", help="Sink heads park most of their weight on <bos>; without it the "
                         "colour shows how the rest of the attention is spread over the text.")
    pieces, offset = (maps.pieces[1:], 1) if hide_bos else (maps.pieces, 0)
    kind = maps.layer_types[layer].replace("_", " ")

    def shown(matrix):
        return without_first_token(matrix) if hide_bos else matrix

    if view == "All heads":
        frames = []
        for h in range(heads):
            frame = heatmap_frame(shown(maps.weights[layer, h]), pieces, pieces, "weight", skip_zeros=True, offset=offset)
            frames.append(frame.assign(head=f"head {h}"))
        spec = heatmap_spec(len(pieces), title="", value="weight", height=220)
        spec = {"title": f"Layer {layer} ({kind}), every head", "facet": {"field": "head", "type": "nominal",
                "title": None}, "columns": min(heads, 4), "spec": {k: v for k, v in spec.items() if k != "title"}}
        st.vega_lite_chart(pd.concat(frames), spec, width="content", key="attention_grid")
        matrix = None
    else:
        if view == "Single head":
            matrix, title = maps.weights[layer, head], f"Layer {layer} ({kind}), head {head}"
        elif view == "Head average":
            matrix, title = maps.head_average[layer], f"Layer {layer} ({kind}), mean of {heads} heads"
        else:
            matrix, title = maps.rollout[layer], f"Attention rollout through layer {layer} (residual {maps.residual})"
        matrix = shown(matrix)
        spec = heatmap_spec(len(pieces), title=title + (" · <bos> left out" if hide_bos else ""), value="weight")
        spec["params"] = [{"name": "cell", "select": {"type": "point", "fields": ["r"]}}]
        event = st.vega_lite_chart(heatmap_frame(matrix, pieces, pieces, "weight", skip_zeros=True, offset=offset),
                                   spec, width="stretch", on_select="rerun", selection_mode="cell",
                                   key=f"attention_map_{state.digest(maps.pieces)}")
        picked = (event.selection.get("cell") or [{}])[0].get("r") if event else None
        row = int(picked) if picked is not None else len(pieces) - 1
        st.markdown(f"**Row of query {row + offset} {ISOLATE.format(pieces[row])!s}** (click a cell to pick another "
                    "query): where it looks, most weight first")
        weights = matrix[row].tolist()
        ranked = sorted(range(row + 1), key=lambda j: -weights[j])[:10]
        st.dataframe(pd.DataFrame([{"key": f"{j + offset} {ISOLATE.format(pieces[j])}", "weight": weights[j]}
                                   for j in ranked]), hide_index=True, key="attention_row",
                     column_config={"weight": st.column_config.ProgressColumn(format="%.3f", min_value=0.0,
                                                                             max_value=1.0)})
    chosen_head, kind_of_map = head if view == "Single head" else None, "rollout" if view == "Rollout" else "weights"
    a, b = st.columns(2)
    a.download_button("Download HTML", lambda: attention_page(maps, layer, chosen_head, kind_of_map), file_name=f"attention-layer{layer}.html", mime="text/html",
                      key="attn_html", on_click="ignore")
    b.download_button("Download JSON", lambda: json.dumps(maps.to_dict(layers=[layer], heads=True)),
                      file_name=f"attention-layer{layer}.json", mime="application/json", key="attn_json",
                      on_click="ignore")


def sinks_view(maps) -> None:
    layers, heads = maps.weights.shape[:2]
    st.subheader("Attention sinks")
    st.caption("Mean weight each head puts on the first token (<bos>), over all later queries. Heads near 1 park "
               "their attention there instead of reading the text.")
    sinks = pd.DataFrame([{"row": f"layer {l}", "column": f"head {h}", "sink": float(maps.sinks[l, h]), "r": l, "c": h}
                          for l in range(layers) for h in range(heads)])
    spec = heatmap_spec(layers, title="Sink score per head", value="sink", scheme="oranges", row_title="layer",
                        column_title="head", domain=(0.0, 1.0), height=360)
    st.vega_lite_chart(sinks, spec, width="stretch", key="attention_sinks")
    found = maps.sink_heads(0.5)
    st.markdown(f"**{len(found)} of {layers * heads} heads** put at least half their attention on the first token.")


@st.fragment
def lens_view(runtime, maps, key: dict) -> None:
    st.subheader("Logit lens")
    pieces = maps.pieces
    prompt_ids = maps.document.ids
    position = st.selectbox("Position", list(range(len(pieces))), index=len(pieces) - 1,
                            format_func=lambda i: f"{i}: {ISOLATE.format(pieces[i])}",
                            key=f"lens_position_{state.digest(prompt_ids.tolist())}", persist_state="page")
    lens = report_errors(lambda: state.computed({**key, "lens": position},
                                                lambda progress: logit_lens(runtime, prompt_ids, position, top_k=5),
                                                panel="lens", label="Logit lens"))
    if lens is None:
        return
    st.caption(f"What each layer would predict after {lens.token!r} if it were the last; the final prediction "
               f"{lens.watched!r} is followed across layers.")
    st.dataframe(pd.DataFrame([
        {"layer": entry.layer,
         "top predictions": "   ".join(f"{ISOLATE.format(p.piece)} {readable(p.probability)}" for p in entry.top),
         f"rank of {lens.watched}": entry.watched_rank, f"p({lens.watched})": readable(entry.watched_probability)}
        for entry in lens.layers
    ]), hide_index=True, key="lens_table")
