"""The labeled pool as a file: one row per item, whatever its state.

Every item of the pool is a row: its final label (the human one, else the propagated one),
where it came from (``human``, ``propagated``, or ``none`` before the model has any label
to spread), the confidence, and every human label event of the item. A ``min_confidence``
blanks the propagated labels below it but keeps their rows, so the row count is always the
pool's and the rows stay aligned with the data.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np

from .datasets import UNLABELED
from .errors import UserError

EXPORT_FORMATS = ("csv", "jsonl", "npz")
COLUMNS = ("id", "path", "label", "source", "confidence", "human_labels")


def export_rows(human: np.ndarray, predicted: np.ndarray, confidence: np.ndarray,
                class_names: list[str], events: dict[int, list],
                min_confidence: float = 0.0,
                paths: list[str | None] | None = None) -> list[dict]:
    """One row per item (see the module's docstring); ``events`` maps an item to its
    label events as JSON objects; ``paths`` are the items' files (image folders), so that
    every label maps back to its file."""
    if not 0 <= min_confidence <= 1:
        raise UserError(f"min-confidence must be between 0 and 1, got {min_confidence}")
    rows = []
    for i in range(len(human)):
        if human[i] != UNLABELED:
            label, source, sure = class_names[human[i]], "human", 1.0
        elif predicted[i] >= 0:
            sure = float(confidence[i])
            label = class_names[predicted[i]] if sure >= min_confidence else None
            source = "propagated"
        else:
            label, source, sure = None, "none", 0.0
        rows.append({"id": i, "path": None if paths is None else paths[i], "label": label,
                     "source": source, "confidence": sure,
                     "human_labels": events.get(i, [])})
    return rows


def encode(rows: list[dict], fmt: str) -> bytes:
    """The rows as CSV (a blank label is an empty field), JSON lines (null) or an .npz
    archive (an empty string)."""
    if fmt not in EXPORT_FORMATS:
        raise UserError(f"unknown export format {fmt!r}; allowed: {', '.join(EXPORT_FORMATS)}")
    if fmt == "jsonl":
        return "".join(json.dumps(row) + "\n" for row in rows).encode()
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "human_labels": json.dumps(row["human_labels"])})
        return text.getvalue().encode()
    buffer = io.BytesIO()
    np.savez(buffer, id=np.array([r["id"] for r in rows], dtype=np.int64),
             path=np.array([r["path"] or "" for r in rows], dtype=str),
             label=np.array([r["label"] or "" for r in rows], dtype=str),
             source=np.array([r["source"] for r in rows], dtype=str),
             confidence=np.array([r["confidence"] for r in rows], dtype=np.float64),
             human_labels=np.array([json.dumps(r["human_labels"]) for r in rows], dtype=str))
    return buffer.getvalue()
