"""Data tab, in the spirit of LIT: load a CSV/JSONL of texts (or the JSONL ``shieldkit classify`` prints), score them
all with a classifier, sort by score, click a row to explain it — the quickest way to find false positives. Then
"what to label next": the texts a label would help most, labelled here and exported as a CSV for
``shieldkit train --data``."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import streamlit as st

from shieldkit.debugger import explainable
from shieldkit.debugger.pool import parse_pool, rank_for_labelling
from shieldkit.errors import DataError
from shieldkit.ui import state
from shieldkit.ui.components import report_errors, show_saliency
from shieldkit.ui.options import SaliencyOptions
from shieldkit.ui.tabs import classifier as classifier_tab

LABEL_CHOICES = ["", "violates", "allowed"]


def render(runtime, options: SaliencyOptions) -> None:
    chosen = classifier_tab.choose(runtime, key="data_clf")
    upload = st.file_uploader("Texts to score (CSV or JSONL with a 'text' column; a 'label' column is shown too)",
                              type=["csv", "tsv", "jsonl", "ndjson"], key="data_file")
    path = st.text_input("…or the path of such a file on this machine", key="data_path", persist_state="page").strip()
    if not chosen or chosen[1] is None:
        return
    if upload is None and not path:
        st.info("Load a file of texts to score them all and sort by score.")
        return
    name, classifier = chosen
    loaded = report_errors(lambda: (upload.getvalue(), upload.name) if upload is not None else _read(path))
    if loaded is None:
        return
    data, file_name = loaded
    rows = report_errors(lambda: parse_pool(data, file_name))
    if rows is None:
        return
    key = {"pool": state.digest(data.hex()), "clf": name, "classifier": id(classifier)}
    texts = [row.text for row in rows]
    scores = report_errors(lambda: state.computed(key, lambda progress: classifier.score(texts), panel="data",
                                                  label=f"Scoring {len(texts)} texts with {name}"))
    if scores is None:
        return
    frame = pd.DataFrame({"row": [r.line for r in rows], "text": texts, "score": scores,
                          "flagged": [s >= classifier.threshold for s in scores],
                          "label": [LABEL_CHOICES[{None: 0, 1: 1, 0: 2}[r.label]] for r in rows]})
    frame = frame.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    flagged_allowed = int(((frame["label"] == "allowed") & frame["flagged"]).sum())
    st.caption(f"{len(frame)} texts · {int(frame['flagged'].sum())} flagged at threshold {classifier.threshold:.3f}"
               + (f" · {flagged_allowed} flagged although labelled allowed" if flagged_allowed else "")
               + " · click a row to explain it")
    event = st.dataframe(frame, hide_index=True, key=f"data_table_{state.digest(key)}", on_select="rerun",
                         selection_mode="single-row",
                         column_config={"score": st.column_config.ProgressColumn(format="%.3f", min_value=0.0,
                                                                                max_value=1.0)})
    picked = event.selection.rows if event else []
    if picked:
        text = frame.loc[picked[0], "text"]
        st.markdown(f"**Row {frame.loc[picked[0], 'row']}**: score {frame.loc[picked[0], 'score']:.3f}")
        if explainable(classifier):
            result = classifier_tab.explain_text(classifier, name, text, "log_odds", options, panel="data_explain")
            if result is not None:
                show_saliency(result, options, key="data")
        else:
            st.info(f"{name!r} can be scored, not explained.")
    label_next(frame, classifier.threshold, key)


def _read(path: str) -> tuple[bytes, str]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"{path}: no such file")
    return file.read_bytes(), file.name


def label_next(frame: pd.DataFrame, threshold: float, key: dict) -> None:
    st.subheader("What to label next")
    unlabelled = frame[frame["label"] == ""].reset_index(drop=True)
    if unlabelled.empty:
        st.info("Every text is labelled.")
        return
    n = st.number_input("How many", 1, max(1, len(unlabelled)), min(20, len(unlabelled)), key="data_next_n",
                        persist_state="page")
    picks = rank_for_labelling(list(unlabelled["text"]), list(unlabelled["score"]), threshold, int(n))
    st.caption("Least sure first (score near the threshold), spread over the pool, near-duplicates left out. "
               "Label them here and download the CSV for `shieldkit train --data`.")
    table = pd.DataFrame({"text": [p.text for p in picks], "score": [p.score for p in picks],
                          "uncertainty": [p.uncertainty for p in picks], "label": [""] * len(picks)})
    edited = st.data_editor(table, hide_index=True, key=f"data_labels_{state.digest(key)}", disabled=["text", "score",
                            "uncertainty"], column_config={
                                "label": st.column_config.SelectboxColumn(options=LABEL_CHOICES, required=False),
                                "score": st.column_config.NumberColumn(format="%.3f"),
                                "uncertainty": st.column_config.NumberColumn(format="%.2f")})
    labelled = edited[edited["label"].isin(["violates", "allowed"])]
    st.download_button(f"Download {len(labelled)} labelled rows (CSV)", lambda: training_csv(labelled),
                       file_name="labelled.csv", mime="text/csv", key="data_export", on_click="ignore",
                       disabled=labelled.empty)


def training_csv(labelled: pd.DataFrame) -> str:
    """text,label with 1 = violates, 0 = allowed: what ``shieldkit train --data`` reads."""
    out = io.StringIO()
    pd.DataFrame({"text": labelled["text"], "label": (labelled["label"] == "violates").astype(int)}).to_csv(
        out, index=False)
    return out.getvalue()
