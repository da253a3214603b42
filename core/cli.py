"""The ``shieldkit`` command line.

Each part of the toolkit contributes its subcommands through a ``register(subparsers)`` function in its own
``cli.py``; they are listed here explicitly. Handlers import their heavy dependencies (torch, transformers) lazily
so that ``shieldkit --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from shieldkit import __version__
from shieldkit.errors import ShieldkitError

# The modules that contribute subcommands, in the order `--help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "shieldkit.model.cli",
    "shieldkit.classifiers.cli",
    "shieldkit.guardrails.cli",
    "shieldkit.guardrails.scoring.cli",
    "shieldkit.debugger.cli",
    "shieldkit.ui.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shieldkit",
        description="Responsible-AI safety toolkit around a real Gemma: generation, few-shot safety classifiers, "
        "a guardrail proxy and a model debugger.",
    )
    parser.add_argument("--version", action="version", version=f"shieldkit {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except ShieldkitError as exc:
        print(f"shieldkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("shieldkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
