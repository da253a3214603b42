"""One router per resource."""

from shieldkit.guardrails.routers import chat, check, models, moderations, ops

ROUTERS = (chat.router, moderations.router, check.router, models.router, ops.router)
