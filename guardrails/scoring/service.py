"""``create_scorer_app(settings)``: the classifier scorer as its own HTTP service (``shieldkit serve-classifiers``).

It runs only the scorer the proxy runs in-process (``ClassifierScorer``: the same fair scheduler, batching,
admission control and score cache), so the classifiers are loaded once and the texts of every proxy worker that
calls it are batched together. The API is in ``wire.py``; ``/healthz`` answers at once, ``/readyz`` once the
classifiers are loaded (they load in a background thread when the server starts), ``/metrics`` is Prometheus
(batch sizes, cache, calls). Nothing is built at import time.

Run one process per replica: the scheduler batches within one process, so more worker processes would each load
the model and batch apart. Scale out with replicas behind a Service (each one model copy).
"""

from __future__ import annotations

import hmac
import logging
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException

from shieldkit import __version__
from shieldkit.errors import ConfigError
from shieldkit.guardrails.api.errors import (ApiError, InternalError, InvalidRequest, NotReady, QueueFull,
                                             RequestTooLarge, Unauthorized)
from shieldkit.guardrails.api.request_json import decode_json, read_body
from shieldkit.guardrails.checks.base import CheckUnavailable, Overloaded
from shieldkit.guardrails.ops.loading import BackgroundLoad
from shieldkit.guardrails.policy import load_policy_file
from shieldkit.guardrails.scoring import bank as link
from shieldkit.guardrails.scoring.scorer import ClassifierScorer, ScoringOptions
from shieldkit.guardrails.scoring.service_metrics import ScorerMetrics
from shieldkit.guardrails.scoring.service_settings import ScorerSettings
from shieldkit.guardrails.scoring.wire import ClassifierScores, ScoreRequest, ScoreResponse

if TYPE_CHECKING:
    from shieldkit.model.runtime import GemmaRuntime

log = logging.getLogger("shieldkit.scorer")


class ScorerService(BackgroundLoad):
    """What one scorer app owns: its settings, the scorer and its loading state, and its metrics."""

    def __init__(self, settings: ScorerSettings, *, runtime: GemmaRuntime | None = None,
                 bank_loader: link.BankLoader | None = None) -> None:
        self.settings = settings
        policies = load_policy_file(settings.policy)
        if bank_loader is None and settings.safety_model is not None:
            bank_loader = link.safety_model_loader(settings.safety_model)
        self.metrics = ScorerMetrics()
        options = ScoringOptions(window_ms=settings.batch_window_ms, max_batch=settings.batch_max_texts,
                                 per_request=settings.resolved_texts_per_request, max_queued=settings.queue_texts,
                                 max_wait_s=settings.queue_wait, cache_size=settings.cache_size)
        self.scorer = ClassifierScorer.for_policies(policies, options, loader=bank_loader, observer=self.metrics)
        if not self.scorer.plan.keys:
            raise ConfigError(f"{policies.source}: no classifier checks, so the scorer service has nothing to serve")
        self.metrics.watch_queue(lambda: self.scorer.scheduler.queued)
        self.source = policies.source
        self.runtime = runtime
        super().__init__("the scorer service", self.metrics.ready, log)

    # --- loading ---------------------------------------------------------------------------------------------------

    def ready_summary(self) -> str:
        return f"classifiers {', '.join(self.scorer.available.values()) or 'none'}"

    def _load_models(self) -> None:
        if self.runtime is None and self.scorer.needs_model:
            from shieldkit.model.runtime import GemmaRuntime
            from shieldkit.progress import progress_enabled

            self.runtime = GemmaRuntime.load(self.settings.model, progress=progress_enabled())
        self.scorer.load(self.runtime)

    async def aclose(self) -> None:
        self._cancel()
        await self.scorer.aclose()

    # --- answering -------------------------------------------------------------------------------------------------

    def why_unavailable(self, ref: str) -> str | None:
        if ref not in self.scorer.plan.keys:
            return f"the scorer service's policy file ({self.source}) names no classifier {ref!r}"
        return self.scorer.unavailable_reason(self.scorer.head(ref))

    async def score(self, request: ScoreRequest) -> ScoreResponse:
        """Scores of every asked classifier that can be scored; the others listed in ``unavailable``."""
        refs = list(dict.fromkeys(request.classifiers if request.classifiers is not None else self.scorer.plan.keys))
        unavailable = {ref: why for ref in refs if (why := self.why_unavailable(ref)) is not None}
        scorable = [ref for ref in refs if ref not in unavailable]
        heads = [self.scorer.head(ref) for ref in scorable]
        scored = await self.scorer.score(request.texts, heads, admitted=request.admitted) if heads else []
        results = [ClassifierScores(classifier=ref, head=s.head, threshold=s.threshold, scores=s.scores)
                   for ref, s in zip(scorable, scored)]
        loaded = self.scorer.loaded
        return ScoreResponse(results=results, unavailable=unavailable, identity=loaded.identity if loaded else "")


def create_scorer_app(settings: ScorerSettings | None = None, *, runtime: GemmaRuntime | None = None,
                      bank_loader: link.BankLoader | None = None) -> FastAPI:
    """The scorer service app. ``runtime`` reuses a loaded Gemma; ``bank_loader`` replaces the classifiers
    package's ``load_bank`` (tests, embedding)."""
    settings = settings or ScorerSettings.create()
    service = ScorerService(settings, runtime=runtime, bank_loader=bank_loader)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        try:
            yield
        finally:
            await service.aclose()

    app = FastAPI(title="shieldkit classifier scorer", version=__version__, lifespan=lifespan,
                  description="The proxy's safety classifiers as one shared, batching HTTP service.",
                  docs_url=None, redoc_url=None, openapi_url=None)  # the API is documented in wire.py
    app.state.service = service
    install_routes(app, service)
    install_error_handlers(app)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory shieldkit.guardrails.scoring.service:app_from_env`` (SHIELDKIT_SCORER_*)."""
    return create_scorer_app(ScorerSettings.create())


def install_routes(app: FastAPI, service: ScorerService) -> None:
    settings = service.settings

    def check_key(request: Request) -> None:
        if settings.api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expected = settings.api_key.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
            raise Unauthorized("this scorer service needs 'Authorization: Bearer <SHIELDKIT_SCORER_API_KEY>'")

    def check_ready() -> None:
        if service.state == "failed":
            raise NotReady(f"the scorer service failed to start: {service.error}", code="startup_failed")
        if service.state != "ready":
            raise NotReady("the scorer service is still loading its classifiers; retry shortly",
                           headers={"Retry-After": "5"})

    async def read_request(request: Request) -> ScoreRequest:
        raw = await read_body(request, settings.max_body_bytes, "this service")
        try:
            body = ScoreRequest.model_validate(decode_json(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(p) for p in first["loc"]) or None
            raise InvalidRequest(f"{param or 'request'}: {first['msg']}", param=param) from None
        if len(body.texts) > settings.max_texts:
            raise RequestTooLarge(f"{len(body.texts)} texts in one call; this service scores at most "
                                  f"{settings.max_texts} (SHIELDKIT_SCORER_MAX_TEXTS)", param="texts")
        return body

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz():
        body = {"status": service.state, "classifiers": service.scorer.available,
                "unavailable_classifiers": service.scorer.unavailable}
        if service.state == "failed":
            body["error"] = service.error
        return JSONResponse(body, status_code=200 if service.state == "ready" else 503)

    @app.get("/v1/classifiers")
    async def classifiers(request: Request):
        check_key(request)
        check_ready()
        return (await service.score(ScoreRequest(texts=[]))).model_dump()

    @app.post("/v1/score")
    async def score(request: Request):
        started, status = time.perf_counter(), 500
        try:
            check_key(request)
            check_ready()
            body = await read_request(request)
            service.metrics.texts.inc(len(body.texts))
            try:
                answer = await service.score(body)
            except (ApiError, Overloaded):
                raise
            except CheckUnavailable as exc:  # shutting down
                raise NotReady(str(exc), code="classifier_unavailable") from None
            except Exception as exc:  # the bank failed on a batch: the caller's checks fail closed
                raise InternalError(f"classifier scoring failed: {exc}", code="scoring_failed") from None
            status = 200
            return answer.model_dump()
        except ApiError as exc:
            status = exc.status
            raise
        except Overloaded:
            status = 429
            raise
        finally:
            service.metrics.requests.labels(str(status)).inc()
            service.metrics.seconds.observe(time.perf_counter() - started)

    @app.get("/metrics")
    async def metrics():
        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def install_error_handlers(app: FastAPI) -> None:
    """OpenAI-style JSON errors, as the proxy answers them."""

    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=dict(exc.headers))

    async def overloaded(request: Request, exc: Overloaded) -> JSONResponse:
        error = QueueFull(str(exc), headers={"Retry-After": str(exc.retry_after)})
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = f"no endpoint {request.method} {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        error = ApiError(message, code="not_found" if exc.status_code == 404 else "http_error", status=exc.status_code)
        return JSONResponse(error.body(), status_code=error.status, headers=dict(exc.headers or {}))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(Overloaded, overloaded)
    app.add_exception_handler(HTTPException, http_error)
