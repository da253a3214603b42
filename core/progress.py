"""Progress bars for long work, written to stderr so stdout stays machine-readable."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    """Bars are on unless SHIELDKIT_PROGRESS=0 (tests and services switch them off)."""
    return os.environ.get("SHIELDKIT_PROGRESS", "1") not in ("0", "false", "no")


def bar(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "", unit: str = "it") -> tqdm:
    """A tqdm bar on stderr, disabled when progress is switched off."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, disable=not progress_enabled(), dynamic_ncols=True)


def track(iterable: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "it") -> Iterator[T]:
    """Iterate with a progress bar."""
    yield from bar(iterable, total=total, desc=desc, unit=unit)
