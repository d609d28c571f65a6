"""Progress on stderr for the CLI's long work (verify, replay, submitting a large file): one
self-overwriting line on a terminal, plain lines in a log file."""

from __future__ import annotations

import sys
from collections.abc import Callable


def _line(text: str, last: bool = False) -> None:
    if sys.stderr.isatty():
        print("\r" + text, end="\n" if last else "", file=sys.stderr, flush=True)
    else:
        print(text, file=sys.stderr, flush=True)


def bar(label: str) -> Callable[[int, int], None]:
    """`show(done, total)`; in a log file, a line at each tenth."""
    shown = -1

    def show(done: int, total: int) -> None:
        nonlocal shown
        tenth = 10 * done // max(total, 1)
        if tenth == shown and not sys.stderr.isatty():
            return
        shown = tenth
        filled = min(30, 30 * done // max(total, 1))
        _line(f"{label} [{'#' * filled}{'.' * (30 - filled)}] {done:,}/{total:,}", last=done >= total)
    return show


def counter(label: str, unit: str) -> Callable[[int], None]:
    """`show(n)` for work of unknown size (rows of a file being read); `show.end()` after it."""
    def show(n: int) -> None:
        show.used = True
        _line(f"{label}: {n:,} {unit}")

    def end() -> None:
        if show.used and sys.stderr.isatty():
            print(file=sys.stderr)
    show.used, show.end = False, end
    return show
