"""The notebook labeler: an anywidget whose every action is a call to a
:class:`~activeprop.labeling.LabelingSession`, the logic behind the page and the terminal
(queue, leases, labels, undo, refits): the widget holds no state of its own but the items
this person skipped.

The front end (``labeler.js``) sends ``label``, ``skip`` and ``undo`` messages; the kernel
answers by setting the synced traits (the queue, the header's numbers, the curve, a
message). Every string reaches the page as text, never as HTML, and pictures as PNG data
URLs the session made.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import numpy as np

from ..datasets import UNLABELED, Pool
from ..errors import UserError
from ..labeling import LabelingSession, key_map
from ..store import DATABASE, ProjectStore

try:
    import anywidget
    import traitlets
except ImportError:  # pragma: no cover - the message is the point
    raise ImportError("the notebook labeler needs anywidget: pip install "
                      "'activeprop[notebook]'") from None

HERE = Path(__file__).parent
BATCH = 5


class Labeler(anywidget.AnyWidget):
    """Label a project's items in a notebook: the items most worth a label, the model's
    guess and confidence, number keys and buttons for the classes, ``s`` to skip, ``u``
    to undo, arrows to move, and the learning curve. Every label is in the project store
    before the widget shows the next items, so a page, a terminal and other widgets on the
    same project see it, and a restarted kernel finds it.

    Parameters
    ----------
    project : str or Path
        A project directory (``activeprop init``, or :meth:`from_arrays`).
    annotator : str
        The name the labels are logged under (undo takes back this name's latest).
    batch : int
        Items shown at once.
    plugins : list of str
        ``module:name`` strategies and models the project names that you trust to run.
    client : distributed.Client, optional
        Solve and score on this Dask cluster (see ``serve --cluster``).
    """

    _esm = HERE / "labeler.js"
    _css = HERE / "labeler.css"
    classes = traitlets.List(traitlets.Unicode()).tag(sync=True)
    class_keys = traitlets.Dict().tag(sync=True)  # key -> class index
    items = traitlets.List(traitlets.Dict()).tag(sync=True)
    status = traitlets.Dict().tag(sync=True)
    curve_points = traitlets.List(traitlets.Dict()).tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    failed = traitlets.Bool(False).tag(sync=True)
    acknowledged = traitlets.Int(0).tag(sync=True)  # the front end's last message handled

    def __init__(self, project: str | Path, *, annotator: str = "notebook",
                 batch: int = BATCH, plugins=(), client=None):
        if not isinstance(batch, int) or not 1 <= batch <= 50:
            raise UserError(f"batch must be a whole number from 1 to 50, got {batch!r}")
        self.session = LabelingSession(project, plugins=plugins, client=client)
        self.annotator, self.batch = annotator, batch
        # Items are leased to the annotator: two people never see the same ones, and a
        # restarted kernel shows its annotator the items it showed before.
        self._lease = f"notebook:{annotator}"
        self._skipped: set[int] = set()
        super().__init__()
        self.on_msg(self._on_message)
        self.refresh()

    @classmethod
    def from_arrays(cls, X, *, project: str | Path, y=None, images=None, texts=None,
                    feature_names: list[str] | None = None,
                    classes: list[str] | None = None, ink: bool = False,
                    annotator: str = "notebook", batch: int = BATCH,
                    **settings) -> "Labeler":
        """A labeler for items given as arrays, kept in a project on disk at ``project``
        (so that a dying kernel loses nothing). Run again on the same arrays (after a
        restart, say), it opens that project with its labels.

        ``X``: features, one row per item. ``y``: the true classes where you know them
        (class names, or indices into ``classes``; -1 or None elsewhere), only to measure
        the curve's accuracy: they are never labels. ``images``: (n, height, width) arrays
        to show (``ink``: high values are ink, drawn dark, as digits are; else light);
        ``texts``: a string per item to show. ``feature_names``: the name of each column
        of ``X``, to show each item's values under them (a table's items; by default a
        pandas DataFrame's columns). ``classes``: the class names
        (default: those ``y`` names; without either, add them in the project as you meet
        them). ``settings``: as ``activeprop init`` (model, kernel, strategy,
        n_neighbors...).
        """
        if feature_names is None and hasattr(X, "columns"):  # a DataFrame's
            feature_names = [str(name) for name in X.columns]
        X = np.asarray(X, dtype=np.float64)
        digest = _digest(X)
        if (Path(project) / DATABASE).exists():
            _check_same_items(project, digest)
        else:
            from ..project import create_project

            pool = Pool(X, *_labels_and_classes(y, classes, len(X)),
                        None if images is None else np.asarray(images, dtype=np.float32),
                        "arrays", texts=None if texts is None else [str(t) for t in texts],
                        feature_names=None if feature_names is None else
                        [str(name) for name in feature_names])
            store = create_project(project, pool, **settings)
            store.set_meta("arrays_digest", digest)
            if pool.images is not None:
                store.set_meta("image_style", {"max": float(pool.images.max()) or 1.0,
                                               "invert": bool(ink)})
            store.close()
        return cls(project, annotator=annotator, batch=batch)

    # ------------------------------------------------------------------ the loop

    def refresh(self, acknowledged: int | None = None) -> None:
        """Show the current queue and numbers (labels other processes gave included);
        ``acknowledged``: the number of the front end's message this answers."""
        session = self.session
        state = session.state()
        queue = session.queue(self.batch, client=self._lease, skip=sorted(self._skipped))
        names = state["class_names"]
        with self.hold_sync():
            self.classes = names
            self.class_keys = {key: names.index(name) for key, name in key_map(names).items()}
            self.items = [self._card(item) for item in queue]
            self.status = _status(state)
            self.curve_points = state["curve"]
            if acknowledged is not None:
                self.acknowledged = acknowledged

    def _card(self, item) -> dict:
        picture = self.session.picture_png(item.id)
        return {"id": item.id, "prediction": item.prediction,
                "confidence": item.confidence, "text": item.text, "path": item.path,
                "fields": item.fields,
                "picture": None if picture is None else
                "data:image/png;base64," + base64.b64encode(picture).decode("ascii")}

    def _on_message(self, _widget, content: dict, _buffers) -> None:
        """A key or button from the front end: label, skip or undo; then show the rest."""
        try:
            self.message, self.failed = self._act(content), False
        except UserError as error:
            self.message, self.failed = str(error), True
        number = content.get("sequence") if isinstance(content, dict) else None
        self.refresh(number if isinstance(number, int) else None)

    def _act(self, content: dict) -> str:
        if not isinstance(content, dict):
            raise UserError("the front end sent a message that is not an object")
        action = content.get("action")
        if action == "undo":
            undone = self.session.undo(self.annotator)
            return "Nothing to undo" if undone is None else \
                f"Undone: item #{undone['item_id']}"
        if action == "add_class":
            self.session.add_class(content.get("name"))
            return f"Added the class {content.get('name')}"
        item = content.get("item")
        if not isinstance(item, int) or isinstance(item, bool):
            raise UserError(f"the front end sent no item to {action!r}")
        if action == "skip":
            self._skipped.add(item)
            return f"Skipped item #{item}"
        if action == "label":
            saved = self.session.add_label(item, content.get("label"), self.annotator)
            return f"Saved: item #{item} is {saved['label']}"
        raise UserError(f"unknown action {action!r}; allowed: label, skip, undo, add_class")

    # ------------------------------------------------------------------ from the notebook

    def label(self, item: int, label) -> dict:
        """Label ``item`` (a class name or index) from code, as a key press would."""
        saved = self.session.add_label(item, label, self.annotator)
        self.refresh()
        return saved

    def undo(self) -> dict | None:
        """Undo this annotator's latest label, as ``u`` would."""
        undone = self.session.undo(self.annotator)
        self.refresh()
        return undone

    def add_class(self, name: str) -> None:
        """Add a class (a project may start with none and grow them as you meet them)."""
        self.session.add_class(name)
        self.refresh()

    def labels(self):
        """The human labels in effect: a DataFrame of ``item_id`` and ``label``."""
        import pandas as pd

        return pd.DataFrame(self.session.human_labels(), columns=["item_id", "label"])

    def predictions(self, min_confidence: float = 0.0):
        """Every item's label now: a DataFrame of ``item_id``, ``label`` (the human one,
        else the propagated one; empty below ``min_confidence``), ``source`` (human,
        propagated or none), ``confidence`` and ``path`` (the item's file, if any)."""
        import pandas as pd

        rows = self.session.export_rows(min_confidence)
        return pd.DataFrame([{k: row[k] for k in ("label", "source", "confidence", "path")}
                             for row in rows],
                            index=pd.RangeIndex(len(rows), name="item_id"))

    def prediction_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Every item's class index (-1 before two classes have labels) and confidence, as
        arrays; human labels have confidence 1."""
        predicted, confidence = self.session.predictions()
        human = self.session.labels != UNLABELED
        return (np.where(human, self.session.labels, predicted),
                np.where(human, 1.0, confidence))

    def export(self, path: str | Path, min_confidence: float = 0.0) -> Path:
        """Write the labeled pool to ``path`` (.csv, .jsonl or .npz, by its suffix), as
        ``activeprop export`` does; returns the path."""
        path = Path(path)
        data = self.session.export(path.suffix.lstrip(".").lower(), min_confidence)
        path.write_bytes(data)
        return path

    def curve(self):
        """The learning curve: a DataFrame of ``n_labeled``, ``accuracy`` and ``source``
        (ground truth or cross-validation), and a matplotlib figure of it."""
        import matplotlib.pyplot as plt
        import pandas as pd
        from matplotlib.ticker import MaxNLocator

        points = pd.DataFrame(self.session.learning_curve(),
                              columns=["n_labeled", "accuracy", "source"])
        figure, axes = plt.subplots(figsize=(5, 3))
        axes.plot(points["n_labeled"], points["accuracy"], marker="o")
        axes.set(xlabel="human labels", ylabel="accuracy", ylim=(0, 1.02),
                 title="Learning curve")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        figure.tight_layout()
        plt.close(figure)  # shown where the caller displays it, not twice
        return points, figure

    def close(self) -> None:
        """Close the widget and its session (finishing background work)."""
        if getattr(self, "session", None) is not None:  # None: refused before it opened
            self.session.close()
        super().close()


def _status(state: dict) -> dict:
    """The header's numbers, from the session's state."""
    latest = state["curve"][-1] if state["curve"] else None
    return {"n_labeled": state["n_labeled"], "pool_size": state["pool_size"],
            "model_version": state["model_version"],
            "estimated_accuracy": state["estimated_accuracy"],
            "classes_labeled": state["classes_labeled"],
            "accuracy": None if latest is None else latest["accuracy"],
            "accuracy_source": None if latest is None else latest["source"]}


def _digest(X: np.ndarray) -> str:
    """A fingerprint of the features, to recognise the same arrays given again."""
    return hashlib.sha256(np.ascontiguousarray(X).tobytes() + str(X.shape).encode()) \
        .hexdigest()


def _check_same_items(project, digest: str) -> None:
    store = ProjectStore(project)
    kept = store.meta("arrays_digest")
    store.close()
    if kept != digest:
        raise UserError(f"{project} holds a project of other items; give the same arrays, "
                        "or another project directory (nothing was changed)")


def _labels_and_classes(y, classes, n_items: int) -> tuple[np.ndarray, list[str]]:
    """Known labels as class indices (-1 unknown) and the class names."""
    if y is None:
        return np.full(n_items, UNLABELED, dtype=np.int64), list(classes or [])
    values = list(y)
    if len(values) != n_items:
        raise UserError(f"y has {len(values)} labels for {n_items} items")
    known = [v for v in values if v is not None and not (isinstance(v, (int, np.integer))
                                                          and v == UNLABELED)]
    if all(isinstance(v, (int, np.integer)) for v in known):
        names = list(classes) if classes is not None else \
            [str(c) for c in range(max(known, default=-1) + 1)]
        if any(not 0 <= v < len(names) for v in known):
            raise UserError(f"y's class indices must be -1 or 0 to {len(names) - 1}")
        return np.array([UNLABELED if v is None else int(v) for v in values]), \
            [str(n) for n in names]
    names = [str(n) for n in classes] if classes is not None else \
        sorted({str(v) for v in known})
    unknown = sorted({str(v) for v in known} - set(names))
    if unknown:
        raise UserError(f"y names the class {unknown[0]!r}, which classes does not")
    return np.array([UNLABELED if v is None or v == UNLABELED else names.index(str(v))
                     for v in values]), names
