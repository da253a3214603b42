"""Models loaded in a background thread once a server runs, and the state ``/readyz`` reports.

Shared by the proxy's start-up (``startup.py``) and the scorer service (``scoring/service.py``): each subclass
loads its own models in ``_load_models`` and says what is ready in ``ready_summary``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Literal

from shieldkit.errors import ShieldkitError


class BackgroundLoad:
    def __init__(self, server: str, ready_gauge: Any, log: logging.Logger) -> None:
        self._server = server  # who cannot serve when loading fails ("the proxy")
        self._ready_gauge = ready_gauge  # a Prometheus gauge set to 1 when loaded
        self._log = log
        self.state: Literal["loading", "ready", "failed"] = "loading"
        self.error: str | None = None
        self.on_fatal: Callable[[str], None] | None = None  # the CLI stops the server with it
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._load())

    def _cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _load(self) -> None:
        try:
            await asyncio.to_thread(self._load_models)
        except Exception as exc:
            self.state, self.error = "failed", str(exc) or type(exc).__name__
            self._log.error("%s cannot serve: %s", self._server, self.error, exc_info=not isinstance(exc, ShieldkitError))
            if self.on_fatal is not None:
                self.on_fatal(self.error)
            return
        self.state = "ready"
        self._ready_gauge.set(1)
        self._log.info("ready: %s", self.ready_summary())

    def _load_models(self) -> None:
        raise NotImplementedError

    def ready_summary(self) -> str:
        raise NotImplementedError
