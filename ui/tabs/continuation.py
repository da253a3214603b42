"""Continuation tab: prompt (or chat) in, generation out; explain a span of the continuation or a next-token
candidate.

Text and Chat keep their own prompt and continuation (switching back finds them as left), and every widget keeps
its value while hidden (``persist_state``). Widgets whose options depend on the prompt hold token ids or are keyed
to the text they index, so an edit never leaves them pointing at another token.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from shieldkit.debugger import ContinuationTarget, NextTokenTarget, explain, next_token_candidates
from shieldkit.debugger.targets.language_model import prompt_part
from shieldkit.errors import ConfigError
from shieldkit.ui import state
from shieldkit.ui.agreement import agreement_panel
from shieldkit.ui.components import report_errors, show_saliency
from shieldkit.ui.options import SaliencyOptions

DEFAULT_PROMPT = "The Eiffel Tower is a famous landmark in the city of"
DEFAULT_MESSAGE = "Name three safety checks for an LLM app."
CONTINUATION_KEY = {"Text": "continuation", "Chat": "chat_continuation"}
_GENERATED_FOR = "generated_for"  # {mode: repr(prompt) the continuation was generated for}


def mode() -> str:
    return st.session_state.get("prompt_mode", "Text")


def current_prompt() -> Any:
    """The prompt as the runtime takes it: a string, or chat messages."""
    if mode() == "Chat":
        messages = []
        if st.session_state.get("system", "").strip():
            messages.append({"role": "system", "content": st.session_state["system"]})
        messages.append({"role": "user", "content": st.session_state.get("user_message", DEFAULT_MESSAGE)})
        return messages
    return st.session_state.get("prompt", DEFAULT_PROMPT)


def current_continuation() -> str:
    return st.session_state.get(CONTINUATION_KEY[mode()], "")


def _prompt_is_empty(prompt: Any) -> bool:
    return not prompt.strip() if isinstance(prompt, str) else not prompt[-1]["content"].strip()


def _generate(runtime, prompt: Any, max_new_tokens: int, placeholder) -> None:
    from shieldkit.model.generation import GenerationConfig

    text = ""
    stream = runtime.stream(prompt, GenerationConfig(max_new_tokens=max_new_tokens), float_greedy=True)  # the explained model's own text
    for piece in stream:
        text += piece
        placeholder.markdown(f"**Generating…** {text}")
    placeholder.empty()
    st.session_state[CONTINUATION_KEY[mode()]] = text
    st.session_state.setdefault(_GENERATED_FOR, {})[mode()] = repr(prompt)
    if not text:
        st.session_state["notice"] = "The model stopped at once; type a continuation to explain."


def render(runtime, options: SaliencyOptions) -> None:
    st.radio("Input", ["Text", "Chat"], horizontal=True, key="prompt_mode", persist_state="page",
             help="Chat wraps your message in Gemma's turn format; the model answers as the 'model' turn.")
    if mode() == "Chat":
        st.text_input("System (optional)", key="system", persist_state="page")
        st.text_area("User message", DEFAULT_MESSAGE, key="user_message", height=80, persist_state="page")
    else:
        st.text_area("Prompt", DEFAULT_PROMPT, key="prompt", height=90, persist_state="page")
    prompt = current_prompt()
    if _prompt_is_empty(prompt):
        st.info("Type a prompt to start.")
        return
    left, middle, right = st.columns([1, 1, 2])
    max_new = left.number_input("Max new tokens", 1, 256, 16, key="max_new_tokens", persist_state="page")
    auto = right.toggle("Generate when the prompt changes", value=True, key="auto_generate", persist_state="page")
    clicked = middle.button("Generate", type="primary", key="generate")
    placeholder = st.empty()
    stale = st.session_state.get(_GENERATED_FOR, {}).get(mode()) != repr(prompt)
    if clicked or (auto and stale):
        report_errors(lambda: _generate(runtime, prompt, int(max_new), placeholder))
    if st.session_state.get("notice"):
        st.warning(st.session_state.pop("notice"))
    st.text_area("Continuation (generated, or type your own)", key=CONTINUATION_KEY[mode()], height=80,
                 persist_state="page")
    explanation(runtime, options, prompt, current_continuation())


@st.fragment
def explanation(runtime, options: SaliencyOptions, prompt: Any, continuation: str) -> None:
    """What to explain and the result; choosing another span or candidate reruns only this part."""
    target_kind = st.radio("Explain", ["Continuation span", "Next token after the prompt"], horizontal=True,
                           key="target_kind", persist_state="page")
    if target_kind == "Continuation span":
        if not continuation:
            st.info("Generate or type a continuation to explain it.")
            return
        make = _span_target(runtime, prompt, continuation)
    else:
        make = _next_token_target(runtime, prompt)
    if make is None:
        return
    description, details, build = make
    st.markdown(f"**Target**: `{description}`")
    key = {"tab": "continuation", "prompt": repr(prompt), "continuation": continuation, "target": details,
           "model": runtime.info.fingerprint}

    def compute(progress):
        return explain(build(), options.method, progress=progress, **options.method_options)

    result = report_errors(lambda: state.computed({**key, **options.key()}, compute, panel="continuation",
                                                  label=f"{options.method} on the continuation"))
    if result is not None:
        show_saliency(result, options, key="continuation")
        agreement_panel(options, key, build, result, panel_key="continuation")


def _span_target(runtime, prompt: Any, continuation: str):
    ids = runtime.encode(continuation, add_bos=False).tolist()
    if not ids:
        st.info("The continuation has no tokens to explain.")
        return None
    pieces = runtime.tokenizer.convert_ids_to_tokens(ids)
    first, last = 0, len(pieces) - 1
    if len(pieces) > 1:
        first, last = st.select_slider(
            "Target span (continuation tokens)", options=list(range(len(pieces))), value=(0, len(pieces) - 1),
            format_func=lambda i: f"{i}: {pieces[i]}", key=f"span_{state.digest(ids)}", persist_state="page",
        )
    span = (first, last + 1)
    text = runtime.decode(ids[first : last + 1], skip_special_tokens=False)
    return (f"log p({text!r} | context)", {"span": list(span)},
            lambda: ContinuationTarget(runtime, prompt, continuation, span=span))


def _next_token_target(runtime, prompt: Any):
    ids = report_errors(lambda: prompt_part(runtime, prompt)[0])
    if ids is None:
        return None
    candidates = state.memo({"candidates": repr(prompt), "model": runtime.info.fingerprint},
                            lambda: next_token_candidates(runtime, ids, 10))
    labels = {c.id: f"{c.text!r}  {100 * c.probability:.1f}%" for c in candidates}
    token = st.radio("Candidate (top 10)", list(labels), format_func=labels.get, horizontal=True, key="candidate",
                     persist_state="page")
    contrast = st.selectbox("…versus (optional contrast)", [None, *labels],
                            format_func=lambda i: "nothing" if i is None else labels[i], key="contrast",
                            persist_state="page")
    if contrast == token:
        st.warning("A candidate contrasted with itself scores 0 everywhere; pick another.")
        return None
    text = {c.id: c.text for c in candidates}
    description = f"log p({text[token]!r} | prompt)" + ("" if contrast is None else f" − log p({text[contrast]!r} | prompt)")
    return (description, {"token": token, "contrast": contrast},
            lambda: NextTokenTarget(runtime, prompt, token, contrast=contrast))


def attention_input() -> tuple[Any, str]:
    """What the Attention tab looks at: this tab's prompt and continuation."""
    prompt = current_prompt()
    if _prompt_is_empty(prompt):
        raise ConfigError("type a prompt in the Continuation tab first")
    return prompt, current_continuation()
