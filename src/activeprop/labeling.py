"""A person labeling a project: the queue, labels, undo, refits, progress and export.

:class:`LabelingSession` is the whole human-in-the-loop logic over a project that
:func:`activeprop.project.init_project` made; the browser app
(:mod:`activeprop.web`) and the terminal labeler (:mod:`activeprop.terminal`) only call it.
Every label is committed to the project store before the call returns, then the model is
refit on the reused graph, so predictions and the queue always reflect every label.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .abandon import Abandoned, abandoned_when
from .background import BackgroundWork
from .datasets import UNLABELED
from .errors import Conflict, UnknownItem, UserError
from .export import encode, export_rows
from .graph import is_permutation
from .human_labels import HumanLabels
from .pictures import to_grey, to_png
from .plugins import require_trusted
from .project import StoredGraphs, cold_start_order, project_model
from .review import held_out_proba, suspicious_labels
from .scaling import worked_on
from .stopping import labeled_classes, mean_confidence
from .store import LabelEvent, ProjectStore
from .strategies import (PoolScores, QueryContext, density, get_strategy, reads_density,
                         select_batch)

LEASE_SECONDS = 300
CROSS_VALIDATION_FOLDS = 5
# The curve's point is cross-validated, and the store's predictions cache written, once no
# label came for this long: the five refits would otherwise share the cores with the
# refits a person waits for (at 1,000,000 items a label took 1,276 ms with them running,
# 786 ms without), and the cache's write the session's lock.
QUIET_SECONDS = 1.0


@dataclass
class QueueItem:
    """An item offered for labeling, with the model's current guess."""

    id: int
    prediction: str | None
    confidence: float
    path: str | None = None  # the item's file, relative to the dataset's folder
    text: str | None = None  # the item's text (text datasets)
    # the item's values under its table's column names (tables: {"name", "value"} each)
    fields: list[dict] | None = None


@dataclass
class DeeperSolve:
    """A deeper solve under way in the background (:meth:`LabelingSession._deepen`): the
    model's solve it runs for, and its answer once ``done``."""

    token: object  # the session's _deepening_wanted while it is wanted
    labeling: object  # the activeprop.propagation.GraphLabeling it deepens
    done: threading.Event = field(default_factory=threading.Event)
    result: object = None  # its Deepened, unless it was given up


class LabelingSession:
    """One open project: pool, model (graph built once), labels from the store."""

    def __init__(self, directory: str | Path, plugins=(), client=None):
        """Open the project in ``directory``. ``plugins``: the ``module:name`` strategies and
        models the user trusts; a project naming any other is refused before any import.
        ``client`` (a ``distributed.Client``): the graph is built, every refit solved and
        every queue scored on its Dask cluster; this process holds two numbers per item."""
        self.store = ProjectStore(directory)
        self.client = client
        # shown one by one from the store; on a cluster, the workers read the features
        self.pool = self.store.load_pool(images=False, lazy=client is not None)
        # a table's missing cells filled, one in different units standardised: as at creation
        self.pool = replace(self.pool, X=worked_on(self.pool.X,
                                                   bool(self.store.meta("standardised"))))
        self.class_names = self.store.class_names
        self.settings = self.store.meta("settings")
        require_trusted((self.settings["model"], self.settings["strategy"]), plugins)
        # The pool's graph, shared by the main and the spare model: kept on disk, or on
        # the cluster's workers while the session lasts.
        self.graphs = {} if client is not None else StoredGraphs(self.store, self.pool.X)
        self.model = self._session_model(self.settings)
        self.utility = get_strategy(self.settings["strategy"])
        self.scores = PoolScores(self.utility)  # rescores only the items whose predictions moved
        self.lock = threading.RLock()
        # What a person should not wait for: cross-validating the curve (five refits,
        # seconds on a large pool: a label is answered once the model itself is refit),
        # writing the store's predictions cache, the pool's density and slow imports.
        self.background = BackgroundWork(QUIET_SECONDS)
        self._validation_wanted = 0  # the model version whose curve point is wanted
        self._deepening_wanted = None  # the token of the deeper solve wanted (_deepen)
        self._deepening: DeeperSolve | None = None  # the last one that started
        self._uncached = None  # (version, predictions, confidence) the store has not cached
        if self.settings.get("batch_mode") == "diverse":
            # Diverse batches cluster with scikit-learn, 2-3 s to import: not on the first
            # request of a session, but while the page loads.
            self.background.submit(importlib.import_module, "sklearn.cluster")
        self.rng = np.random.default_rng(0)
        self.cache: dict = {}  # pool-level quantities strategies compute once
        self._density_job = None  # the pool's density, computed in the background
        self._graph_job = None  # the graph, loaded in the background before the first label
        # The label log is the truth; this process's view of it is brought up to date
        # (other processes may label the same project) before every answer.
        self.human = HumanLabels(self.store, len(self.pool))
        self.labels = self.human.array
        self.model_version = self.store.latest_model_version()
        self._fitted_seen = -1  # the newest label event the model was fit with
        self._cold_order = None  # computed when first needed: most openings never need it
        self._take_fit(fitted=False)
        self.changed_last = None
        self.estimated_accuracy = None  # the model's mean confidence: needs no ground truth
        self._refit(record=False)
        self._graph_job = self._load_graph_meanwhile()

    def _load_graph_meanwhile(self):
        """A session opened before any label has no graph yet; the first label's refit
        would load it (and build its operators: 4.6 of the 7.8 s the first label waited
        at 1,000,000 items). Load it in the background while the person looks at the first
        item, on the worker the density (which reads the graph too) waits on after the
        first refit. Returns the job, or None when there is nothing to load."""
        has_graph = hasattr(self.model, "build_graph")  # a classifier model has none
        if self.client is not None or not has_graph or self.model.graph is not None:
            return None
        return self.background.submit_awaited(self.model.build_graph)

    def _graph_loaded(self) -> None:
        """Wait for the graph the session began loading at opening, if it did."""
        if self._graph_job is not None:
            self._graph_job.result()
            self._graph_job = None

    def _sync(self) -> None:
        """Take in the labels other processes appended, and refit on them if any (their
        rounds are theirs: nothing is recorded)."""
        self.class_names = self.store.class_names  # another process may have added one
        self.human.sync()
        if self.human.seen != self._fitted_seen:
            self._refit(record=False)
        self.model_version = max(self.model_version, self.store.latest_model_version())

    def _cold_start_order(self) -> np.ndarray:
        """:func:`cold_start_order`, as ``init`` kept it (else computed now)."""
        kept = self.store.meta("cold_start_order")
        if is_permutation(kept, len(self.pool)):
            return np.asarray(kept, dtype=np.int64)
        self._graph_loaded()
        return cold_start_order(self.model, self.pool.X, len(self.class_names))

    # ------------------------------------------------------------------ state

    @property
    def n_labeled(self) -> int:
        """Items with a human label."""
        return self.human.n_labeled

    def predictions(self) -> tuple[np.ndarray, np.ndarray]:
        """Predicted class index and confidence of every item (-1, 0 before any label);
        computed once per refit."""
        return self._predictions

    def state(self) -> dict:
        """Progress and model facts for a status line or the page header."""
        with self.lock:
            self._sync()
            return self._state()

    def _state(self) -> dict:
        return {"pool_size": len(self.pool), "n_labeled": self.n_labeled,
                "model_version": self.model_version, "class_names": self.class_names,
                "dataset": self.store.meta("dataset"), "changed_last": self.changed_last,
                "estimated_accuracy": self.estimated_accuracy,
                "classes_labeled": labeled_classes(self.labels),
                "settings": self.settings, "curve": self.learning_curve(),
                # the edges the last fit used: a project's local_from switches them
                "edge_weights": getattr(self.model, "weights", None),
                "has_ground_truth": bool(np.any(self.pool.y != UNLABELED)),
                "has_images": self.store.meta("image_shape") is not None or
                self.store.meta("image_format") == "png",
                # photos are drawn smooth; small arrays (digits) pixel by pixel
                "pixel_art": self.store.meta("image_format") in ("array", None)}

    def learning_curve(self) -> list[dict]:
        """Accuracy against labels, one point per label count: the newest measurement at
        each count, and none beyond the labels in effect now (an undo takes its points
        back, so the curve never runs past the header's count or doubles back)."""
        newest = {r["n_labeled"]: {k: r[k] for k in ("n_labeled", "accuracy", "source")}
                  for r in self.store.rounds() if r.get("accuracy") is not None}
        return [newest[n] for n in sorted(newest) if n <= self.n_labeled]

    def item(self, item_id: int) -> dict:
        """Everything about one item: prediction, confidence, human label, history."""
        self._check_item(item_id)
        with self.lock:
            self._sync()
        predicted, confidence = self.predictions()
        human = int(self.labels[item_id])
        return {"id": item_id, **self.source(item_id),
                "prediction": self._name(predicted[item_id]),
                "confidence": float(confidence[item_id]),
                "label": self._name(human) if human != UNLABELED else None,
                "source": "human" if human != UNLABELED else "propagated",
                "events": [_event_json(e, self.class_names) for e in self.store.events(item_id)]}

    def human_labels(self) -> list[dict]:
        """The current human label of every labeled item, by item id."""
        with self.lock:
            self._sync()
        labeled = np.flatnonzero(self.labels != UNLABELED)
        return [{"item_id": int(i), "label": self._name(self.labels[i])} for i in labeled]

    def picture_png(self, item_id: int) -> bytes | None:
        """The picture of one item as PNG (None when the project has no pictures)."""
        self._check_item(item_id)
        picture = self.store.image(item_id)
        return None if picture is None else to_png(picture, self.store.meta("image_style"))

    def picture_grey(self, item_id: int) -> np.ndarray | None:
        """The picture of one item as grey levels in [0, 1] (None without pictures)."""
        self._check_item(item_id)
        picture = self.store.image(item_id)
        return None if picture is None else to_grey(picture, self.store.meta("image_style"))

    def source(self, item_id: int) -> dict:
        """Where an item comes from and what a person reads of it: its file path, its text
        and, in a table, its values under the columns' names (``fields``: a list of
        ``{"name", "value"}``, in the columns' order; a missing cell's value is None);
        None where it has none."""
        self._check_item(item_id)
        path, text = self.store.item_source(item_id)
        names = self.pool.feature_names
        fields = None if names is None else [  # the table's own values, as stored
            {"name": name, "value": None if np.isnan(value) else float(value)}
            for name, value in zip(names, self.store.item_features(item_id))]
        return {"path": path, "text": text, "fields": fields}

    def items(self, label: str | None = None, min_confidence: float = 0.0,
              max_confidence: float = 1.0, offset: int = 0, limit: int = 500) -> dict:
        """The pool overview: items filtered by (final) class and confidence."""
        with self.lock:
            self._sync()
        predicted, confidence = self.predictions()
        final = np.where(self.labels != UNLABELED, self.labels, predicted)
        human = self.labels != UNLABELED
        shown_confidence = np.where(human, 1.0, confidence)
        keep = (shown_confidence >= min_confidence) & (shown_confidence <= max_confidence)
        if label is not None:
            keep &= final == self.class_index(label)
        ids = np.flatnonzero(keep)
        page = ids[offset: offset + limit]
        return {"total": int(len(ids)), "items": [
            {"id": int(i), "label": self._name(final[i]),
             "confidence": float(shown_confidence[i]),
             "source": "human" if human[i] else "propagated"} for i in page]}

    # ------------------------------------------------------------------ the loop

    def queue(self, n: int, client: str = "default", skip=()) -> list[QueueItem]:
        """The ``n`` unlabeled items most worth a label, leased to ``client``.

        Items leased to another client are left out, so two people get different items;
        ``skip`` leaves out items this client passed over.
        """
        with self.lock:
            self._sync()
            unavailable = self.labels != UNLABELED
            skipped = [i for i in skip if 0 <= i < len(self.pool)]
            unavailable[skipped] = True
            cold = not self.guesses
            # Cold, the order is already spread out (typical items first): take it as is.
            mode = "topk" if cold else self.settings.get("batch_mode", "topk")
            on_blocks = self.client is not None and not cold  # scored where the blocks are
            utility = None
            if cold:
                # Before two classes are known there is no uncertainty to rank by: walk a
                # fixed shuffle of the pool.
                if self._cold_order is None:
                    self._cold_order = self._cold_start_order()
                utility = -np.argsort(self._cold_order).astype(np.float64)
            elif not on_blocks:
                if self._density_job is not None:
                    self._density_job.result()  # at once unless a label came very fast
                utility = self.scores(self.proba, self._query_context(),
                                      self.proba_version)

            def choose(taken: set[int]) -> list[int]:  # inside the store's write lock
                # Labels appended since the scores were computed are left out too (the
                # model takes them in on the next call).
                self.human.sync()
                blocked = unavailable | (self.labels != UNLABELED)
                blocked[list(taken)] = True
                if on_blocks:
                    return self.model.select_batch(mode, self.utility, blocked, n).tolist()
                best = None if cold else self.scores.best  # cold: a fixed order, not scores
                return select_batch(mode, utility, blocked, n, self.pool.X, best=best).tolist()

            picked = self.store.lease_batch(client, LEASE_SECONDS, choose)
            self.store.record_queried(self.model_version, picked)
            predicted, confidence = self.predictions()
            return [QueueItem(i, self._name(predicted[i]) if predicted[i] >= 0 else None,
                              float(confidence[i]), **self.source(i)) for i in picked]

    def add_label(self, item_id: int, label, annotator: str = "default") -> dict:
        """Record a human label (committed first), then refit.

        A label for an item that someone else already labeled is kept as a second opinion
        (both stay in the log; the newest is the item's label).
        """
        with self.lock:
            self._check_item(item_id)
            index = self.class_index(label)
            previous = [e for e in self.store.events(item_id) if e.kind == "label"]
            event = self.store.add_label(item_id, index, annotator)
            self.store.release(item_id)
            self.human.sync()  # this label, and any another process appended meanwhile
            self._refit()
            return {"event_id": event.id, "item_id": item_id, "label": self._name(index),
                    "second_opinion": any(e.annotator != annotator for e in previous),
                    "model_version": self.model_version}

    def add_class(self, name: str) -> dict:
        """Add a class (a project may start with none and grow its classes as the person
        meets them); labels keep their classes' numbers. Returns the state."""
        name = name.strip() if isinstance(name, str) else ""
        with self.lock:
            self._sync()
            if not name or len(name) > 100:
                raise UserError("a class name is 1 to 100 characters")
            if name in self.class_names:
                raise Conflict(f"{name!r} is already a class of this project")
            if self.settings.get("class_priors") is not None:
                raise UserError("this project declares the classes' sizes: withdraw them "
                                "before adding a class")
            self.class_names = [*self.class_names, name]
            self.store.set_meta("class_names", self.class_names)
            self._fit_here(self.model)  # room for it in the next cold solve
            return self._state()

    def set_class_priors(self, spec: str | None) -> dict:
        """Declare the share of each class (``"uniform"`` or one share per class, as
        ``activeprop init --class-priors``), or withdraw it with None; refits on the same
        graph. Checked before anything is stored; labels are untouched. Returns the state."""
        with self.lock:
            settings = {**self.settings, "class_priors": spec or None}
            # raises on a bad spec (or any, on a cluster)
            model = self._session_model(settings)
            self.store.set_meta("settings", settings)
            self.settings, self.model = settings, model
            self._refit(record=False)
            return self.state()

    def undo(self, annotator: str = "default") -> dict | None:
        """Undo ``annotator``'s latest label (a new event); None when there is nothing."""
        with self.lock:
            event = self.store.undo_last(annotator)
            if event is None:
                return None
            self.human.sync()
            self._refit()
            current = self.labels[event.item_id]
            return {"event_id": event.id, "item_id": event.item_id,
                    "label": self._name(current) if current != UNLABELED else None,
                    "model_version": self.model_version}

    # ------------------------------------------------------------------ model

    def _session_model(self, settings: dict):
        """The project's model, as this session fits it: a graph model's local updates stop
        at the tolerance, and the deeper solve that the next refit would then start with
        runs while the person looks (:meth:`_deepen_meanwhile`); its arrays have room for
        the project's classes (a label of a new class widens them in place)."""
        return self._fit_here(project_model(settings, self.pool, self.graphs, self.client))

    def _fit_here(self, model):
        """``model`` set to fit as this session does (:meth:`_session_model`), when it is a
        graph model fit in this process; returns it."""
        if self.client is None and hasattr(model, "labeling"):
            model.labeling.leaves_room = False
            model.labeling.class_room = len(self.class_names)
        return model

    def _refit(self, record: bool = True) -> None:
        self._take_deeper_solve()
        self._deepening_wanted = None  # a deeper solve of the last fit's is of no use now
        if record:  # a curve's point being cross-validated is for labels this refit
            # replaces: it gives up at its next step rather than share the cores with it
            self._validation_wanted = None
        before = self.predictions()[0] if self.guesses else None
        self._fitted_seen = self.human.seen
        if self.n_labeled == 0:
            self._take_fit(fitted=False)
            self.estimated_accuracy = None
            return
        self._graph_loaded()  # the model must not build it a second time meanwhile
        self.model.fit(self.labels)
        self._take_fit(fitted=True)
        self._deepen_meanwhile()
        self._prepare_density()
        self.estimated_accuracy = mean_confidence(self.labels, self.predictions()[1]) \
            if self.guesses else None  # one class known: no estimate
        if not record:  # not a change of labels (opening, a new prior): nothing "moved"
            return
        if before is not None:
            # How much the last label moved the pool: near zero means labels stopped paying.
            self.changed_last = float(np.mean(before != self.predictions()[0]))
        # Without guesses an accuracy would read 0% against ground truth, 100%
        # cross-validated (on labels of one class): none is measured.
        point = self._ground_truth_point() if self.guesses else None
        predicted, confidence = self.predictions()
        metrics = point or {"accuracy": None, "source": None}
        self.model_version = self.store.record_round(
            self.n_labeled, [], {k: metrics[k] for k in ("accuracy", "source")})
        self._uncached = (self.model_version, predicted, confidence)  # the newest only
        validation = None
        if self.guesses and point is None and self.n_labeled >= 2 * CROSS_VALIDATION_FOLDS:
            self._validation_wanted = self.model_version
            validation = (self.labels.copy(), self.model_version)
        # once QUIET_SECONDS pass without another label (a newer label restarts the wait)
        self.background.when_quiet(self._when_quiet, validation)

    def _deepen_meanwhile(self) -> None:
        """When the model's next refit would start with a deeper solve, run it now in the
        background (:meth:`activeprop.propagation.GraphLabeling.deepened`), so that the
        refit after the next label updates locally; that refit waits for it if it is still
        under way (:meth:`_take_deeper_solve`)."""
        labeling = getattr(self.model, "labeling", None)
        if self.client is not None or labeling is None or not labeling.can_deepen():
            return
        self._deepening_wanted = wanted = object()
        self.background.submit(self._deepen, wanted)

    def _deepen(self, wanted: object) -> None:
        """The background job of :meth:`_deepen_meanwhile` (``wanted``: its token), taken
        up by the next refit (:meth:`_take_deeper_solve`); given up if a refit started
        before it."""
        def stale() -> bool:
            return wanted is not self._deepening_wanted

        with self.lock:
            if stale():
                return
            labeling, graph, labels = self.model.labeling, self.model.graph, self.labels.copy()
            source, spare = labeling.warm_.shallow_copy(), labeling.take_spare_warm()
            job = self._deepening = DeeperSolve(wanted, labeling)
        try:
            # Copied while the person may ask for the queue (the refit that may start
            # meanwhile waits for this job before it changes any array).
            warm = source.copy(into=spare)
            with abandoned_when(stale):  # at the solve's and the fill's next step
                job.result = labeling.deepened(graph, labels, warm)
        except Abandoned:
            pass
        finally:
            job.done.set()

    def _take_deeper_solve(self) -> None:
        """Before a refit (under the lock): have the model take up the deeper solve of the
        last fit, waiting for it if it is still under way. It is what the refit would
        otherwise do itself, from the start, before its local update: at 1,000,000 items
        and a label every 0.5 s about one deeper solve in four (0.2-0.5 s) was still
        running when the next label came, and given up, that label then solved globally
        (0.3-0.7 s; docs/benchmarks.md, twenty-ninth session). One that has not started
        yet is given up."""
        job, self._deepening = self._deepening, None
        if job is not None and job.token is self._deepening_wanted:
            job.done.wait()
            if job.result is not None:
                job.labeling.adopt(job.result)

    def _when_quiet(self, validation: tuple | None) -> None:
        """What waits until labels stop coming for a moment (:data:`QUIET_SECONDS`): the
        store's predictions cache of the newest refit, then the curve's point when
        ``validation`` (labels, model version) asks for one. Written after every label,
        the cache held the session's lock while the next label waited for it: at 1,000,000
        items and a label every 0.5 s, 113-184 ms for 5 labels in 60 (16 MB into the
        database; an AMD EPYC, docs/benchmarks.md, thirty-second session)."""
        self._write_cached_predictions()
        if validation is not None:
            self._cross_validate(*validation)

    def _write_cached_predictions(self) -> None:
        with self.lock:  # the store's connection is the session's, one transaction at a time
            if self._uncached is not None:
                self.store.cache_predictions(*self._uncached)
                self._uncached = None

    def _prepare_density(self) -> None:
        """Once the model has its graph, compute the pool's density in the background if the
        strategy will read it (2-3 s at 70,000 x 784 items): the first queue that needs it
        then finds it ready instead of making the person wait."""
        if self._density_job is None and reads_density(
                self.settings["strategy"], self.n_labeled, self.n_known_classes):
            self._density_job = self.background.submit_awaited(density, self._query_context())

    def _query_context(self) -> QueryContext:
        """What the strategy may look at now (the cache is the session's, kept across
        queries)."""
        return QueryContext(labeled=self.labels != UNLABELED, rng=self.rng, X=self.pool.X,
                            cache=self.cache, labels=self.labels, model=self.model)

    def wait_for_estimates(self) -> None:
        """Block until the background work (cross-validating the curve, caching the
        predictions in the store) has caught up with the labels, without waiting for the
        quiet moment the curve's point waits for."""
        self.background.catch_up()

    @property
    def guesses(self) -> bool:
        """Whether the model guesses classes: once two classes have labels. With one, every
        item would be "that class, 100%", no evidence at all."""
        return self.n_known_classes >= 2

    def _take_fit(self, fitted: bool) -> None:
        """Take the model's fit (or its absence): how many classes it knows, and every
        item's prediction and confidence, derived once. This process holds the
        probabilities only when it scores queries itself (not on a cluster)."""
        n = len(self.pool)
        self.n_known_classes = len(self.model.classes_) if fitted else 0
        self.proba = self.model.proba_ if fitted and self.client is None else None
        # which of its rows moved since an earlier fit: the queue's scores are kept
        self.proba_version = getattr(self.model, "proba_version_", None) if fitted else None
        if not self.guesses:
            self._predictions = (np.full(n, -1), np.zeros(n))
        else:
            self._predictions = self.model.confidences()

    def _ground_truth_point(self) -> dict | None:
        """The curve's point: accuracy on the unlabeled items whose true class the pool
        holds (at least 10), else None (then it is cross-validated in the background)."""
        predicted, _ = self.predictions()
        truth = self.pool.y
        judged = (truth != UNLABELED) & (self.labels == UNLABELED)
        n_judged = np.count_nonzero(judged)
        if n_judged < 10:
            return None
        # counted in place, not over copies of the judged items (8 against 2 ms at
        # 1,000,000 items; the same number: a count over a count)
        accuracy = float(np.count_nonzero((predicted == truth) & judged) / n_judged)
        return {"n_labeled": self.n_labeled, "accuracy": accuracy, "source": "ground truth"}

    def _cross_validate(self, labels: np.ndarray, version: int) -> None:
        """The curve's point for model ``version`` cross-validated on the human ``labels``
        (5 folds, each refit without its fold on a spare model); skipped, or given up
        at the next step of a fold's refit (:mod:`activeprop.abandon`), once a newer label
        is being refit (at 1,000,000 items a fold's refit takes seconds, and the refits
        after each label shared the cores with all five)."""
        def stale() -> bool:
            return version != self._validation_wanted

        if stale():
            return
        try:
            with abandoned_when(stale):  # before each fold's refit, and between its steps
                items, proba = held_out_proba(self._spare_model(), labels,
                                              len(self.class_names), CROSS_VALIDATION_FOLDS)
        except Abandoned:
            return
        point = {"n_labeled": int(np.sum(labels != UNLABELED)), "source": "cross-validation",
                 "accuracy": float(np.mean(np.argmax(proba, axis=1) == labels[items]))}
        with self.lock:
            self.store.set_round_metrics(version, {k: point[k] for k in ("accuracy", "source")})

    def _spare_model(self):
        """A second model on the same graph, for refits that must not disturb the main one."""
        return project_model(self.settings, self.pool, self.graphs, self.client)

    def review(self, threshold: float = 0.5) -> list[dict]:
        """Human labels that are likely slips (:func:`activeprop.review.suspicious_labels`:
        their chance of being a slip is at least ``threshold``), most likely first, with
        who gave them."""
        if not 0 < threshold <= 1:
            raise UserError(f"threshold must be in (0, 1], got {threshold}")
        with self.lock:
            self._sync()
            if self.n_labeled < 2 or not self.guesses:
                return []
            flagged = suspicious_labels(self._spare_model(), self.labels, len(self.class_names),
                                        threshold)
            latest = {e.item_id: e.annotator for e in self.store.events() if e.kind == "label"}
            return [{"item_id": f["item"], "label": self.class_names[f["label"]],
                     "suggested": self.class_names[f["suggested"]], "support": f["support"],
                     "slip": f["slip"], "annotator": latest.get(f["item"])} for f in flagged]

    # ------------------------------------------------------------------ export

    def export_rows(self, min_confidence: float = 0.0) -> list[dict]:
        """Every item with its final label, source, confidence and human label events;
        propagated labels below ``min_confidence`` are blanked (:mod:`activeprop.export`)."""
        with self.lock:
            self._sync()
            predicted, confidence = self.predictions()
            events: dict[int, list] = {}
            for event in self.store.events():
                events.setdefault(event.item_id, []).append(_event_json(event, self.class_names))
            return export_rows(self.labels, predicted, confidence, self.class_names, events,
                               min_confidence, self.store.paths())

    def export(self, fmt: str, min_confidence: float = 0.0) -> bytes:
        """The labeled pool as CSV, JSON lines or an .npz archive, one row per item."""
        encode([], fmt)  # an unknown format is refused before any work
        return encode(self.export_rows(min_confidence), fmt)

    # ------------------------------------------------------------------ helpers

    def class_index(self, label) -> int:
        """A class given by name (or by index as an int); ValueError when not a class."""
        if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
            if 0 <= label < len(self.class_names):
                return int(label)
        elif isinstance(label, str) and label in self.class_names:
            return self.class_names.index(label)
        raise UserError(f"{label!r} is not a class of this project; allowed: "
                        f"{', '.join(self.class_names)}")

    def _check_item(self, item_id: int) -> None:
        if not (isinstance(item_id, (int, np.integer)) and 0 <= item_id < len(self.pool)):
            raise UnknownItem(f"no item {item_id}; items are numbered 0 to {len(self.pool) - 1}")

    def _name(self, index) -> str | None:
        return self.class_names[int(index)] if index >= 0 else None

    def close(self) -> None:
        """Finish the background work in progress (drop what has not started), then close
        the store."""
        self.background.close()
        self._write_cached_predictions()  # if its turn was dropped
        self.store.close()


def key_map(class_names: list[str]) -> dict[str, str]:
    """Which key labels which class (the terminal's and the notebook's): the names
    themselves when they are single characters (digits: 0-9), else 1-9 then 0 for the
    first ten classes. ``s``, ``u`` and ``q`` are never class keys (skip, undo, quit)."""
    if all(len(name) == 1 and name not in "squ" for name in class_names):
        return {name: name for name in class_names}
    return {str((i + 1) % 10): name for i, name in enumerate(class_names[:10])}


def _event_json(event: LabelEvent, class_names: list[str]) -> dict:
    return {"event_id": event.id, "kind": event.kind,
            "label": None if event.label is None else class_names[event.label],
            "undoes": event.undoes, "annotator": event.annotator, "time": event.created}
