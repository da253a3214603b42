"""Under load, through a real proxy on loopback: a full classifier queue answers 429 with Retry-After (never a
503 or a pass), a failing scorer fails closed with a clean 503, and the score cache shows in the metrics."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

POLICY = """
policies:
  default:
    input:
      - {name: hate, kind: classifier, classifier: hate}
      - {name: violence, kind: classifier, classifier: violence, on_error: allow}
"""
CHAT = {"model": "stub", "messages": [{"role": "user", "content": "hello there"}]}


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


@pytest.fixture
def gated(make_proxy, fakes, tiny_runtime):
    """A proxy whose fake bank holds every call until ``gate`` is set; ``entered`` counts calls begun."""
    gate, entered, holder = threading.Event(), [], {}
    inner = fakes.loader(holder)

    def loader(refs, runtime):
        bank = inner(refs, runtime)
        score = bank.score

        def held(texts, policies=None):
            entered.append(list(texts))
            gate.wait(20)
            return score(texts, policies)

        bank.score = held
        return bank

    proxy = make_proxy(POLICY, bank_loader=loader, runtime=tiny_runtime, classifier_queue_texts=2)
    yield proxy, gate, entered
    gate.set()


def test_a_full_queue_answers_429_with_retry_after_and_admitted_work_completes(gated):
    proxy, gate, entered = gated
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(proxy.post, "/v1/moderations", json={"input": "occupies the classifiers"})
        wait_until(lambda: len(entered) == 1)
        queued = [pool.submit(proxy.post, "/v1/moderations", json={"input": text}) for text in ("one", "two")]
        wait_until(lambda: proxy.services.scorer.scheduler.queued == 2)
        for path, body in (("/v1/chat/completions", CHAT), ("/v1/moderations", {"input": "another"})):
            refused = proxy.post(path, json=body)
            error = refused.json()["error"]
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1, refused.text
            assert error["type"] == "rate_limit_error" and error["code"] == "classifier_queue_full"
            assert "classifier queue is full" in error["message"]
        gate.set()
        assert first.result().status_code == 200 and all(q.result().status_code == 200 for q in queued)
    assert proxy.post("/v1/chat/completions", json=CHAT).status_code == 200
    assert b'shieldkit_requests_total{endpoint="/v1/chat/completions",status="429"} 1.0' in httpx.get(proxy.url + "/metrics").content


def test_a_failing_scorer_fails_closed_with_a_clean_503(make_proxy, fakes, tiny_runtime):
    holder = {}
    proxy = make_proxy(POLICY, bank_loader=fakes.loader(holder), runtime=tiny_runtime)
    holder["bank"].fail = True
    chat = proxy.post("/v1/chat/completions", json=CHAT)
    assert chat.status_code == 503 and chat.json()["error"]["code"] == "guardrail_error"
    moderation = proxy.post("/v1/moderations", json={"input": "hello there"})
    assert moderation.status_code == 503 and moderation.json()["error"]["code"] == "guardrail_error"
    check = proxy.post("/v1/check", json={"text": "hello there"}).json()
    assert check["decision"] == "block" and check["blocked_by"] == "hate"
    assert {c["name"]: c["outcome"] for c in check["checks"]} == {"hate": "error", "violence": "error"}


def test_repeated_texts_are_answered_from_the_score_cache(make_proxy, fakes, tiny_runtime):
    holder = {}
    proxy = make_proxy(POLICY, bank_loader=fakes.loader(holder), runtime=tiny_runtime)
    first = proxy.post("/v1/check", json={"text": "a system prompt seen often"}).json()
    again = proxy.post("/v1/check", json={"text": "a system prompt seen often"}).json()
    assert [c["score"] for c in first["checks"]] == [c["score"] for c in again["checks"]]
    assert len(holder["bank"].calls) == 1
    metrics = httpx.get(proxy.url + "/metrics").content
    assert b'shieldkit_classifier_cache_total{result="hit"} 2.0' in metrics  # two checks, one text, second request
    assert b'shieldkit_classifier_cache_total{result="miss"} 2.0' in metrics


@pytest.mark.anyio
async def test_a_stream_whose_output_checks_are_not_admitted_withholds_the_rest():
    from shieldkit.guardrails.checks.base import CheckConfig, Overloaded
    from shieldkit.guardrails.pipeline.engine import Check, Guard
    from shieldkit.guardrails.pipeline.streaming import StreamJob, guarded_sse
    from shieldkit.guardrails.pipeline.vault import Vault
    from shieldkit.guardrails.policy.schema import Policy
    from shieldkit.guardrails.upstream import UpstreamStream

    class FullQueue:
        async def scan(self, texts):
            raise Overloaded("the classifier queue is full", retry_after=2)

    async def pieces():
        for piece in ("Hello there. ", "And more."):
            yield piece

    guard = Guard("output", [Check(CheckConfig(name="hate", kind="classifier"), FullQueue(), "normalised")])
    statuses = []
    job = StreamJob(guard, Policy(), Vault(), "m", False, time.perf_counter())
    events = [event async for event in guarded_sse(job, UpstreamStream(pieces=pieces()),
                                                    on_done=lambda verdict, status: statuses.append(status))]
    body = b"".join(events).decode()
    data = [json.loads(event[6:]) for event in body.split("\n\n") if event.startswith("data: {")]
    assert data[-1]["error"]["code"] == "classifier_queue_full" and "Hello" not in body
    assert statuses == ["overloaded"]
