"""POST /v1/chat/completions: input checks, the upstream, output checks (whole answer, or streamed windows)."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from shieldkit.guardrails.api import shapes
from shieldkit.guardrails.api.deps import ChatBody, ChatCaller, ReadyServices, RequestId
from shieldkit.guardrails.api.errors import ContentFiltered, Forbidden, GuardrailFailed
from shieldkit.guardrails.api.openapi import errors, json_body
from shieldkit.guardrails.api.routers.errors import upstream_api_error
from shieldkit.guardrails.api.schemas import ChatRequest
from shieldkit.guardrails.pipeline.engine import Verdict
from shieldkit.guardrails.pipeline.streaming import StreamJob, guarded_sse
from shieldkit.guardrails.pipeline.vault import Vault
from shieldkit.guardrails.upstream import UpstreamError, UpstreamRequest

router = APIRouter(tags=["chat"])
STREAM_OK = {"description": "The checked completion: JSON, or server-sent events with `stream: true`",
             "content": {"text/event-stream": {}}}  # events are chat.completion.chunk objects (OpenAI's stream format)


def refuse_input(verdict: Verdict) -> None:
    blocked = verdict.blocked_by
    if blocked is None:
        return
    if blocked.error is not None:
        raise GuardrailFailed(f"the input check '{blocked.name}' failed and the policy blocks on errors; nothing was "
                              "sent to the model", param="messages")
    raise ContentFiltered(
        f"The request was blocked by the guardrail policy: input check '{blocked.name}' ({blocked.kind}) fired.",
        param="messages",
        extra={"innererror": {"code": "ResponsibleAIPolicyViolation",
                              "content_filter_result": shapes.filter_results(verdict.outcomes)}},
    )


def upstream_request(body: ChatRequest, texts: list[str]) -> UpstreamRequest:
    return UpstreamRequest(
        model=body.model,
        messages=[{"role": m.role, "content": text} for m, text in zip(body.messages, texts)],
        max_tokens=body.max_completion_tokens or body.max_tokens,
        max_tokens_name="max_completion_tokens" if body.max_completion_tokens else "max_tokens",
        temperature=body.temperature, top_p=body.top_p,
        seed=body.seed, stop=tuple(body.stop or ()), presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty, user=body.user,
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
    )


@router.post("/v1/chat/completions", openapi_extra=json_body(ChatRequest),
             responses={200: STREAM_OK, **errors(400, 401, 403, 404, 413, 429, 500, 502, 503, 504)})
async def chat_completions(caller: ChatCaller, services: ReadyServices, body: ChatBody, request_id: RequestId):
    started = time.perf_counter()
    if caller.key is not None and caller.key.models and body.model not in caller.key.models:
        raise Forbidden(f"the API key '{caller.key.id}' may not use the model '{body.model}'", param="model")
    policy = services.policies.file.policies[caller.policy]
    guards = services.guards[caller.policy]
    vault = Vault()  # this request's placeholders; never shared
    texts = [m.content for m in body.messages]
    verdict = await guards["input"].run(texts, vault, roles=[m.role for m in body.messages])
    ids = {"request_id": request_id, "key_id": caller.key_id, "policy": caller.policy, "endpoint": "chat"}
    answer = services.recorder.event(**ids, verdict=verdict, opens=verdict.blocked_by is None,
                                  text="\n".join(f"{m.role}: {t}" for m, t in zip(body.messages, verdict.texts)))
    refuse_input(verdict)
    request = upstream_request(body, verdict.texts)
    # A final assistant message is a prefill that upstreams such as llama.cpp continue: the output checks read the
    # answer after it, so a secret or a phrase split across the two is still one match.
    prefill = verdict.texts[-1] if body.messages[-1].role == "assistant" else ""

    if body.stream:
        with services.recorder.no_answer_on_error(answer, **ids):
            try:
                stream = await services.startup.upstream.open_stream(request)
            except UpstreamError as exc:
                raise upstream_api_error(services, exc) from None

        def done(output: Verdict, status: str) -> None:
            if status == "upstream_error":
                services.metrics.upstream_errors.labels("502").inc()
            services.recorder.event(**ids, verdict=output, text=output.texts[0], closes=answer)

        job = StreamJob(guards["output"], policy, vault, body.model, request.include_usage, started, prefill=prefill)
        return StreamingResponse(
            guarded_sse(job, stream, on_done=done, on_first_release=services.metrics.stream_first_release.observe),
            media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    with services.recorder.no_answer_on_error(answer, **ids):
        try:
            reply = await services.startup.upstream.complete(request)
        except UpstreamError as exc:
            raise upstream_api_error(services, exc) from None
        output = await guards["output"].run([prefill + vault.restore_unsent(reply.text)], vault,  # values the user
                                            skip=[len(prefill)])  # did not send are restored before the checks
    answer_text = output.texts[0][len(prefill):]
    services.recorder.event(**ids, verdict=output, text=answer_text, closes=answer)
    usage = reply.usage.to_dict() if reply.usage else None
    completion_id = shapes.new_id("chatcmpl")
    if output.blocked_by is not None:
        return shapes.completion(completion_id, body.model, policy.refusal, "content_filter", usage, output.outcomes)
    return shapes.completion(completion_id, body.model, vault.restore(answer_text), reply.finish_reason, usage)
