"""Any OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp server, OpenAI) as the upstream, over pooled httpx.

The upstream's own error text (an error body, a mid-stream error event) is never put into the proxy's errors: it
is output nobody checked, and may repeat what the request or the answer held. Clients get the upstream's status;
the text is logged at debug level for the operator.

JSON lets an upstream send UTF-16 surrogates as escapes; a pair split across two stream events, or a lone one,
is not Unicode text and could not be checked or sent on. Pairs are joined (across events too) and a lone
surrogate becomes U+FFFD before any check reads the text (``_unicode``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx

from shieldkit.guardrails.upstream.base import UpstreamError, UpstreamReply, UpstreamRequest, UpstreamStream, Usage

log = logging.getLogger("shieldkit.guardrails")
_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_REPLY_BYTES = 16 << 20  # a non-streamed answer's body: far past any chat answer; more is a broken upstream
MAX_EVENT_BYTES = 1 << 20  # one server-sent event line
MAX_ERROR_BYTES = 2000  # of an error body, kept for the debug log
WITHHELD = "its error text is not passed on (it was not checked)"
_FORWARDED = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty", "user")


class OpenAIUpstream:
    def __init__(self, base_url: str, *, api_key: str | None = None, connect_timeout: float = 5.0,
                 read_timeout: float = 120.0, max_connections: int = 64) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = self.base_url
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout, pool=connect_timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    # --- requests ----------------------------------------------------------------------------------------------

    def _payload(self, request: UpstreamRequest, stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": request.model, "messages": request.messages, "stream": stream}
        if request.max_tokens is not None:  # under the client's name: OpenAI's reasoning models refuse max_tokens
            payload[request.max_tokens_name] = request.max_tokens
        for name in _FORWARDED:
            value = getattr(request, name)
            if value is not None:
                payload[name] = value
        if request.stop:
            payload["stop"] = list(request.stop)
        if stream and request.include_usage:
            payload["stream_options"] = {"include_usage": True}
        return payload

    async def models(self) -> list[str]:
        response = await self._send(self._client.build_request("GET", "/models"), stream=True)
        body = await self._json(response)
        try:
            return [str(item["id"]) for item in body["data"]]
        except (KeyError, TypeError) as exc:
            raise UpstreamError(502, f"the upstream sent an invalid model list ({exc!r})") from None

    async def complete(self, request: UpstreamRequest) -> UpstreamReply:
        response = await self._send(self._client.build_request("POST", "/chat/completions", json=self._payload(request, False)),
                                    stream=True)
        body = await self._json(response)
        try:
            choice = body["choices"][0]
            content = choice["message"].get("content")
            if content is not None and not isinstance(content, str):
                raise TypeError("message.content is not text")
            usage = _usage(body.get("usage"))
            return UpstreamReply(_unicode(content or ""), str(choice.get("finish_reason") or "stop"), str(body.get("model") or request.model), usage)
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise UpstreamError(502, f"the upstream sent an invalid chat completion ({exc})") from None

    async def open_stream(self, request: UpstreamRequest) -> UpstreamStream:
        response = await self._send(
            self._client.build_request("POST", "/chat/completions", json=self._payload(request, True)), stream=True
        )
        content_type = response.headers.get("content-type", "")
        if not content_type.startswith("text/event-stream"):
            await response.aclose()
            raise UpstreamError(502, f"the upstream answered a streaming request with {content_type or 'no content type'}, "
                                     "not an event stream")
        stream = UpstreamStream()
        stream.pieces = self._events(response, stream)
        return stream

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- plumbing ----------------------------------------------------------------------------------------------

    async def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        try:
            response = await self._client.send(request, stream=stream)
        except httpx.TimeoutException:
            raise UpstreamError(504, f"the upstream at {self.base_url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise UpstreamError(502, f"cannot reach the upstream at {self.base_url}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            try:
                detail = (await _read_at_most(response, MAX_ERROR_BYTES)).decode("utf-8", "replace")
            except httpx.HTTPError:
                detail = ""
            finally:
                await response.aclose()
            raise _status_error(response.status_code, detail)
        return response

    async def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            raw = await _read_at_most(response, MAX_REPLY_BYTES + 1)
            if len(raw) > MAX_REPLY_BYTES:
                raise UpstreamError(502, f"the upstream's answer is larger than {MAX_REPLY_BYTES >> 20} MiB")
            body = json.loads(raw)
        except httpx.TimeoutException:
            raise UpstreamError(504, "the upstream stopped sending its answer") from None
        except (httpx.HTTPError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep to parse
            raise UpstreamError(502, f"the upstream sent an invalid response ({type(exc).__name__})") from None
        finally:
            await response.aclose()
        if not isinstance(body, dict):
            raise UpstreamError(502, "the upstream sent an invalid response (not a JSON object)")
        return body

    async def _events(self, response: httpx.Response, stream: UpstreamStream) -> AsyncIterator[str]:
        done = False
        held = ""  # a high surrogate that ended the last piece: its pair may start the next one
        try:
            async for line in _lines(response, MAX_EVENT_BYTES):
                if not line.startswith("data:"):
                    continue  # blank lines, comments and event names
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                piece = held + _parse_chunk(data, stream)
                held = piece[-1] if piece and "\ud800" <= piece[-1] <= "\udbff" else ""
                piece = _unicode(piece[:-1] if held else piece)
                if piece:
                    yield piece
        except httpx.TimeoutException:
            raise UpstreamError(504, "the upstream stalled in the middle of its answer") from None
        except httpx.HTTPError as exc:
            raise UpstreamError(502, f"the upstream dropped the connection mid-stream ({type(exc).__name__})") from None
        finally:
            await response.aclose()
        if not done and stream.finish_reason is None:
            raise UpstreamError(502, "the upstream ended the stream without finishing its answer")
        if held:
            yield _unicode(held)
        stream.finish_reason = stream.finish_reason or "stop"


async def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    """The body's first ``limit`` bytes (the rest is not read)."""
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


async def _lines(response: httpx.Response, limit: int) -> AsyncIterator[str]:
    """The body's lines (``\n``, ``\r\n`` or ``\r``), refusing one longer than ``limit`` bytes: httpx's own
    ``aiter_lines`` would hold a line of any length in memory."""
    buffer = b""
    async for chunk in response.aiter_bytes():
        buffer += chunk
        *complete, buffer = re.split(rb"\r\n|\r|\n", buffer) if b"\r" in buffer else buffer.split(b"\n")
        for line in complete:
            yield line.decode("utf-8", "replace")
        if len(buffer) > limit:
            raise UpstreamError(502, f"the upstream sent a stream event longer than {limit >> 20} MiB")
    if buffer:
        yield buffer.decode("utf-8", "replace")


def _parse_chunk(data: str, stream: UpstreamStream) -> str:
    try:
        chunk = json.loads(data)
    except (ValueError, RecursionError):
        raise UpstreamError(502, "the upstream sent an invalid stream event (not JSON)") from None
    if not isinstance(chunk, dict):
        raise UpstreamError(502, "the upstream sent an invalid stream event (not a JSON object)")
    if "error" in chunk:
        log.warning("the upstream sent an error event mid-stream (its text is logged at debug level)")
        log.debug("upstream error event: %.2000s", data)
        raise UpstreamError(502, f"the upstream failed mid-stream with an error event; {WITHHELD}")
    if chunk.get("usage"):
        stream.usage = _usage(chunk["usage"])
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        raise UpstreamError(502, "the upstream sent an invalid stream event (no choices)")
    if not choices:
        return ""
    choice = choices[0]
    delta = choice.get("delta") if isinstance(choice, dict) else None
    if not isinstance(delta, dict):
        raise UpstreamError(502, "the upstream sent an invalid stream event (no delta)")
    if choice.get("finish_reason"):
        stream.finish_reason = str(choice["finish_reason"])
    content = delta.get("content")
    if content is not None and not isinstance(content, str):
        raise UpstreamError(502, "the upstream sent an invalid stream event (content is not text)")
    return content or ""


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    try:
        return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))
    except (TypeError, ValueError, OverflowError):  # OverflowError: 1e999 parses as infinity
        return None


def _unicode(text: str) -> str:
    """``text`` with surrogate pairs joined and lone surrogates replaced by U+FFFD (see the module docstring)."""
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _status_error(status: int, detail: str) -> UpstreamError:
    log.warning("the upstream answered HTTP %d (its error text is logged at debug level)", status)
    log.debug("upstream HTTP %d body: %.2000s", status, detail)
    if status in (401, 403):
        return UpstreamError(502, f"the upstream refused the proxy's credentials (HTTP {status})")
    if status == 429:
        return UpstreamError(429, f"the upstream is rate limiting (HTTP 429); {WITHHELD}", code="upstream_rate_limited")
    if status >= 500:
        return UpstreamError(502, f"the upstream failed with HTTP {status}; {WITHHELD}")
    code = "model_not_found" if status == 404 else "upstream_rejected"
    return UpstreamError(status if status in (400, 404, 413, 422) else 400,
                         f"the upstream rejected the request with HTTP {status}; {WITHHELD}", code=code)
