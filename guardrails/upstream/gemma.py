"""The embedded Gemma as an upstream: generation runs in worker threads, pieces cross to the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from shieldkit.errors import ShieldkitError
from shieldkit.guardrails.upstream.base import UpstreamError, UpstreamReply, UpstreamRequest, UpstreamStream, Usage

if TYPE_CHECKING:
    from shieldkit.model.runtime import GemmaRuntime

_END = object()


class GemmaUpstream:
    def __init__(self, runtime: GemmaRuntime, model_id: str, *, workers: int = 4, default_max_tokens: int = 256,
                 max_tokens_limit: int = 2048, default_temperature: float = 0.7) -> None:
        self.runtime = runtime
        self.model_id = model_id
        self.name = f"embedded {model_id}"
        self.default_max_tokens = default_max_tokens
        self.max_tokens_limit = max_tokens_limit
        self.default_temperature = default_temperature
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="shieldkit-generate")

    async def models(self) -> list[str]:
        return [self.model_id]

    def _check_model(self, request: UpstreamRequest) -> None:
        if request.model != self.model_id:
            raise UpstreamError(404, f"the model '{request.model}' does not exist here; this proxy serves '{self.model_id}'",
                                code="model_not_found")

    def _config(self, request: UpstreamRequest):
        from shieldkit.model.generation import GenerationConfig

        wanted = request.max_tokens or self.default_max_tokens
        if wanted > self.max_tokens_limit:
            raise UpstreamError(400, f"{request.max_tokens_name} is {wanted}, but this proxy allows at most "
                                     f"{self.max_tokens_limit}", code="invalid_request")
        temperature = self.default_temperature if request.temperature is None else request.temperature
        try:
            return GenerationConfig(max_new_tokens=wanted, temperature=temperature, top_p=request.top_p or 1.0,
                                    seed=request.seed, stop=request.stop)
        except ShieldkitError as exc:
            raise UpstreamError(400, str(exc), code="invalid_request") from None

    async def open_stream(self, request: UpstreamRequest) -> UpstreamStream:
        self._check_model(request)
        config = self._config(request)
        messages = [{"role": "system" if m["role"] == "developer" else m["role"], "content": m["content"]}
                    for m in request.messages]
        loop = asyncio.get_running_loop()
        try:  # tokenizing and the context-length check happen here, before any text is promised
            generation = await loop.run_in_executor(self._executor, self.runtime.stream, messages, config)
        except ShieldkitError as exc:
            code = "context_length_exceeded" if "context" in str(exc) else "invalid_request"
            raise UpstreamError(400, str(exc), code=code) from None
        stream = UpstreamStream()
        stream.pieces = self._pieces(generation, stream, loop)
        return stream

    async def _pieces(self, generation, stream: UpstreamStream, loop: asyncio.AbstractEventLoop) -> AsyncIterator[str]:
        queue: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()

        def put(item: object) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop is gone (shutdown): nobody is listening
                stop.set()

        def produce() -> None:
            try:
                for piece in generation:
                    if stop.is_set():
                        return
                    put(piece)
                put(_END)
            except BaseException as exc:  # handed to the consumer, which turns it into a stream error
                put(exc)

        task = loop.run_in_executor(self._executor, produce)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    result = generation.result
                    stream.finish_reason = result.finish_reason
                    stream.usage = Usage(result.prompt_tokens, result.completion_tokens)
                    return
                if isinstance(item, BaseException):
                    raise UpstreamError(502, f"the embedded model failed while generating: {item}") from item
                yield item
        finally:
            stop.set()  # a client that went away stops generation at the next token
            if not task.done():
                task.add_done_callback(lambda f: f.exception())

    async def complete(self, request: UpstreamRequest) -> UpstreamReply:
        stream = await self.open_stream(request)
        try:
            text = "".join([piece async for piece in stream])
        finally:
            await stream.aclose()
        return UpstreamReply(text, stream.finish_reason or "stop", self.model_id, stream.usage)

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

