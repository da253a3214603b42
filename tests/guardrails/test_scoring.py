"""The scorer: one link to the classifiers package, fair batches, admission control and the score cache."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from shieldkit.guardrails.checks.base import Overloaded
from shieldkit.guardrails.policy import parse_policy_text
from shieldkit.guardrails.scoring.scheduler import FairScheduler

pytestmark = pytest.mark.anyio
GUARDRAILS = Path(__file__).resolve().parents[2] / "guardrails"
IMPORTS_CLASSIFIERS = re.compile(r"^\s*(from\s+shieldkit\.classifiers\b|import\s+shieldkit\.classifiers\b|"
                                 r"from\s+shieldkit\s+import\s+classifiers\b)", re.MULTILINE)


def test_one_module_of_the_proxy_imports_the_classifiers():
    importers = sorted(str(path.relative_to(GUARDRAILS)) for path in GUARDRAILS.rglob("*.py")
                       if IMPORTS_CLASSIFIERS.search(path.read_text(encoding="utf-8")))
    assert importers == ["scoring/bank.py"]
    assert not [path for path in GUARDRAILS.rglob("*.py") if "import_module" in path.read_text(encoding="utf-8")]


class Worker:
    """A run_batch that records each batch and holds the first one until released."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()

    async def __call__(self, texts: list[str]) -> list[dict[str, float]]:
        self.batches.append(list(texts))
        if len(self.batches) == 1:
            await self.release.wait()
        return [{"head": len(text) / 100} for text in texts]

    async def busy(self, scheduler: FairScheduler) -> asyncio.Task:
        """Occupy the scheduler with a first batch that waits for ``release``."""
        task = asyncio.create_task(scheduler.submit(["first"]))
        while not self.batches:
            await asyncio.sleep(0)
        return task


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_single_text_is_served_before_the_rest_of_a_queued_big_batch():
    worker = Worker()
    scheduler = FairScheduler(worker, window_s=0, max_batch=8)
    first = await worker.busy(scheduler)
    big = asyncio.create_task(scheduler.submit([f"moderation text {i}" for i in range(16)]))
    await settle()
    single = asyncio.create_task(scheduler.submit(["hello there"]))
    await settle()
    worker.release.set()
    rows = await asyncio.gather(first, big, single)
    # the next batch holds the single check and one text of the big job, which goes on one text per pass
    assert worker.batches[1] == ["moderation text 0", "hello there"]
    assert worker.batches[2:] == [[f"moderation text {i}"] for i in range(1, 16)]
    assert rows[2] == [{"head": 0.11}] and len(rows[1]) == 16


async def test_a_bigger_share_per_job_splits_big_jobs_into_interleaved_chunks():
    worker = Worker()
    scheduler = FairScheduler(worker, window_s=0, max_batch=4, per_job=2)
    first = await worker.busy(scheduler)
    big = asyncio.create_task(scheduler.submit([f"m{i}" for i in range(7)]))
    await settle()
    single = asyncio.create_task(scheduler.submit(["hello there"]))
    await settle()
    worker.release.set()
    await asyncio.gather(first, big, single)
    assert worker.batches[1:] == [["m0", "hello there", "m1"], ["m2", "m3"], ["m4", "m5"], ["m6"]]


async def test_round_robin_takes_one_text_per_job_in_turn():
    worker = Worker()
    scheduler = FairScheduler(worker, window_s=0, max_batch=3, per_job=3)
    first = await worker.busy(scheduler)
    jobs = [asyncio.create_task(scheduler.submit([f"{name}{i}" for i in range(3)])) for name in "abcd"]
    await settle()
    worker.release.set()
    await asyncio.gather(first, *jobs)
    assert worker.batches[1:] == [["a0", "b0", "c0"], ["d0", "a1", "b1"], ["c1", "d1", "a2"], ["b2", "c2", "d2"]]


async def test_a_text_several_jobs_wait_for_is_scored_once():
    worker = Worker()
    scheduler = FairScheduler(worker, window_s=0, max_batch=8)
    first = await worker.busy(scheduler)
    # seven classifier checks of one request submit the same text
    checks = [asyncio.create_task(scheduler.submit(["system prompt", "hi"])) for _ in range(7)]
    await settle()
    assert scheduler.queued == 2
    worker.release.set()
    await asyncio.gather(first, *checks)
    assert worker.batches[1:] == [["system prompt", "hi"]]


async def test_a_full_queue_refuses_new_work_with_a_retry_time():
    worker = Worker()
    scheduler = FairScheduler(worker, window_s=0, max_batch=2, max_queued=4)
    first = await worker.busy(scheduler)
    singles = [asyncio.create_task(scheduler.submit([f"s{i}"])) for i in range(4)]
    await settle()
    with pytest.raises(Overloaded) as refused:  # four single checks ahead of it: one more is past the bound
        await scheduler.submit(["one more"])
    assert refused.value.retry_after >= 1 and "4 texts would be scored before these 1" in str(refused.value)
    repeat = asyncio.create_task(scheduler.submit(["s1", "s2"]))  # texts already waiting cost no room
    await settle()
    assert scheduler.queued == 4 and scheduler.stats.refused == 1
    worker.release.set()
    await asyncio.gather(first, *singles, repeat)


async def test_a_big_job_does_not_shut_out_single_checks():
    """A job past the whole bound is admitted alone; a single check behind it is in the next batch, so it is let
    in, while a second big job, which would wait for all of the first, is refused."""
    worker = Worker()
    scheduler = FairScheduler(worker, window_s=0, max_batch=2, max_queued=4)
    first = await worker.busy(scheduler)
    big = asyncio.create_task(scheduler.submit([f"t{i}" for i in range(10)]))  # alone in the queue: admitted
    await settle()
    single = asyncio.create_task(scheduler.submit(["hello there"]))
    await settle()
    with pytest.raises(Overloaded):
        await scheduler.submit([f"u{i}" for i in range(10)])
    worker.release.set()
    await asyncio.gather(first, big, single)
    assert "hello there" in worker.batches[1] and scheduler.stats.refused == 1


async def test_admitted_work_gets_twice_the_room():
    worker = Worker()
    scheduler = FairScheduler(worker, window_s=0, max_batch=2, max_queued=2)
    first = await worker.busy(scheduler)
    waiting = [asyncio.create_task(scheduler.submit([text])) for text in ("a", "b")]
    await settle()
    with pytest.raises(Overloaded):
        await scheduler.submit(["c"])
    output = asyncio.create_task(scheduler.submit(["c", "d"], admitted=True))  # an output check of a let-in request
    await settle()
    worker.release.set()
    assert len(await output) == 2
    await asyncio.gather(first, *waiting)


async def test_a_caller_that_goes_away_frees_its_room():
    worker = Worker()
    scheduler = FairScheduler(worker, window_s=0, max_batch=2)
    first = await worker.busy(scheduler)
    gone = asyncio.create_task(scheduler.submit(["x", "y", "z"]))
    await settle()
    gone.cancel()
    await settle()
    assert scheduler.queued == 0
    worker.release.set()
    await first
    assert worker.batches == [["first"]]


async def test_a_failing_batch_fails_its_jobs_and_the_next_batch_runs():
    calls = []

    async def flaky(texts):
        calls.append(texts)
        if len(calls) == 1:
            raise RuntimeError("out of memory")
        return [{"head": 0.5} for _ in texts]

    scheduler = FairScheduler(flaky, window_s=0, max_batch=2)
    with pytest.raises(RuntimeError, match="classifier scoring failed: out of memory"):
        await scheduler.submit(["a"])
    assert await scheduler.submit(["b"]) == [{"head": 0.5}]


async def test_a_closed_scheduler_fails_waiting_work():
    worker = Worker()
    scheduler = FairScheduler(worker, window_s=0, max_batch=1)
    first = await worker.busy(scheduler)
    queued = asyncio.create_task(scheduler.submit(["later"]))
    await settle()
    await scheduler.aclose()
    for task in (first, queued):
        with pytest.raises(Exception, match="shut down"):
            await task


SCORED_POLICY = """
policies:
  default:
    input:
      - {name: hate, kind: classifier, classifier: hate}
      - {name: strict, kind: classifier, classifier: violence, threshold: 0.01}
"""


async def test_the_scorer_chooses_thresholds_and_caches_scores(tmp_path, fakes):
    holder = {}
    loaded = parse_policy_text(SCORED_POLICY, base_dir=tmp_path)
    scorer = fakes.scorer(loaded, holder, window_ms=0)
    hate, strict = scorer.head("hate"), scorer.head("violence", threshold=0.01)
    first = await scorer.score(["a vilehate text", "calm"], [hate, strict])
    assert [(r.head, r.threshold, r.flagged) for r in first] == [("hate", 0.5, [True, False]),
                                                                 ("violence", 0.01, [True, True])]
    passes = len(holder["bank"].calls)
    again = await scorer.score(["calm", "a vilehate text"], [hate])
    assert again[0].scores == first[0].scores[::-1]
    assert len(holder["bank"].calls) == passes  # the second call was answered from the cache
    assert [h.key for h in scorer.heads_for("default")] == [hate.key, strict.key]
    await scorer.aclose()


async def test_the_cache_can_be_turned_off(tmp_path, fakes):
    holder = {}
    scorer = fakes.scorer(parse_policy_text(SCORED_POLICY, base_dir=tmp_path), holder, window_ms=0, cache_size=0)
    for _ in range(2):
        await scorer.score(["same text"], [scorer.head("hate")])
    assert len(holder["bank"].calls) == 2
    await scorer.aclose()


@pytest.fixture(scope="module")
def tiny_bank(tiny_runtime):
    """A real GemmaBank (safety model and two heads) trained in seconds on the tiny random Gemma."""
    import numpy as np

    from shieldkit.classifiers import GemmaBank
    from shieldkit.classifiers.corpus import Corpus
    from shieldkit.classifiers.safety_training import SafetyTrainingConfig, train_safety_model

    rows = [*[(f"I hate the {g} people", [1, -1]) for g in ("red", "old", "rich", "poor")],
            *[(f"I will hit {w} with a bat", [-1, 1]) for w in ("him", "her", "them", "you")],
            *[(f"I like {t} on a sunny day", [0, 0]) for t in ("cats", "tea", "music", "books", "maps", "jazz")]]
    corpus = Corpus(texts=[t for t, _ in rows], labels=np.array([labels for _, labels in rows], dtype=np.int8),
                    weights=np.ones(len(rows), np.float32), split=np.array(["calibration" if i % 3 == 0 else "train"
                                                                            for i in range(len(rows))]),
                    origin=["toy"] * len(rows), policies=("hate", "violence"))
    config = SafetyTrainingConfig(epochs=1, batch_size=8, rank=2, alpha=4.0, max_tokens=32, fpr_budget=0.1, seed=1)
    _, heads = train_safety_model(corpus, tiny_runtime, config, {"hate": "toy hate", "violence": "toy violence"})
    return GemmaBank(heads)


async def test_real_scores_do_not_depend_on_the_batch_or_the_cache(tmp_path, tiny_bank):
    from shieldkit.guardrails.scoring import ClassifierScorer, ScoringOptions
    from shieldkit.guardrails.scoring.bank import bank_identity

    texts = ["I hate the green people", "a much longer text about cats, tea and the sea " * 3, "hi", "I will hit him"]
    policy = parse_policy_text(SCORED_POLICY, base_dir=tmp_path)

    def scorer(**options):
        made = ClassifierScorer.for_policies(policy, ScoringOptions(window_ms=0, **options), loader=lambda refs, rt: tiny_bank)
        made.load(runtime=None)
        return made, [made.head("hate"), made.head("violence")]

    alone, heads = scorer(cache_size=0, max_batch=1)
    singly = [await alone.score([text], heads) for text in texts]
    mixed, heads = scorer(max_batch=3, per_request=3)
    together = await mixed.score(texts, heads)  # split over two batches of mixed lengths
    cached = await mixed.score(texts[::-1], heads)
    for h, head in enumerate(("hate", "violence")):
        reference = [result[h].scores[0] for result in singly]
        assert together[h].head == head and together[h].scores == pytest.approx(reference, abs=1e-5)
        assert cached[h].scores == together[h].scores[::-1]  # from the cache: the very same numbers
    assert mixed.scheduler.stats.batches == 2
    assert re.fullmatch(r"[0-9a-f]{16}", bank_identity(tiny_bank)) and bank_identity(tiny_bank) == bank_identity(tiny_bank)
    await alone.aclose()
    await mixed.aclose()


def test_the_bank_identity_names_the_scoring_precision(tiny_runtime, tiny_bank):
    """float32 and int8 scores of the same heads never share a cache key (SHIELDKIT_CLASSIFIER_PRECISION)."""
    from shieldkit.classifiers.bank import GemmaBank
    from shieldkit.classifiers.safety import HeadClassifier, SafetyModel
    from shieldkit.guardrails.scoring.bank import bank_identity
    from shieldkit.model import GemmaRuntime

    runtime = GemmaRuntime(tiny_runtime.model, tiny_runtime.tokenizer, tiny_runtime.info, classifier_precision="int8")
    safety = SafetyModel(runtime, tiny_bank.safety.card, tiny_bank.safety.network)
    int8 = GemmaBank({name: HeadClassifier(safety, c.card, c.head) for name, c in tiny_bank.classifiers.items()})
    assert tiny_bank.safety.precision == "float32" and int8.safety.precision == "int8"
    assert bank_identity(int8) != bank_identity(tiny_bank)


async def test_a_failing_batch_observer_does_not_leave_the_jobs_waiting():
    def broken_metrics(size):
        raise RuntimeError("metrics backend gone")

    async def worker(texts):
        return [{"head": 0.5} for _ in texts]

    scheduler = FairScheduler(worker, window_s=0, on_batch=broken_metrics)
    assert await asyncio.wait_for(scheduler.submit(["a", "b"]), 5) == [{"head": 0.5}, {"head": 0.5}]
    assert await asyncio.wait_for(scheduler.submit(["c"]), 5) == [{"head": 0.5}]  # the drainer is still alive


async def test_an_unreachable_scorer_fails_every_waiting_check_at_once():
    """One batch finds the service down: the checks queued behind it fail with it at once instead of each waiting
    for a batch that would time out too; new checks fail at once for down_s, then are tried again."""
    from shieldkit.guardrails.checks.base import ServiceDown

    calls = []
    gate = asyncio.Event()

    async def down(texts):
        calls.append(list(texts))
        if len(calls) == 1:
            await gate.wait()
            raise ServiceDown("the classifier scorer service at http://10.0.0.9:8001 did not answer within 20 s")
        return [{"head": 0.5} for _ in texts]

    scheduler = FairScheduler(down, window_s=0, max_batch=1, down_s=0.05)
    jobs = [asyncio.create_task(scheduler.submit([f"t{i}"])) for i in range(5)]
    await settle()
    gate.set()
    results = await asyncio.gather(*jobs, return_exceptions=True)
    assert all(isinstance(r, ServiceDown) for r in results) and len(calls) == 1
    with pytest.raises(ServiceDown, match="not retried for"):
        await scheduler.submit(["right after"])
    assert len(calls) == 1
    await asyncio.sleep(0.1)  # past down_s: tried again
    assert await scheduler.submit(["later"]) == [{"head": 0.5}] and len(calls) == 2
