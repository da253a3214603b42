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
    assert jobs.harvest() == [("a", "result a")] and jobs.get("a") is None


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
    assert sorted(jobs.harvest()) == [("a", "a"), ("x", "x")]


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
