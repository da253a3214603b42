"""One router per resource."""

from shieldkit.guardrails.api.routers import chat, check, models, moderations, ops

ROUTERS = (chat.router, moderations.router, check.router, models.router, ops.router)
