"""The worker's bookkeeping: work started by a run that an edit interrupted is kept, and a burst of edits queues
one computation per panel, not one per edit."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from shieldkit.ui.state import Jobs


@pytest.fixture
def executor():
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool


def test_a_job_nobody_waits_for_any_more_lands_in_the_harvest(executor):
    jobs, release = Jobs(), threading.Event()
    jobs.start("a", "panel", lambda progress: release.wait(10) and "result a", executor)
    assert jobs.harvest() == []  # still running: the run that started it was interrupted by an edit
    release.set()
    jobs.get("a").future.result(timeout=10)
    assert jobs.harvest() == [("a", "panel", "result a")] and jobs.get("a") is None


def test_newer_requests_cancel_the_panels_queued_ones_only(executor):
    jobs, release = Jobs(), threading.Event()
    running = jobs.start("a", "panel", lambda progress: release.wait(10) and "a", executor)
    queued = jobs.start("b", "panel", lambda progress: "b", executor)
    other = jobs.start("x", "other panel", lambda progress: "x", executor)
    newest = jobs.start("c", "panel", lambda progress: "c", executor)
    assert queued.future.cancelled() and jobs.get("b") is None  # never started: dropped for the newer edit
    assert not running.future.cancelled() and not other.future.cancelled()  # started, or another panel's
    release.set()
    assert newest.future.result(timeout=10) == "c" and jobs.finish("c") == "c"
    assert sorted(jobs.harvest()) == [("a", "panel", "a"), ("x", "other panel", "x")]


def test_errors_reach_the_run_that_waits(executor):
    jobs = Jobs()

    def fail(progress):
        raise ValueError("bad input")

    jobs.start("e", "panel", fail, executor).future.exception(timeout=10)
    with pytest.raises(ValueError, match="bad input"):
        jobs.finish("e")


def test_a_request_someone_waits_for_drops_the_queued_prefetches(executor):
    jobs, release = Jobs(), threading.Event()
    jobs.start("busy", "panel", lambda progress: release.wait(10) and "busy", executor)
    prefetch = jobs.start("maps", "attention", lambda progress: "maps", executor, background=True)
    second = jobs.start("lens", "lens", lambda progress: "lens", executor, background=True)
    assert not prefetch.future.cancelled()  # background work does not push out other background work
    wanted = jobs.start("heatmap", "continuation", lambda progress: "heatmap", executor)
    assert prefetch.future.cancelled() and second.future.cancelled()
    assert jobs.get("maps") is None and jobs.get("lens") is None
    release.set()
    assert wanted.future.result(timeout=10) == "heatmap"


def test_big_results_keep_fewer_entries(monkeypatch):
    """Every edit of the Continuation text prefetches new attention maps (hundreds of MB for long texts): only the
    newest two stay, while other panels' results keep the whole memo."""
    from shieldkit.ui import state

    monkeypatch.setattr(state.st, "session_state", {})
    for index in range(5):
        state._remember(f"maps {index}", f"maps {index}", "attention")
        state._remember(f"heatmap {index}", f"heatmap {index}", "continuation")
    assert list(state._cache()) == ["heatmap 0", "heatmap 1", "heatmap 2", "maps 3", "heatmap 3", "maps 4",
                                    "heatmap 4"]
    assert set(state.st.session_state[state._PANELS]) == set(state._cache())
