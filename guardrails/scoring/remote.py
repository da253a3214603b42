"""``RemoteScorer``: the proxy's client for the scorer service (``shieldkit serve-classifiers``), implementing the
same scorer protocol as the in-process ``ClassifierScorer``, so classifier checks and ``/v1/moderations`` do not
know which one they ask (``SHIELDKIT_PROXY_SCORER_URL`` chooses).

The checks of concurrent requests are first collected by the same fair scheduler as in-process (round-robin per
request, bounded queue with 429 admission, one batch at a time), and each batch is one ``POST /v1/score`` asking
every classifier this proxy's policy file names, so the seven classifier checks of a request cost one call. The
service batches again across every proxy worker calling it, and keeps the score cache (one cache for the fleet;
this client keeps none, so it never answers from scores of a model the service no longer runs).

Failures keep the in-process semantics: the service unreachable, timing out or answering a 5xx (or any status
but 200 and 429) raises ``CheckUnavailable`` for every check in the batch, which then follows its ``on_error``
(block by default: a clean 503 ``guardrail_error``, never a 500 and never unchecked text); its 429
``classifier_queue_full`` is raised as ``Overloaded`` with its ``Retry-After``, so the client gets the same 429.

Transport: one pooled ``httpx.AsyncClient``; timeouts from the settings (``scorer_connect_timeout`` to connect,
``scorer_timeout`` for the answer); retries are httpx's own transport retries, which repeat only a failed
connection attempt (nothing was sent, so nothing is scored twice): a request that reached the service is never
retried, since a retry under overload only adds load, and the check's ``on_error`` already decides what a failure
means.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import httpx
from pydantic import ValidationError

from shieldkit.errors import ConfigError
from shieldkit.guardrails.checks.base import CheckUnavailable, Overloaded, ServiceDown
from shieldkit.guardrails.scoring import bank as link
from shieldkit.guardrails.scoring.protocol import Head, HeadScores
from shieldkit.guardrails.scoring.scheduler import FairScheduler, Row
from shieldkit.guardrails.scoring.scorer import ScoringObserver, ScoringOptions
from shieldkit.guardrails.scoring.wire import ScoreResponse

log = logging.getLogger("shieldkit.guardrails")


class RemoteScorer:
    def __init__(self, uses: Sequence[link.ClassifierUse], url: str, *, options: ScoringOptions = ScoringOptions(),
                 api_key: str | None = None, timeout: float = 20.0, connect_timeout: float = 2.0, retries: int = 2,
                 observer: ScoringObserver | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self._uses = list(uses)
        self.refs = list(dict.fromkeys(use.ref for use in uses))  # every classifier the policy file names
        self._heads: dict[str, tuple[str, float]] = {}  # ref -> (head name, calibrated threshold), as last answered
        self._unavailable: dict[str, str] = {}  # ref -> why the service cannot score it, as last answered
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self.url, headers=self._headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout, pool=connect_timeout),
            transport=httpx.AsyncHTTPTransport(retries=retries, limits=httpx.Limits(max_connections=4)))
        self.scheduler = FairScheduler(
            self._run_batch, window_s=options.window_ms / 1000, max_batch=options.max_batch,
            per_job=options.per_request, max_queued=options.max_queued, max_wait_s=options.max_wait_s,
            on_batch=observer.scored_batch if observer is not None else None, tell_admitted=True)

    @classmethod
    def for_policies(cls, policies, url: str, **options) -> RemoteScorer:
        """The client for every classifier check in a policy file (a ``LoadedPolicies``)."""
        return cls(link.classifier_uses(policies), url, **options)

    # --- lifecycle ---------------------------------------------------------------------------------------------------

    @property
    def needs_model(self) -> bool:
        return False

    def load(self, runtime) -> None:
        """Ask the service once what it can score (in the start-up thread), to log a mismatch with this policy file
        loudly. Not reachable yet is only a warning: checks fail closed until it answers."""
        if not self.refs:
            return
        try:
            with httpx.Client(base_url=self.url, headers=self._headers, timeout=self.connect_timeout) as client:
                response = client.get("/v1/classifiers")
        except httpx.HTTPError as exc:
            log.warning("the classifier scorer service at %s is not reachable yet (%s); classifier checks fail "
                        "closed until it answers", self.url, type(exc).__name__)
            return
        if response.status_code != 200:
            log.warning("the classifier scorer service at %s is not ready (%d: %s); classifier checks fail closed "
                        "until it is", self.url, response.status_code, _message(response))
            return
        try:
            answer = self._parse(response)
        except CheckUnavailable as exc:
            log.warning("%s; classifier checks fail closed until it answers properly", exc)
            return
        self._remember(answer)
        missing = {ref: self._unavailable.get(ref, "its policy file does not name it") for ref in self.refs
                   if ref not in self._heads}
        for ref, why in missing.items():
            log.error("the classifier scorer service at %s cannot score %r (%s): its checks fail (on_error applies)",
                      self.url, ref, why)

    @property
    def available(self) -> dict[str, str]:
        return {ref: self._heads[ref][0] for ref in self.refs if ref in self._heads}

    @property
    def unavailable(self) -> dict[str, str]:
        return {ref: self._unavailable[ref] for ref in self.refs if ref in self._unavailable}

    async def aclose(self) -> None:
        await self.scheduler.aclose()
        await self._client.aclose()

    # --- the protocol ------------------------------------------------------------------------------------------------

    def head(self, ref: str, threshold: float | None = None) -> Head:
        if ref not in self.refs:
            raise ConfigError(f"classifier {ref!r} is not among the classifier checks of this policy file")
        return Head(ref, threshold)

    def heads_for(self, policy: str) -> list[Head]:
        """The heads of ``policy``'s classifier checks (each once, with its first check's threshold); every head of
        the policy file when it has none. Heads the service said it cannot score are left out."""
        chosen: dict[str, Head] = {}
        for use in self._uses:
            if use.policy == policy and use.ref not in self._unavailable:
                chosen.setdefault(use.ref, Head(use.ref, use.threshold))
        return list(chosen.values()) or [Head(ref) for ref in self.refs if ref not in self._unavailable]

    async def score(self, texts: Sequence[str], heads: Sequence[Head], *, admitted: bool = False) -> list[HeadScores]:
        for head in heads:
            if head.key not in self.refs:
                raise CheckUnavailable(f"classifier {head.key!r} is not among the classifier checks of this policy file")
        rows = await self.scheduler.submit(list(texts), admitted=admitted) if texts else []
        results = []
        for head in heads:
            known = self._heads.get(head.key)
            if known is None or any(head.key not in row for row in rows):
                raise CheckUnavailable(self._unavailable.get(head.key)
                                       or f"the classifier scorer service at {self.url} has not scored {head.key!r}")
            name, calibrated = known
            cut = calibrated if head.threshold is None else head.threshold
            results.append(HeadScores(name, [row[head.key] for row in rows], cut))
        return results

    # --- one batch, one call -----------------------------------------------------------------------------------------

    async def _run_batch(self, texts: list[str], admitted: bool) -> list[Row]:
        payload = {"texts": texts, "classifiers": self.refs, "admitted": admitted}
        try:
            response = await self._client.post("/v1/score", json=payload)
        except httpx.ConnectTimeout:
            raise ServiceDown(f"the classifier scorer service at {self.url} did not accept a connection within "
                                   f"{self.connect_timeout:g} s") from None
        except httpx.TimeoutException:
            raise ServiceDown(f"the classifier scorer service at {self.url} did not answer within "
                                   f"{self.timeout:g} s") from None
        except httpx.TransportError as exc:
            raise ServiceDown(f"the classifier scorer service at {self.url} is unreachable "
                                   f"({type(exc).__name__}: {exc})") from None
        if response.status_code == 429:
            raise Overloaded(f"the classifier scorer service is full: {_message(response)}",
                             retry_after=_retry_after(response))
        if response.status_code != 200:
            raise CheckUnavailable(f"the classifier scorer service at {self.url} answered {response.status_code}: "
                                   f"{_message(response)}")
        answer = self._parse(response)
        for result in answer.results:
            if len(result.scores) != len(texts):
                raise CheckUnavailable(f"the classifier scorer service at {self.url} sent {len(result.scores)} scores "
                                       f"of {result.classifier!r} for {len(texts)} texts")
        self._remember(answer)
        return [{result.classifier: result.scores[i] for result in answer.results} for i in range(len(texts))]

    def _parse(self, response: httpx.Response) -> ScoreResponse:
        try:
            return ScoreResponse.model_validate_json(response.content)
        except ValidationError as exc:
            raise CheckUnavailable(f"the classifier scorer service at {self.url} sent an invalid answer "
                                   f"({exc.errors()[0]['msg']})") from None

    def _remember(self, answer: ScoreResponse) -> None:
        for result in answer.results:
            self._heads[result.classifier] = (result.head, result.threshold)
            self._unavailable.pop(result.classifier, None)
        for ref, why in answer.unavailable.items():
            self._heads.pop(ref, None)
            self._unavailable[ref] = f"the classifier scorer service at {self.url} cannot score it: {why}"


def _message(response: httpx.Response) -> str:
    """The error message of one of our services' OpenAI-style error bodies, else the status phrase."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.reason_phrase or "no message"


def _retry_after(response: httpx.Response) -> int:
    value = response.headers.get("retry-after", "")
    return max(1, int(value)) if value.isdigit() else 1
