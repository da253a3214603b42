"""Resources shared across reruns: the model (loaded once per process), a per-session memo of results, and the
worker thread that computes them.

Saliency, attention and scores are computed on one worker thread per process, not in the script: when a new edit
interrupts a run, the computation it started keeps going and its result lands in the session's memo, so coming
back to the same inputs never pays twice. A newer request from the same panel cancels that panel's older requests
that have not started yet, so a burst of edits queues one computation, not one per keystroke.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import streamlit as st

if TYPE_CHECKING:
    from shieldkit.model.runtime import GemmaRuntime

T = TypeVar("T")
_MEMO = "shieldkit.memo"
_JOBS = "shieldkit.jobs"
MEMO_ENTRIES = 48  # results kept per session (oldest dropped first); keys name the classifier object by id()
POLL_SECONDS = 0.1  # how often a waiting run refreshes its progress bar (and notices a newer edit)


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


@st.cache_resource
def _worker() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="shieldkit-compute")


def digest(value: Any) -> str:
    """A short stable name for a JSON-able value (widget keys that must change when their input does)."""
    return hashlib.sha256(_token(value).encode()).hexdigest()[:12]


def _token(key: Any) -> str:
    return json.dumps(key, sort_keys=True, default=str)


def _cache() -> OrderedDict:
    return st.session_state.setdefault(_MEMO, OrderedDict())


def _remember(token: str, value: Any) -> None:
    cache = _cache()
    cache[token] = value
    cache.move_to_end(token)
    while len(cache) > MEMO_ENTRIES:
        cache.popitem(last=False)


def memo(key: Any, compute: Callable[[], T]) -> T:
    """``compute()`` once per session for ``key`` (JSON-able), in the script; for quick things only."""
    token = _token(key)
    cache = _cache()
    if token in cache:
        cache.move_to_end(token)
        return cache[token]
    value = compute()
    _remember(token, value)
    return value


@dataclass
class Job:
    panel: str
    future: Future = field(default_factory=Future)
    done: int = 0
    total: int = 0

    def progress(self, done: int, total: int) -> None:  # called from the worker thread
        self.done, self.total = done, total


def cached(key: Any) -> Any | None:
    """The memoised result for ``key``, or None (nothing is computed)."""
    _collect()
    return _cache().get(_token(key))


def computed(key: Any, compute: Callable[[Callable[[int, int], None]], T], *, panel: str, label: str) -> T:
    """``compute(progress)`` once per session for ``key``, on the worker thread, while this run shows its
    progress. Errors raised by ``compute`` are raised here."""
    token = _token(key)
    _collect()
    cache = _cache()
    if token in cache:
        cache.move_to_end(token)
        return cache[token]
    jobs: dict[str, Job] = st.session_state.setdefault(_JOBS, {})
    job = jobs.get(token)
    if job is None:
        for other, queued in list(jobs.items()):
            if queued.panel == panel and queued.future.cancel():
                del jobs[other]
        job = Job(panel)
        job.future = _worker().submit(compute, job.progress)
        jobs[token] = job
    bar = st.progress(0.0, text=label)
    while not job.future.done():
        fraction = job.done / job.total if job.total else 0.0
        bar.progress(min(fraction, 1.0), text=f"{label}: {job.done}/{job.total}" if job.total else f"{label}…")
        wait([job.future], timeout=POLL_SECONDS)
    bar.empty()
    del jobs[token]
    value = job.future.result()
    _remember(token, value)
    return value


def _collect() -> None:
    """Move results that finished while no run was waiting for them into the memo (failed ones are dropped: the
    next run that asks recomputes and shows the error)."""
    jobs: dict[str, Job] = st.session_state.get(_JOBS, {})
    for token, job in list(jobs.items()):
        if job.future.cancelled():
            del jobs[token]
        elif job.future.done():
            del jobs[token]
            if job.future.exception() is None:
                _remember(token, job.future.result())
