"""Attention tab: per-layer/per-head weights, the head average, rollout, attention sinks, and the logit lens."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from shieldkit.debugger import attention_maps, logit_lens
from shieldkit.debugger.html import attention_page
from shieldkit.ui import state
from shieldkit.ui.components import heatmap, report_errors
from shieldkit.ui.tabs.continuation import attention_input

VIEWS = ["Head average", "Single head", "Rollout"]


def render(runtime) -> None:
    inputs = report_errors(attention_input)
    if inputs is None:
        return
    prompt, continuation = inputs
    st.caption("The prompt and continuation from the Continuation tab. Rows are queries, columns are keys; "
               "each row sums to 1. Eager attention is switched on for this one forward pass.")
    key = {"attention": repr(prompt), "continuation": continuation, "model": runtime.info.fingerprint}
    with st.spinner("Running the model with attention weights…"):
        maps = report_errors(lambda: state.memo(key, lambda: attention_maps(runtime, prompt, continuation)))
    if maps is None:
        return
    layers, heads = maps.weights.shape[:2]
    left, middle, right = st.columns([2, 2, 1])
    view = left.radio("View", VIEWS, horizontal=True, key="attention_view")
    layer = middle.slider("Layer", 0, layers - 1, layers - 1, key="attention_layer")
    head = right.selectbox("Head", list(range(heads)), key="attention_head", disabled=view != "Single head")
    pieces = maps.pieces
    kind = maps.layer_types[layer].replace("_", " ")
    if view == "Single head":
        heatmap(maps.weights[layer, head], pieces, pieces, title=f"Layer {layer} ({kind}), head {head}", value="weight",
                skip_zeros=True)
    elif view == "Head average":
        heatmap(maps.head_average[layer], pieces, pieces, title=f"Layer {layer} ({kind}), mean of {heads} heads",
                value="weight", skip_zeros=True)
    else:
        heatmap(maps.rollout[layer], pieces, pieces, value="share", skip_zeros=True,
                title=f"Attention rollout through layer {layer} (residual {maps.residual}, rows renormalised)")
    page = attention_page(maps, layer, head if view == "Single head" else None,
                          "rollout" if view == "Rollout" else "weights")
    data = json.dumps(maps.to_dict(layers=[layer], heads=True))
    a, b = st.columns(2)
    a.download_button("Download HTML", page, file_name=f"attention-layer{layer}.html", mime="text/html", key="attn_html")
    b.download_button("Download JSON", data, file_name=f"attention-layer{layer}.json", mime="application/json",
                      key="attn_json")

    st.subheader("Attention sinks")
    st.caption("Mean weight each head puts on the first token (<bos>), over all later queries. Heads near 1 park "
               "their attention there instead of reading the text.")
    heatmap(maps.sinks, [f"layer {l}" for l in range(layers)], [f"head {h}" for h in range(heads)],
            title="Sink score per head", value="sink", scheme="oranges", row_title="layer", column_title="head",
            domain=(0.0, 1.0), numbered=False)
    sinks = maps.sink_heads(0.5)
    st.markdown(f"**{len(sinks)} of {layers * heads} heads** put at least half their attention on the first token.")

    st.subheader("Logit lens")
    position = st.selectbox("Position", list(range(len(pieces))), index=len(pieces) - 1,
                            format_func=lambda i: f"{i}: {pieces[i]}", key="lens_position")
    lens = report_errors(lambda: state.memo({**key, "lens": position},
                                            lambda: logit_lens(runtime, maps.document.ids, position, top_k=5)))
    if lens is None:
        return
    st.caption(f"What each layer would predict after {lens.token!r} if it were the last; the final prediction "
               f"{lens.watched!r} is followed across layers.")
    st.dataframe(pd.DataFrame([
        {"layer": entry.layer, "top predictions": "  ".join(f"{p.piece} {p.probability:.2f}" for p in entry.top),
         f"rank of {lens.watched}": entry.watched_rank, f"p({lens.watched})": entry.watched_probability}
        for entry in lens.layers
    ]), hide_index=True, key="lens_table")
