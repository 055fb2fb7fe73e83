"""The terminal labeler: the labeling loop without a GUI (works over SSH).

Each queued item is drawn with Unicode block characters, the model's guess shown as a
hint, and one key answers: a class key, ``s`` skip, ``u`` undo, ``q`` quit. It uses the
same project store as the browser, so a person can switch between the two.
"""

from __future__ import annotations

import sys
from typing import Callable, TextIO

import numpy as np

from .labeling import LabelingSession, key_map

SHADES = " ░▒▓█"
MAX_DRAWN = 16  # larger images are averaged down to at most 16 x 16 cells


def draw(image: np.ndarray, high: float) -> str:
    """An image as lines of shade characters, two per pixel so it keeps its aspect."""
    factor = int(np.ceil(max(image.shape) / MAX_DRAWN))
    if factor > 1:
        rows, cols = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
        image = image[:rows, :cols].reshape(rows // factor, factor, cols // factor, factor)
        image = image.mean(axis=(1, 3))
    levels = np.clip(np.rint(image / (high or 1.0) * (len(SHADES) - 1)), 0, len(SHADES) - 1)
    return "\n".join("".join(SHADES[int(v)] * 2 for v in row) for row in levels)


def _folded(text: str, width: int = 78, lines: int = 12) -> str:
    """A text wrapped to ``width`` columns, cut after ``lines`` lines; control characters
    (which could drive the terminal) are shown as spaces."""
    import textwrap

    clean = "".join(c if c.isprintable() or c == "\n" else " " for c in text)
    wrapped = textwrap.wrap(clean, width) or [""]
    return "\n".join(wrapped[:lines] + (["…"] if len(wrapped) > lines else []))


def _field_lines(fields: list[dict], lines: int = 12) -> str:
    """A table row's values, one ``name  value`` line each (names aligned, cut to 30
    characters, control characters shown as spaces), the first ``lines`` of them and then
    how many more."""
    names = ["".join(c if c.isprintable() else " " for c in field["name"])[:30]
             for field in fields[:lines]]
    width = max(map(len, names))
    shown = [f"{name:<{width}}  {_number(field['value'])}"
             for name, field in zip(names, fields)]
    return "\n".join(shown + ([f"(+{len(fields) - lines} more)"] if len(fields) > lines else []))


def _number(value: float | None) -> str:
    """The shortest form that reads back as ``value``, as the page shows it (5, not 5.0);
    "missing" for a missing cell (None)."""
    if value is None:
        return "missing"
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def read_key(stream: TextIO) -> str:
    """One key press from a terminal, or one line from a pipe."""
    if not stream.isatty():
        line = stream.readline()
        return "q" if line == "" else line.strip()
    import termios
    import tty

    descriptor = stream.fileno()
    saved = termios.tcgetattr(descriptor)
    try:
        tty.setcbreak(descriptor)
        key = stream.read(1)
    finally:
        termios.tcsetattr(descriptor, termios.TCSADRAIN, saved)
    return "q" if key in ("\x03", "\x04") else key  # Ctrl+C, Ctrl+D


def run(session: LabelingSession, annotator: str = "terminal", stdin: TextIO = sys.stdin,
        write: Callable[[str], None] = print) -> int:
    """Label until the queue is empty or the person quits; returns how many were saved."""
    if not session.class_names:
        write("This project has no classes yet: add them on the page (activeprop serve) or "
              "create it with --classes.")
        return 0
    keys = key_map(session.class_names)
    skipped: set[int] = set()
    saved = 0
    while True:
        queue = session.queue(1, client=annotator, skip=sorted(skipped))
        if not queue:
            write("Nothing left to label.")
            return saved
        item = queue[0]
        write(_screen(session, item, keys))
        key = read_key(stdin)
        if key == "q":
            write(f"Bye: {saved} labels saved this session.")
            return saved
        if key == "s":
            skipped.add(item.id)
        elif key == "u":
            done = session.undo(annotator)
            write("Nothing to undo." if done is None else f"Undone: item #{done['item_id']}.")
        elif key in keys or (len(keys) < len(session.class_names) and key in session.class_names):
            result = session.add_label(item.id, keys.get(key, key), annotator)
            saved += 1
            write(f"Saved: #{item.id} is {result['label']!r} (model v{result['model_version']}).")
        else:
            write(f"Unknown key {key!r}: use {'/'.join(keys)}, s, u or q.")


def _screen(session: LabelingSession, item, keys: dict[str, str]) -> str:
    state = session.state()
    curve = state["curve"]
    # Labelled like the page's header: where the figure comes from (ground truth held back
    # from the labeler, or cross-validation of the human labels).
    accuracy = f" · accuracy {curve[-1]['accuracy']:.1%} ({curve[-1]['source']})" if curve \
        else ""
    grey = session.picture_grey(item.id)
    picture = draw(grey, 1.0) if grey is not None else _folded(item.text) if item.text \
        else _field_lines(item.fields) if item.fields else "(no image)"
    guess = "no guess yet" if item.prediction is None else \
        f"model's guess: {item.prediction} ({item.confidence:.0%})"
    legend = "  ".join(f"{key}={name}" for key, name in keys.items() if key != name)
    return "\n".join([
        "",
        f"item #{item.id} · labeled {state['n_labeled']}/{state['pool_size']} · "
        f"model v{state['model_version']}{accuracy}" + (f" · {item.path}" if item.path else ""),
        picture,
        guess,
        (legend + "\n" if legend else "") +
        f"label [{'/'.join(keys)}], s skip, u undo, q quit: ",
    ])
