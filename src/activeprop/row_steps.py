"""Rows taken a fixed number at a time, so that a loop's temporary arrays have that many
rows rather than a whole matrix's (each caller names its step, and says why, next to it)."""

from __future__ import annotations

from collections.abc import Iterator


def row_steps(n_rows: int, step: int, start: int = 0) -> Iterator[slice]:
    """``slice(start, start + step)``, then the next ``step`` rows, up to ``n_rows``
    (the last slice stops there: its ``stop`` is never past ``n_rows``)."""
    if step < 1:
        raise ValueError(f"a step of rows must be at least 1, not {step}")
    for first in range(start, n_rows, step):
        yield slice(first, min(first + step, n_rows))
