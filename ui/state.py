"""Resources shared across reruns: the model (loaded once per process) and a per-session memo of results."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import streamlit as st

if TYPE_CHECKING:
    from shieldkit.model.runtime import GemmaRuntime

T = TypeVar("T")
_MEMO = "shieldkit.memo"
MEMO_ENTRIES = 48  # results kept per session (oldest dropped first); keys name the classifier object by id()


@st.cache_resource(show_spinner="Loading Gemma (once per process)…")
def _load_runtime(settings_json: str) -> GemmaRuntime:
    from shieldkit.model.runtime import GemmaRuntime
    from shieldkit.model.settings import ModelSettings

    return GemmaRuntime.load(ModelSettings.create(**json.loads(settings_json)), progress=False)


def runtime() -> GemmaRuntime:
    """The Gemma named by SHIELDKIT_* settings (``shieldkit ui --model ...`` sets them)."""
    from shieldkit.model.settings import ModelSettings

    settings = ModelSettings.create()
    return _load_runtime(settings.model_dump_json(exclude_none=True))


@st.cache_resource(show_spinner="Loading the classifier…", max_entries=8)
def _load_classifier(ref: str, model_key: str, _runtime: GemmaRuntime):
    from shieldkit.ui import classifier_source

    return classifier_source.load(ref, _runtime)


def classifier(ref: str, rt: GemmaRuntime):
    return _load_classifier(ref, rt.info.fingerprint, rt)


def memo(key: Any, compute: Callable[[], T]) -> T:
    """``compute()`` once per session for ``key`` (JSON-able); reruns with the same inputs reuse the result."""
    cache: OrderedDict = st.session_state.setdefault(_MEMO, OrderedDict())
    token = json.dumps(key, sort_keys=True, default=str)
    if token in cache:
        cache.move_to_end(token)
        return cache[token]
    value = compute()
    cache[token] = value
    while len(cache) > MEMO_ENTRIES:
        cache.popitem(last=False)
    return value


def progress_callback(label: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """(callback for methods, cleanup): a Streamlit progress bar for long computations."""
    bar = st.progress(0.0, text=label)

    def update(done: int, total: int) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"{label}: {done}/{total}")

    return update, bar.empty
