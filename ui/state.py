"""Resources shared across reruns: the model (loaded once per process), a per-session memo of results, and the
worker thread that computes them.

Saliency, attention and scores are computed on one worker thread per process, not in the script: when a new edit
interrupts a run, the computation it started keeps going and its result lands in the session's memo, so coming
back to the same inputs never pays twice. A newer request from the same panel cancels that panel's older requests
that have not started yet, so a burst of edits queues one computation, not one per keystroke. Prefetched work (for
a view the user has not opened) is background: any request a run waits for drops the background jobs still queued,
so a prefetch never delays what is on screen; the next run queues them again.
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
# Panels whose results are big keep fewer: attention maps hold L x H x T x T weights (about 90 MB for 500 tokens
# of the 270M), and every edit of the Continuation text prefetches a new set.
PANEL_ENTRIES = {"attention": 2}
_PANELS = "shieldkit.memo.panels"
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


def _remember(token: str, value: Any, panel: str | None = None) -> None:
    cache = _cache()
    panels: dict[str, str] = st.session_state.setdefault(_PANELS, {})
    cache[token] = value
    cache.move_to_end(token)
    if panel is not None:
        panels[token] = panel
    if panel in PANEL_ENTRIES:
        same = [t for t in cache if panels.get(t) == panel]  # oldest first
        for old in same[:-PANEL_ENTRIES[panel]]:
            del cache[old]
    while len(cache) > MEMO_ENTRIES:
        cache.popitem(last=False)
    for gone in [t for t in panels if t not in cache]:
        del panels[gone]


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
    background: bool = False  # prefetched: dropped from the queue when a run waits for other work
    future: Future = field(default_factory=Future)
    done: int = 0
    total: int = 0

    def progress(self, done: int, total: int) -> None:  # called from the worker thread
        self.done, self.total = done, total


class Jobs:
    """One session's computations on the worker, by memo token (no Streamlit in here)."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def get(self, token: str) -> Job | None:
        return self._jobs.get(token)

    def start(self, token: str, panel: str, compute: Callable[[Callable[[int, int], None]], Any],
              executor: ThreadPoolExecutor, *, background: bool = False) -> Job:
        """Submit ``compute(progress)``; first cancel the jobs that have not started and that it supersedes: the
        panel's own, and (unless this one is background too) every background job."""
        for other, queued in list(self._jobs.items()):
            superseded = queued.panel == panel or (queued.background and not background)
            if superseded and queued.future.cancel():
                del self._jobs[other]
        job = Job(panel, background)
        job.future = executor.submit(compute, job.progress)
        self._jobs[token] = job
        return job

    def finish(self, token: str) -> Any:
        """The result of a finished job (its error raised), forgotten here."""
        return self._jobs.pop(token).future.result()

    def harvest(self) -> list[tuple[str, str, Any]]:
        """(token, panel, result) of the jobs that finished while nobody waited; cancelled and failed ones are
        dropped (the next run that asks recomputes and shows the error)."""
        finished = []
        for token, job in list(self._jobs.items()):
            if job.future.done():
                del self._jobs[token]
                if not job.future.cancelled() and job.future.exception() is None:
                    finished.append((token, job.panel, job.future.result()))
        return finished


def _jobs() -> Jobs:
    return st.session_state.setdefault(_JOBS, Jobs())


def _collect() -> None:
    for token, panel, value in _jobs().harvest():
        _remember(token, value, panel)


def prefetch(key: Any, compute: Callable[[Callable[[int, int], None]], Any], *, panel: str) -> None:
    """Start ``compute(progress)`` on the worker for ``key`` unless its result is known or on its way; never
    waits. For the view a user is likely to open next: its result is in the memo when they do."""
    token = _token(key)
    _collect()
    jobs = _jobs()
    if token not in _cache() and jobs.get(token) is None:
        jobs.start(token, panel, compute, _worker(), background=True)


def computed(key: Any, compute: Callable[[Callable[[int, int], None]], T], *, panel: str, label: str) -> T:
    """``compute(progress)`` once per session for ``key``, on the worker thread, while this run shows its
    progress. Errors raised by ``compute`` are raised here."""
    token = _token(key)
    _collect()
    cache = _cache()
    if token in cache:
        cache.move_to_end(token)
        return cache[token]
    jobs = _jobs()
    job = jobs.get(token) or jobs.start(token, panel, compute, _worker())
    bar = st.progress(0.0, text=label)
    while not job.future.done():
        fraction = job.done / job.total if job.total else 0.0
        bar.progress(min(fraction, 1.0), text=f"{label}: {job.done}/{job.total}" if job.total else f"{label}…")
        wait([job.future], timeout=POLL_SECONDS)
    bar.empty()
    value = jobs.finish(token)
    _remember(token, value, panel)
    return value
