"""``shieldkit serve-classifiers``: the proxy's classifier scorer as its own HTTP service."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shieldkit.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    from shieldkit.model.cli import add_model_arguments

    serve = subparsers.add_parser(
        "serve-classifiers", help="run the classifier scorer as a service that proxies share",
        description="Serve the safety classifiers of a policy file over HTTP (POST /v1/score), batching the texts "
        "of every proxy that points SHIELDKIT_PROXY_SCORER_URL at it. One process per replica.",
    )
    serve.add_argument("--policy", type=Path, help="the policy YAML file the proxies read (default: the packaged "
                       "default policy); its classifier checks name the classifiers to load")
    serve.add_argument("--safety-model", type=Path, metavar="DIR",
                       help="the safety model folder the heads read (default: the committed one)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8001, help="port (default 8001)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    add_model_arguments(serve)
    serve.set_defaults(handler=run_serve_classifiers)


def run_serve_classifiers(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from shieldkit.guardrails.scoring.service import create_scorer_app
    from shieldkit.guardrails.ops.listen import listening_socket
    from shieldkit.guardrails.scoring.service_settings import ScorerSettings
    from shieldkit.model.cli import settings_from_args

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, got {args.port}")
    settings = ScorerSettings.create(policy=args.policy, safety_model=args.safety_model, model=settings_from_args(args))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_scorer_app(settings)  # validates the policy before anything listens
    service = app.state.service
    sock = listening_socket(args.host, args.port)
    server = uvicorn.Server(uvicorn.Config(app, log_level=args.log_level, timeout_graceful_shutdown=5))
    service.on_fatal = lambda _message: setattr(server, "should_exit", True)
    print(f"shieldkit classifier scorer on http://{args.host}:{args.port} (policy: {settings.policy or 'the default policy'}); "
          f"/readyz turns 200 once the classifiers are loaded", file=sys.stderr)
    server.run(sockets=[sock])
    if service.state == "failed":
        raise ConfigError(f"the scorer service stopped: {service.error}")
    return 0
