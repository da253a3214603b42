"""``shieldkit serve`` (the guardrail proxy), ``shieldkit audit`` (its audit log), ``shieldkit key`` (API keys)."""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from shieldkit.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    from shieldkit.model.cli import add_model_arguments

    serve = subparsers.add_parser(
        "serve", help="run the guardrail proxy (OpenAI-compatible)",
        description="Serve an OpenAI-compatible API that checks every request and answer against a policy. "
        "Default: the embedded Gemma in-process, with the packaged default policy.",
    )
    serve.add_argument("--policy", type=Path, help="policy YAML file (default: the packaged default policy)")
    serve.add_argument("--upstream", help="an OpenAI-compatible base URL, e.g. http://localhost:8000/v1 (default: the embedded Gemma)")
    serve.add_argument("--scorer-url", metavar="URL", help="a classifier scorer service (`shieldkit serve-classifiers`) "
                       "to ask instead of loading the classifiers in every worker, e.g. http://localhost:8001")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (each loads its own models; with "
                       "rate-limited keys they need a shared --redis-url; /metrics sums them all)")
    serve.add_argument("--redis-url", metavar="URL", help="count rate limits in this Redis, shared by every worker "
                       "and machine, e.g. redis://localhost:6379/0")
    serve.add_argument("--rate-limit-storage", metavar="URI", help="where rate limits are counted: memory:// (default, "
                       "this process) or another limits storage all workers share, e.g. memcached://localhost:11211")
    serve.add_argument("--rate-limit-fail-open", action="store_true", help="when the rate-limit storage is down, let "
                       "requests through unlimited (default: refuse them with 503)")
    serve.add_argument("--audit", type=Path, metavar="FILE", help="audit log SQLite file (default: ~/.local/state/shieldkit/audit.sqlite3)")
    serve.add_argument("--audit-url", metavar="URL", help="write the audit log to this database instead, shared by "
                       "every worker and machine: postgresql://user:password@host:5432/db")
    serve.add_argument("--no-audit", action="store_true", help="do not write an audit log")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    add_model_arguments(serve)
    serve.set_defaults(handler=run_serve)

    audit = subparsers.add_parser("audit", help="list and filter the proxy's audit log",
                                  description="List audit events, newest first, with each check's outcome and score.")
    audit.add_argument("--db", metavar="FILE_OR_URL", help="audit log: a SQLite file or a database URL such as "
                       "postgresql://user:password@host/db (default: $SHIELDKIT_PROXY_AUDIT_URL, else "
                       "$SHIELDKIT_PROXY_AUDIT_PATH, else ~/.local/state/shieldkit/audit.sqlite3)")
    audit.add_argument("--since", help="only events after: 30m, 2h, 7d, or an ISO time")
    audit.add_argument("--until", help="only events before: 30m, 2h, 7d (ago), or an ISO time")
    audit.add_argument("--key", help="only this API key id")
    audit.add_argument("--decision", choices=["allow", "redact", "block", "error", "interrupted", "pending"],
                       help="error: the upstream gave no answer; interrupted: the proxy stopped before the answer "
                       "was recorded; pending: an answer still in progress")
    audit.add_argument("--direction", choices=["input", "output"])
    audit.add_argument("--check", help="only events where this check ran (with --fired: where it fired)")
    audit.add_argument("--fired", action="store_true", help="only events where a check (or --check) fired")
    audit.add_argument("--request-id", help="one request (its X-Request-ID)")
    audit.add_argument("--limit", type=int, default=50, help="most events to show (default 50)")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    audit.set_defaults(handler=run_audit)

    key = subparsers.add_parser("key", help="create API keys for the proxy", description="API keys for the proxy.")
    key_commands = key.add_subparsers(title="key commands", metavar="COMMAND", required=True)
    new = key_commands.add_parser("new", help="create a random key; prints it once, with the policy-file entry")
    new.add_argument("--id", default="my-app", help="a name for the key (audit log, metrics)")
    new.add_argument("--policy", default="default", help="the policy its requests use")
    new.add_argument("--rate-limit", help="e.g. 60/minute")
    new.set_defaults(handler=run_key_new)
    hashed = key_commands.add_parser("hash", help="print the sha256 of a key read from stdin")
    hashed.set_defaults(handler=run_key_hash)


# --- serve -----------------------------------------------------------------------------------------------------


def run_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from shieldkit.guardrails.app import create_app
    from shieldkit.guardrails.ops.listen import listening_socket
    from shieldkit.guardrails.settings import ProxySettings
    from shieldkit.model.cli import settings_from_args

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, got {args.port}")
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    values = dict(policy=args.policy, upstream=args.upstream, audit_path=args.audit, audit_url=args.audit_url,
                  audit=False if args.no_audit else None, model=settings_from_args(args), workers=args.workers,
                  redis_url=args.redis_url, rate_limit_storage=args.rate_limit_storage,
                  rate_limit_fail_open=True if args.rate_limit_fail_open else None, scorer_url=args.scorer_url)
    settings = ProxySettings.create(**values)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.workers > 1:
        from shieldkit.guardrails.ops.metrics import metrics_folder

        with metrics_folder():
            return _serve_workers(args, settings)
    app = create_app(settings)  # validates the policy before anything listens
    services = app.state.services
    sock = listening_socket(args.host, args.port)
    server = uvicorn.Server(uvicorn.Config(app, log_level=args.log_level, timeout_graceful_shutdown=5))
    services.startup.on_fatal = lambda _message: setattr(server, "should_exit", True)
    policy = settings.policy or "the default policy"
    upstream = settings.upstream or f"the embedded {services.startup.model_id}"
    print(f"shieldkit guardrail proxy on http://{args.host}:{args.port}/v1 (policy: {policy}; upstream: {upstream}); "
          f"/readyz turns 200 once the models are loaded", file=sys.stderr)
    server.run(sockets=[sock])
    if services.startup.state == "failed":
        raise ConfigError(f"the proxy stopped: {services.startup.error}")
    return 0


def _serve_workers(args: argparse.Namespace, settings) -> int:
    """Several processes: uvicorn's own workers, each building the app from SHIELDKIT_PROXY_* settings (and
    PROMETHEUS_MULTIPROC_DIR, so /metrics sums them)."""
    import uvicorn

    from shieldkit.guardrails.ops.ratelimit import RateLimits
    from shieldkit.guardrails.policy import load_policy_file

    from shieldkit.guardrails.services import build_scorer

    loaded = load_policy_file(settings.policy)  # refuse a bad policy before forking
    build_scorer(settings, loaded, None, None)  # ... classifier checks that cannot run (a missing folder)
    RateLimits(settings, loaded.file.keys)  # ... and a rate-limit storage the workers cannot share or cannot use
    env = {"SHIELDKIT_PROXY_POLICY": settings.policy, "SHIELDKIT_PROXY_UPSTREAM": settings.upstream,
           "SHIELDKIT_PROXY_WORKERS": settings.workers, "SHIELDKIT_PROXY_RATE_LIMIT_STORAGE": settings.rate_limit_storage,
           "SHIELDKIT_PROXY_REDIS_URL": settings.redis_url,
           "SHIELDKIT_PROXY_RATE_LIMIT_FAIL_OPEN": str(settings.rate_limit_fail_open).lower(),
           "SHIELDKIT_PROXY_AUDIT": str(settings.audit).lower(), "SHIELDKIT_PROXY_AUDIT_PATH": settings.audit_path,
           "SHIELDKIT_PROXY_AUDIT_URL": settings.audit_url,
           "SHIELDKIT_MODEL": settings.model.model, "SHIELDKIT_DTYPE": settings.model.dtype,
           "SHIELDKIT_DEVICE": settings.model.device}
    os.environ.update({key: str(value) for key, value in env.items() if value is not None})
    if settings.scorer_url is not None:  # the workers ask the scorer service too
        os.environ["SHIELDKIT_PROXY_SCORER_URL"] = settings.scorer_url
    from shieldkit.guardrails.app import WORKER_STOP_ENV

    with tempfile.TemporaryDirectory(prefix="shieldkit-workers-") as folder:
        stop_file = Path(folder) / "stopped"  # a worker whose models cannot load writes why, and stops us all
        os.environ[WORKER_STOP_ENV] = str(stop_file)
        uvicorn.run("shieldkit.guardrails.app:app_from_env", factory=True, host=args.host, port=args.port,
                    workers=args.workers, log_level=args.log_level)
        if stop_file.exists():
            raise ConfigError(f"the proxy stopped: {stop_file.read_text(encoding='utf-8')}")
    return 0


# --- audit -----------------------------------------------------------------------------------------------------


def parse_when(text: str | None, option: str) -> float | None:
    """'30m', '2h', '7d', '45s' ago, or an ISO date/time -> unix seconds."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if match:
        return time.time() - float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ConfigError(f"{option} must be like 30m, 2h, 7d or an ISO time such as 2025-01-31T12:00, got {text!r}") from None


def run_audit(args: argparse.Namespace) -> int:
    from shieldkit.guardrails.ops.audit import query
    from shieldkit.guardrails.settings import default_audit_path

    if args.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {args.limit}")
    target = args.db or os.environ.get("SHIELDKIT_PROXY_AUDIT_URL") or os.environ.get("SHIELDKIT_PROXY_AUDIT_PATH")
    events = query(target or default_audit_path(), since=parse_when(args.since, "--since"),
                   until=parse_when(args.until, "--until"), key_id=args.key, decision=args.decision,
                   direction=args.direction, check=args.check, fired=args.fired, request_id=args.request_id,
                   limit=args.limit)
    if args.json:
        for event in events:
            print(json.dumps(event))
        return 0
    if not events:
        print("no matching audit events", file=sys.stderr)
        return 0
    rows = [("time", "request", "key", "endpoint", "dir", "decision", "by", "ms", "checks fired / failed")]
    for e in events:
        notable = [f"{c['name']}={c['score']:.2f}" if c["score"] is not None else c["name"]
                   for c in e["checks"] if c["outcome"] == "fired"]
        failed = [f"{c['name']}!" for c in e["checks"] if c["outcome"] == "error"]
        rows.append((datetime.fromtimestamp(e["time"]).isoformat(timespec="seconds"), e["request_id"], e["key_id"] or "-",
                     e["endpoint"], e["direction"], e["decision"], e["blocked_by"] or "-", f"{e['latency_ms']:.1f}",
                     " ".join(notable + failed) or "-"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)) + "  " + str(row[-1]))
    return 0


# --- keys ------------------------------------------------------------------------------------------------------


def run_key_new(args: argparse.Namespace) -> int:
    from shieldkit.guardrails.policy.schema import KeyConfig, hash_key

    key = "sk-shield-" + secrets.token_urlsafe(32)
    try:
        KeyConfig(id=args.id, sha256=hash_key(key), policy=args.policy, rate_limit=args.rate_limit)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    print(f"API key (shown once, store it now): {key}", file=sys.stderr)
    print("Add this to the keys: list of your policy file:", file=sys.stderr)
    lines = [f"  - id: {args.id}", f"    sha256: {hash_key(key)}", f"    policy: {args.policy}"]
    if args.rate_limit:
        lines.append(f"    rate_limit: {args.rate_limit}")
    print("\n".join(lines))
    return 0


def run_key_hash(args: argparse.Namespace) -> int:
    from shieldkit.guardrails.policy.schema import hash_key

    key = sys.stdin.readline().strip()
    if not key:
        raise ConfigError("give the key on stdin, e.g. `echo $KEY | shieldkit key hash`")
    print(hash_key(key))
    return 0
