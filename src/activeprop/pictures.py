"""An item's picture as the faces show it: PNG for the page, grey levels for the terminal.

A project keeps pictures either as PNG thumbnails (image folders: colour and aspect ratio
kept) or as float arrays (pools given as arrays, such as digits), drawn with the project's
``image_style``: ``max`` is the value of full ink, ``invert`` draws high values dark.
"""

from __future__ import annotations

import io

import numpy as np


def to_png(picture: np.ndarray | bytes, style: dict | None) -> bytes:
    """The picture as PNG bytes (a stored PNG as it is)."""
    if isinstance(picture, bytes):
        return picture
    from PIL import Image

    style = style or {}
    scaled = np.clip(picture / (style.get("max") or 1.0), 0, 1)
    if style.get("invert"):
        scaled = 1 - scaled
    buffer = io.BytesIO()
    Image.fromarray((scaled * 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def to_grey(picture: np.ndarray | bytes, style: dict | None) -> np.ndarray:
    """The picture as grey levels in [0, 1] (1: the most ink, or the brightest)."""
    if isinstance(picture, bytes):
        from PIL import Image

        with Image.open(io.BytesIO(picture)) as image:
            return np.asarray(image.convert("L"), dtype=np.float64) / 255.0
    return np.clip(picture / ((style or {}).get("max") or float(picture.max()) or 1.0), 0, 1)
