"""A small OpenAI-compatible upstream for tests, benchmarks and trying the proxy without a model.

It answers by echoing the last user message, word by word when streaming. The requested ``model`` picks a
behaviour, so a test can make it misbehave through the proxy:

    stub             echo                              stub-500       fail with HTTP 500
    stub-slow        echo, 20 ms per streamed word     stub-400       reject with HTTP 400
    stub-stall       accept, then never answer         stub-429       rate limit
    stub-stall-mid   stream a few words, then stall    stub-garbage   200 with a body that is not JSON
    stub-drop        stream a few words, then drop     stub-garbage-mid  a few words, then an invalid event
    stub-cut         stream a few words, then close cleanly without finishing
    stub-error-mid   stream a few words, then an error event
    stub-pieces      the last user message is a JSON list of strings: the answer, one string per streamed event
    stub-body        the last user message is the whole response body, sent as is (200, application/json)
    stub-flood       a 17 MiB answer (or, streaming, one 2 MiB event line): an upstream gone wrong
    stub-echo-system echo the first system message instead (a model repeating its instructions)

Error messages (HTTP errors and the error event) repeat the echo, as servers that quote the request do.

    python -m shieldkit.guardrails.upstream.stub --port 9000    # then: shieldkit serve --upstream http://127.0.0.1:9000/v1
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import socket
import threading
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

MODELS = ("stub", "stub-slow", "stub-stall", "stub-stall-mid", "stub-drop", "stub-cut", "stub-500", "stub-400", "stub-429",
          "stub-garbage", "stub-garbage-mid", "stub-error-mid", "stub-pieces", "stub-body", "stub-flood", "stub-echo-system")
MIDWAY = ("stub-stall-mid", "stub-drop", "stub-cut", "stub-garbage-mid", "stub-error-mid")  # fail at the fourth word
WORDS = re.compile(r"\S+\s*|\s+")


class StubDrop(Exception):
    """Raised inside a streaming body: the server aborts the connection mid-response."""


def create_stub_app(*, token_delay: float = 0.0, prefix: str = "") -> FastAPI:
    """``token_delay`` seconds between streamed words (0 = as fast as possible); ``prefix`` goes before each echo."""
    app = FastAPI(title="shieldkit stub upstream")
    app.state.received = collections.deque(maxlen=1000)  # request bodies, newest last, for tests

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "stub"} for m in MODELS]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        app.state.received.append(body)
        model = body.get("model")
        role = "system" if model == "stub-echo-system" else "user"
        said = [m.get("content", "") for m in body.get("messages", []) if m.get("role") == role]
        text = said[-1 if role == "user" else 0] if said else ""
        pieces = [prefix, *json.loads(text)] if model == "stub-pieces" else WORDS.findall(prefix + text)
        pieces = [piece for piece in pieces if piece]
        reply = "".join(pieces)
        if model not in MODELS:
            return JSONResponse({"error": {"message": f"no model {model}", "type": "invalid_request_error",
                                           "code": "model_not_found"}}, status_code=404)
        if model == "stub-stall":
            await asyncio.sleep(3600)
        if model == "stub-500":
            return JSONResponse({"error": {"message": f"upstream exploded on: {reply}", "type": "server_error"}}, status_code=500)
        if model == "stub-400":
            return JSONResponse({"error": {"message": f"invalid request: {reply}", "type": "invalid_request_error"}},
                                status_code=400)
        if model == "stub-429":
            return JSONResponse({"error": {"message": f"slow down: {reply}", "type": "rate_limit_error"}}, status_code=429)
        if model == "stub-garbage":
            return PlainTextResponse("<html>definitely not json", status_code=200)
        if model == "stub-body":
            return PlainTextResponse(text, media_type="application/json")
        if model == "stub-flood" and not body.get("stream"):
            return PlainTextResponse('{"padding": "' + "x" * (17 << 20) + '"}', media_type="application/json")
        if model == "stub-flood":
            return StreamingResponse(iter([b"data: " + b"x" * (2 << 20)]), media_type="text/event-stream")
        usage = {"prompt_tokens": sum(len(str(m.get("content", "")).split()) for m in body.get("messages", [])),
                 "completion_tokens": len(reply.split())}
        if not body.get("stream"):
            return {"id": "chatcmpl-stub", "object": "chat.completion", "created": int(time.time()), "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
                    "usage": usage}
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(_events(model, pieces, usage, include_usage, token_delay), media_type="text/event-stream")

    return app


async def _events(model: str, pieces: list[str], usage: dict, include_usage: bool, delay: float):
    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(chunk)}\n\n".encode()

    yield event({"role": "assistant", "content": ""})
    for index, word in enumerate(pieces or [""]):
        if index == 3 and model in MIDWAY:
            if model == "stub-stall-mid":
                await asyncio.sleep(3600)
            if model == "stub-drop":
                raise StubDrop("dropping the connection on purpose")
            if model == "stub-garbage-mid":
                yield b"data: {this is not json\n\n"
            if model == "stub-error-mid":
                error = {"error": {"message": f"generation failed after: {''.join(pieces)}", "type": "server_error"}}
                yield f"data: {json.dumps(error)}\n\n".encode()
            return
        if delay or model == "stub-slow":
            await asyncio.sleep(delay or 0.02)
        yield event({"content": word})
    yield event({}, "stop")
    if include_usage:
        yield f"data: {json.dumps({'id': 'chatcmpl-stub', 'object': 'chat.completion.chunk', 'choices': [], 'usage': {**usage, 'total_tokens': usage['prompt_tokens'] + usage['completion_tokens']}})}\n\n".encode()
    yield b"data: [DONE]\n\n"


class ServerThread:
    """Serve an ASGI app with uvicorn on a free loopback port in a background thread.

        with ServerThread(create_stub_app()) as server:
            print(server.url)   # http://127.0.0.1:<port>
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets TCP_NODELAY
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host, self.port = self.sock.getsockname()[:2]
        config = uvicorn.Config(app, log_level=log_level, lifespan="on", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="An OpenAI-compatible echo upstream for trying the proxy.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds between streamed words")
    parser.add_argument("--prefix", default="", help="text put before each echo (so an answer differs from the message)")
    args = parser.parse_args()
    uvicorn.run(create_stub_app(token_delay=args.token_delay, prefix=args.prefix), host=args.host, port=args.port,
                log_level="warning")


if __name__ == "__main__":
    main()
