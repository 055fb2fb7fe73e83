"""A labeling project: created from a dataset, and the model its settings describe.

:func:`init_project` reads the data, checks the settings, builds the graph and the order of
the first items once, and writes them with the pool to a new project store.
:func:`project_model` makes the model a project's settings describe, and
:class:`StoredGraphs` keeps its graph beside the database, so that every later opening
(a labeling session, an export) reads it back instead of searching the neighbours again.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .column_weights import recommended as recommended_column_weights
from .datasets import load_pool
from .errors import UserError
from .experiments import (RECOMMENDED, check_column_weights, check_local_from,
                          recommended_local_from, recommended_neighbors)
from .features import principal_components
from .missing_cells import count_missing
from .models import make_model
from .priors import check_model, parse_class_priors
from .scaling import check_scale, standardises, worked_on
from .shards import is_sharded
from .store import ProjectStore
from .strategies import get_strategy, initial_items

# The labeler's defaults are the project's recommended settings (experiments.RECOMMENDED);
# alpha and gamma only matter when a project chooses spreading or an rbf graph. Unset
# neighbours, local_from and column_weights ("auto") are chosen for the pool when the project
# is made.
DEFAULT_SETTINGS = {**{k: v for k, v in RECOMMENDED.items() if k != "initial_strategy"},
                    "alpha": 0.9, "gamma": 0.25, "class_priors": None,
                    "graph_weights": "connectivity"}
# Poisson learning needs ~80 cg iterations per refit at 70,000 items (about 1 s): too slow
# for a refit after every label. Larger pools default to spreading (alpha 0.9), ~0.1 s.
POISSON_MAX_ITEMS = 20_000


def init_project(directory: str | Path, dataset: str, *, label_column: str | None = None,
                 image_size: int = 16, text_column: str | None = None,
                 text_model: str | None = None,
                 features: str | None = None, image_features: str | None = None,
                 image_model: str | None = None, classes: list[str] | None = None,
                 client=None, **settings) -> ProjectStore:
    """Create a labeling project from any dataset spec (a folder of images, a table, a file
    of texts; see :func:`activeprop.datasets.load_pool` for the data options) and
    ``settings`` (see :func:`create_project`).

    ``client`` (a ``distributed.Client``): build the graph and the first items' order on
    its cluster. A sharded pool (:mod:`activeprop.shards`) is then read by the workers and
    its features stay where they are: the project records where, instead of a copy.
    """
    project_settings(settings, client)  # raises before the data is read and the graph built
    ProjectStore.check_free(directory)
    pool = load_pool(dataset, label_column=label_column, image_size=image_size,
                     text_column=text_column, text_model=text_model, features=features,
                     image_features=image_features, image_model=image_model,
                     classes=classes, lazy=client is not None)
    return create_project(directory, pool, client=client, **settings)


def project_settings(settings: dict, client=None) -> dict:
    """``settings`` over :data:`DEFAULT_SETTINGS` (on a cluster, its default strategy);
    raises on an unknown setting or strategy."""
    unknown = set(settings) - set(DEFAULT_SETTINGS)
    if unknown:
        raise UserError(f"unknown settings {sorted(unknown)}; allowed: {sorted(DEFAULT_SETTINGS)}")
    merged = {**DEFAULT_SETTINGS, **{k: v for k, v in settings.items() if v is not None}}
    if client is not None and settings.get("strategy") is None:
        from .distributed.project import CLUSTER_STRATEGY

        merged["strategy"] = CLUSTER_STRATEGY
    get_strategy(merged["strategy"])
    check_local_from(merged["local_from"])
    check_column_weights(merged["column_weights"])
    check_scale(merged["scale"])
    return merged


def create_project(directory: str | Path, pool, *, client=None, **settings) -> ProjectStore:
    """Create a labeling project holding ``pool`` (a :class:`activeprop.datasets.Pool`).

    ``settings`` override :data:`DEFAULT_SETTINGS` (model, kernel, strategy, ...); without
    a model, pools above :data:`POISSON_MAX_ITEMS` items get label spreading. ``client``:
    as :func:`init_project`'s.
    """
    merged = project_settings(settings, client)
    ProjectStore.check_free(directory)
    if settings.get("model") is None and len(pool) > POISSON_MAX_ITEMS:
        merged["model"] = "spreading"
    if settings.get("n_neighbors") is None:
        # The recommended neighbours for these features; a small pool gets as many as it
        # can give.
        merged["n_neighbors"] = recommended_neighbors(pool.X.shape, merged["components"])
        if len(pool) > 1:
            merged["n_neighbors"] = min(merged["n_neighbors"], len(pool) - 1)
    if merged["column_weights"] == "auto":  # stored: every process weighs alike
        merged["column_weights"] = recommended_column_weights(
            pool.is_table, len(pool), pool.X.shape[1], client is not None)
    if merged["local_from"] is None:  # stored: every process on the project weighs alike
        merged["local_from"] = recommended_local_from(pool, merged["model"],
                                                      merged["graph_weights"], client is not None)
    if client is not None:
        from .distributed.project import check_project_settings

        check_project_settings(merged, pool.X.shape)  # before the cluster builds anything
    # A table with missing cells is worked on filled in (activeprop.missing_cells), one in
    # different units standardised (activeprop.scaling): the project keeps its own values
    # (the person reads them) and does both again when it is opened. Otherwise it keeps
    # the features it works on: opening it never redoes the reduction.
    standardising = standardises(pool.X, merged["scale"], pool.is_table)
    missing = count_missing(pool.X)
    work = worked_on(pool.X, standardising)
    merged["scale"] = "standard" if standardising else "none"  # what it does
    reduced = principal_components(work, merged["components"])
    worked_on_opening = reduced is work and work is not pool.X
    # A sharded pool's items stay in its shards when their features are used as stored:
    # the project records where (a pool too large to copy is not copied).
    in_shards = _is_lazy(pool.X) or (is_sharded(pool.name) and reduced is pool.X)
    stored = pool if reduced is work else pool.with_features(reduced)
    # what the model works on (a table standardised keeps its columns' names)
    pool = dataclasses.replace(pool, X=reduced) if worked_on_opening else stored
    graphs: dict = {}
    model = project_model(merged, pool, graphs, client)  # checks the settings first
    # A pool that names no class (a folder of loose files, texts without labels) starts
    # with none: the person adds them on the page as they meet them.
    # Search the neighbours and order the first items now, once, and keep both in the
    # project: whoever opens the page later does not wait (~20 s at 70,000 x 784).
    first_items = cold_start_order(model, pool.X, len(pool.class_names))
    store = ProjectStore.create(directory, stored, merged,
                                features_at=pool.name if in_shards else None)
    store.set_meta("standardised", worked_on_opening and standardising)
    store.set_meta("missing_cells", missing)
    for recipe, graph in graphs.items():
        if client is None:  # a cluster's graph stays on its workers
            store.save_graph(recipe, graph)
        store.set_meta("graph", graph.describe())
    store.set_meta("cold_start_order", first_items.tolist())
    if pool.images is not None:
        # Digits are ink on paper: higher values are darker.
        store.set_meta("image_style", {"max": float(pool.images.max()) or 1.0,
                                       "invert": pool.name.startswith("digits")})
    return store


def cold_start_order(model, X: np.ndarray, n_classes: int) -> np.ndarray:
    """The order to offer items in before two classes are labeled: typical items first
    (centres of k-means clusters of the graph's spectral embedding, one per class and as
    many again), then a fixed shuffle of the rest."""
    shuffled = np.random.default_rng(0).permutation(len(X))
    k = min(2 * max(n_classes, 1), len(X) - 2)
    if k < 2 or not hasattr(model, "build_graph"):
        return shuffled
    if hasattr(model, "typical_items"):  # on a cluster: of the features, on the workers
        typical = model.typical_items(k)
    else:
        graph = model.graph if model.graph is not None else model.build_graph()
        typical = initial_items("typical", X, k, 0, embedding=graph.spectral_embedding())
    return np.concatenate([typical, shuffled[~np.isin(shuffled, typical)]])


def project_model(settings: dict, pool, graph_cache: dict | None = None, client=None):
    """The project's model (graph shared through ``graph_cache``); raises on bad settings.
    With ``client``, the model solves on that Dask cluster (:mod:`.distributed.project`)."""
    if client is not None:
        from .distributed.project import project_cluster_model

        return project_cluster_model(settings, pool.X, client, graph_cache)
    check_model(settings["model"], settings.get("class_priors"))
    priors = parse_class_priors(settings.get("class_priors"), len(pool.class_names))
    # Projects made before edge weights were settings have none: plain edges throughout.
    return make_model(settings["model"], pool.X, kernel=settings["kernel"],
                      gamma=settings["gamma"], n_neighbors=settings["n_neighbors"],
                      alpha=settings["alpha"], max_iter=settings["max_iter"],
                      solver=settings["solver"], rtol=settings["rtol"],
                      graph_options={"backend": "auto", "weights": settings.get(
                          "graph_weights", "connectivity"),
                          "local_from": settings.get("local_from") or None,
                          "column_weights": settings.get("column_weights", "none")},
                      graph_cache=graph_cache,
                      class_priors=priors)


def _is_lazy(X) -> bool:
    """Whether features are a dask array (a sharded pool read by a cluster's workers)."""
    return hasattr(X, "to_delayed")


class StoredGraphs(dict):
    """A project's graphs by recipe (the models' ``graph_cache``), kept beside its database:
    a graph is read back instead of built when the project is opened again."""

    def __init__(self, store: ProjectStore, X: np.ndarray):
        super().__init__()
        self.store, self.X = store, X
        self._kept: dict = {}  # by recipe: the names of the derived arrays its file holds

    def __contains__(self, recipe) -> bool:
        if not super().__contains__(recipe):
            graph = self.store.load_graph(recipe, self.X)
            if graph is not None:
                super().__setitem__(recipe, graph)
                self._kept[recipe] = set(graph.derived_arrays())
        return super().__contains__(recipe)

    def __setitem__(self, recipe, graph) -> None:
        # Models re-register the graph they were handed, with what they derived from it: it
        # is saved when it is new, or when its file lacks some of that (a project made
        # before the files kept it, or whose file's were damaged).
        derived = set(graph.derived_arrays())
        if self.get(recipe) is not graph or not derived <= self._kept.get(recipe, set()):
            self.store.save_graph(recipe, graph)
            self._kept[recipe] = derived
        super().__setitem__(recipe, graph)
