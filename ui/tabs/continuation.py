"""Continuation tab: prompt (or chat) in, generation out; explain a span of the continuation or a next-token
candidate."""

from __future__ import annotations

from typing import Any

import streamlit as st

from shieldkit.debugger import ContinuationTarget, NextTokenTarget, explain, next_token_candidates
from shieldkit.debugger.targets.language_model import prompt_part
from shieldkit.errors import ConfigError
from shieldkit.ui import state
from shieldkit.ui.components import report_errors, show_saliency
from shieldkit.ui.options import SaliencyOptions

DEFAULT_PROMPT = "The Eiffel Tower is a famous landmark in the city of"


def current_prompt() -> Any:
    """The prompt as the runtime takes it: a string, or chat messages."""
    if st.session_state.get("prompt_mode", "Text") == "Chat":
        messages = []
        if st.session_state.get("system", "").strip():
            messages.append({"role": "system", "content": st.session_state["system"]})
        messages.append({"role": "user", "content": st.session_state.get("user_message", "")})
        return messages
    return st.session_state.get("prompt", DEFAULT_PROMPT)


def _prompt_is_empty(prompt: Any) -> bool:
    return not prompt.strip() if isinstance(prompt, str) else not prompt[-1]["content"].strip()


def _generate(runtime, prompt: Any, max_new_tokens: int, placeholder) -> None:
    from shieldkit.model.generation import GenerationConfig

    text = ""
    stream = runtime.stream(prompt, GenerationConfig(max_new_tokens=max_new_tokens))
    for piece in stream:
        text += piece
        placeholder.markdown(f"**Generating…** {text}")
    placeholder.empty()
    st.session_state["continuation"] = text
    st.session_state["generated_for"] = repr(prompt)
    if not text:
        st.session_state["notice"] = "The model stopped at once; type a continuation to explain."


def render(runtime, options: SaliencyOptions) -> None:
    st.radio("Input", ["Text", "Chat"], horizontal=True, key="prompt_mode",
             help="Chat wraps your message in Gemma's turn format; the model answers as the 'model' turn.")
    if st.session_state["prompt_mode"] == "Chat":
        st.text_input("System (optional)", key="system")
        st.text_area("User message", "Name three safety checks for an LLM app.", key="user_message", height=80)
    else:
        st.text_area("Prompt", DEFAULT_PROMPT, key="prompt", height=90)
    prompt = current_prompt()
    if _prompt_is_empty(prompt):
        st.info("Type a prompt to start.")
        return
    left, middle, right = st.columns([1, 1, 2])
    max_new = left.number_input("Max new tokens", 1, 256, 16, key="max_new_tokens")
    auto = right.toggle("Generate when the prompt changes", value=True, key="auto_generate")
    clicked = middle.button("Generate", type="primary", key="generate")
    placeholder = st.empty()
    if clicked or (auto and st.session_state.get("generated_for") != repr(prompt)):
        report_errors(lambda: _generate(runtime, prompt, int(max_new), placeholder))
    if st.session_state.get("notice"):
        st.warning(st.session_state.pop("notice"))
    st.text_area("Continuation (generated, or type your own)", key="continuation", height=80)
    continuation = st.session_state.get("continuation", "")

    target_kind = st.radio("Explain", ["Continuation span", "Next token after the prompt"], horizontal=True,
                           key="target_kind")
    if target_kind == "Continuation span":
        if not continuation:
            st.info("Generate or type a continuation to explain it.")
            return
        target = _span_target(runtime, prompt, continuation)
    else:
        target = _next_token_target(runtime, prompt)
    if target is None:
        return
    st.markdown(f"**Target**: `{target.description}`")
    _explain_and_show(target, options, key={"tab": "continuation", "prompt": repr(prompt),
                                           "continuation": continuation, "target": target.details()})


def _span_target(runtime, prompt: Any, continuation: str):
    ids = runtime.encode(continuation, add_bos=False).tolist()
    pieces = runtime.tokenizer.convert_ids_to_tokens(ids)
    if len(pieces) > 1:
        first, last = st.select_slider(
            "Target span (continuation tokens)", options=list(range(len(pieces))), value=(0, len(pieces) - 1),
            format_func=lambda i: f"{i}: {pieces[i]}", key=f"span_{hash(continuation)}",
        )
    else:
        first, last = 0, 0
    return report_errors(lambda: ContinuationTarget(runtime, prompt, continuation, span=(first, last + 1)))


def _next_token_target(runtime, prompt: Any):
    ids = report_errors(lambda: prompt_part(runtime, prompt)[0])
    if ids is None:
        return None
    candidates = state.memo({"candidates": repr(prompt), "model": runtime.info.fingerprint},
                            lambda: next_token_candidates(runtime, ids, 10))
    labels = {c.rank: f"{c.text!r}  {100 * c.probability:.1f}%" for c in candidates}
    rank = st.radio("Candidate (top 10)", list(labels), format_func=labels.get, horizontal=True, key="candidate")
    contrast = st.selectbox("…versus (optional contrast)", [None, *labels], format_func=lambda r: "nothing" if r is None else labels[r],
                            key="contrast")
    if contrast == rank:
        st.warning("A candidate contrasted with itself scores 0 everywhere; pick another.")
        return None
    return report_errors(lambda: NextTokenTarget(
        runtime, prompt, candidates[rank].id, contrast=None if contrast is None else candidates[contrast].id))


def _explain_and_show(target, options: SaliencyOptions, key: dict) -> None:
    def compute():
        update, done = state.progress_callback(f"{options.method} on {len(target.document)} tokens")
        try:
            return explain(target, options.method, progress=update, **options.method_options)
        finally:
            done()

    with st.spinner("Computing saliency…"):
        result = report_errors(lambda: state.memo({**key, **options.key()}, compute))
    if result is not None:
        show_saliency(result, options, key="continuation")


def attention_input() -> tuple[Any, str]:
    """What the Attention tab looks at: this tab's prompt and continuation."""
    prompt = current_prompt()
    if _prompt_is_empty(prompt):
        raise ConfigError("type a prompt in the Continuation tab first")
    return prompt, st.session_state.get("continuation", "")
