"""``shieldkit ui``: start the Streamlit debugger app with the model settings passed through.

Streamlit's own settings (no email prompt, no usage statistics, no developer toolbar) ship in
``ui/.streamlit/config.toml``, which Streamlit reads because it sits next to the app script."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from shieldkit.errors import ConfigError

APP = Path(__file__).with_name("app.py")


def register(subparsers: argparse._SubParsersAction) -> None:
    from shieldkit.model.cli import add_model_arguments

    parser = subparsers.add_parser(
        "ui", help="start the model debugger (Streamlit)",
        description="Start the model debugger: token saliency, attention and classifier decisions in the browser.",
    )
    parser.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--headless", action="store_true",
                        help="do not open a browser (servers, tests; automatic when stdin is not a terminal)")
    parser.add_argument("--classifier", action="append", default=[], metavar="FOLDER",
                        help="a saved classifier folder to offer in the Classifier tab (repeatable)")
    add_model_arguments(parser)
    parser.set_defaults(handler=run_ui)


def streamlit_command(args: argparse.Namespace, terminal: bool = False) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) for ``streamlit run`` on the app, with the model settings in SHIELDKIT_*.
    Without a ``terminal`` on stdin the server runs headless (no browser to open, nobody to answer)."""
    from shieldkit.model.cli import settings_from_args

    if not 1 <= args.port <= 65535:
        raise ConfigError(f"--port must be in 1..65535, got {args.port}")
    settings = settings_from_args(args)  # validates --model/--dtype/--device (and SHIELDKIT_*) before starting
    env = dict(os.environ)
    env.update({"SHIELDKIT_MODEL": settings.model, "SHIELDKIT_DTYPE": settings.dtype, "SHIELDKIT_DEVICE": settings.device})
    if args.classifier:
        missing = [folder for folder in args.classifier if not Path(folder).is_dir()]
        if missing:
            raise ConfigError(f"--classifier folder not found: {', '.join(missing)}")
        env["SHIELDKIT_UI_CLASSIFIERS"] = "\n".join(str(Path(folder).resolve()) for folder in args.classifier)
    env.setdefault("SHIELDKIT_PROGRESS", "0")
    argv = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.port", str(args.port),
        "--server.address", args.host,
        "--server.headless", "true" if args.headless or not terminal else "false",
    ]
    return argv, env


def run_ui(args: argparse.Namespace) -> int:
    try:
        import streamlit  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"streamlit is not installed ({exc}); pip install 'streamlit>=1.40'") from None
    argv, env = streamlit_command(args, terminal=sys.stdin.isatty())
    print(f"shieldkit ui: http://{args.host}:{args.port} (model {env['SHIELDKIT_MODEL']})", file=sys.stderr, flush=True)
    os.execve(sys.executable, argv, env)  # streamlit takes over this process (Ctrl-C stops it)
    return 0  # not reached
