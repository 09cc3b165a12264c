"""What the command modules share: printing, tables, the --trust-code flag, how a setting's
default is shown, and typed arguments that refuse a value out of range by naming the flag."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def out(text: str = "") -> None:
    print(text, flush=True)


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def shown(value: Any) -> str:
    """A default as a person reads it in --help: ``none``, ``64 32``, ``0.1``."""
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return " ".join(map(str, value)) or "none"
    return str(value)


def table(header: list[str], rows: list[list], right: frozenset[int] = frozenset()) -> None:
    """Print rows in columns as wide as their widest cell; columns in ``right`` align right."""
    cells = [[str(h) for h in header], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        line = "  ".join(
            f"{c:>{w}}" if i in right else f"{c:<{w}}"
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        out(line.rstrip())


def trust_flag(parser: argparse.ArgumentParser, what: str = "") -> None:
    parser.add_argument(
        "--trust-code",
        action="store_true",
        help=(what or "import the model's code if it is your own (FILE.py:Class)")
        + "; without it such a model is refused and nothing is imported",
    )


def int_in(lo: int, hi: int | None = None):
    """An argparse ``type``: a whole number in [lo, hi] (no upper bound when hi is None).
    argparse names the flag; the message gives the range and the value found."""
    return _number_in(int, "a whole number", lo, hi)


def float_in(lo: float, hi: float | None = None, *, above: bool = False):
    """An argparse ``type``: a number in [lo, hi], or in (lo, hi] when ``above``."""
    return _number_in(float, "a number", lo, hi, above=above)


def _number_in(kind, what: str, lo, hi, *, above: bool = False):
    if hi is None:
        wanted = f"{what} {'above' if above else 'at least'} {lo}"
    else:
        wanted = f"{what} {'above' if above else 'from'} {lo}{',' if above else ''} to {hi}"

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        fits = (value > lo if above else value >= lo) and (hi is None or value <= hi)
        if not fits:  # NaN fits nowhere
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text}")
        return value

    convert.__name__ = kind.__name__  # argparse names the type in some messages
    return convert
