"""Query strategies: pure functions from predicted probabilities to utilities.

A *utility* function maps the pool's predicted class probabilities (n_items, n_classes)
to one score per item, higher meaning "more worth a human label". Choosing the batch
from those scores is a separate step (:func:`select_top`), which never returns an item
that is already labeled and breaks ties deterministically (lower pool index first).

Utilities take ``proba`` and a ``context`` (:class:`QueryContext`) so that strategies
needing more than the probabilities (a random generator, the graph) share one signature.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .entr import entr
from .errors import UserError
from .plugins import load_strategy
from .ranking import KeptRanking, best_positions
from .row_steps import row_steps


@dataclass
class QueryContext:
    """What a strategy may look at besides the probabilities.

    ``X`` are the pool's features; ``cache`` is kept by the learner across rounds so that
    pool-level quantities (like density) are computed once.
    """

    labeled: np.ndarray  # bool mask over the pool
    rng: np.random.Generator
    X: np.ndarray | None = None
    cache: dict = field(default_factory=dict)
    labels: np.ndarray | None = None  # class index per item, -1 unlabeled
    model: object = None  # the fitted model (graph-aware strategies use its graph)


Utility = Callable[[np.ndarray, QueryContext], np.ndarray]
# (excluded mask, n) -> the n best rows not excluded, best first (select_top's answer)
Ranked = Callable[[np.ndarray, int], np.ndarray]


def random(proba: np.ndarray, context: QueryContext) -> np.ndarray:
    """Uniform random scores: the passive baseline."""
    return context.rng.random(len(proba))


def least_confident(proba: np.ndarray, context: QueryContext) -> np.ndarray:
    """One minus the probability of the most likely class (LC)."""
    return 1.0 - proba.max(axis=1)


def margin(proba: np.ndarray, context: QueryContext) -> np.ndarray:
    """Minus the gap between the two most likely classes ("breaking ties", BT)."""
    if proba.shape[1] < 2:
        return np.zeros(len(proba))
    if "numba" in sys.modules:  # a large pool's solves loaded it: one compiled pass
        from .top_two import top_two_gaps

        return top_two_gaps(proba)
    top_two = np.partition(proba, -2, axis=1)[:, -2:]
    return -(top_two[:, 1] - top_two[:, 0])


def entropy(proba: np.ndarray, context: QueryContext) -> np.ndarray:
    """Shannon entropy of each item's predicted distribution (the digits example's).

    scipy.stats.entropy's operations in its order (so its bits, which the example's
    tie-breaking depends on; a test checks it) without importing scipy.stats, which costs
    a command most of a second."""
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = proba / proba.sum(axis=1, keepdims=True)
    return entr(normalised).sum(axis=1)


def density(context: QueryContext, n_neighbors: int = 10) -> np.ndarray:
    """How typical each item is: its mean rbf similarity to its nearest neighbours, the
    width set by the median neighbour distance. In (0, 1]; computed once per pool."""
    if "density" not in context.cache:
        squared = _neighbour_squared_distances(context, n_neighbors)
        scale = max(float(np.median(squared)), 1e-12)
        context.cache["density"] = np.exp(-squared / scale).mean(axis=1)
    return context.cache["density"]


def _neighbour_squared_distances(context: QueryContext, k: int) -> np.ndarray:
    """(n_items, k) squared distances from each item to its k nearest other items.

    Read off the model's kNN graph when every row holds more than k items (the k nearest
    are among them): at 70,000 x 784 items 2.7 s, where a second search would cost as long
    as the graph did (~18 s). In float32, as the search is: gathering the neighbours is the
    cost, and a density needs no more. Otherwise a faiss search of the features."""
    if context.X is None:
        raise ValueError("this strategy needs the pool's features")
    graph = getattr(context.model, "graph", None)
    if graph is not None and graph.kernel == "knn" and graph.is_sparse:
        matrix = graph.affinity.tocsr()
        if np.diff(matrix.indptr).min() > k:
            return _nearest_in_rows(matrix, np.asarray(context.X, dtype=np.float32), k)
    from .graph import nearest_neighbors

    distances, _ = nearest_neighbors(context.X, min(k + 1, len(context.X)))
    return distances[:, 1:] ** 2  # leave out the item itself


def _nearest_in_rows(matrix, X: np.ndarray, k: int, budget: int = 8_000_000) -> np.ndarray:
    """The k smallest squared distances from each item to the other items of its row of
    the CSR ``matrix``, a block of rows at a time (about ``budget`` gathered numbers)."""
    n_items, lengths = matrix.shape[0], np.diff(matrix.indptr)
    width = int(lengths.max())
    block = max(1, budget // (width * X.shape[1]))
    squared = np.empty((n_items, k))
    for start in range(0, n_items, block):
        stop = min(start + block, n_items)
        own = np.arange(start, stop)
        # Each row's items, padded with the row's own item (then left out like it).
        columns = np.repeat(own[:, None], width, axis=1)
        filled = np.arange(width)[None, :] < lengths[start:stop, None]
        columns[filled] = matrix.indices[matrix.indptr[start]:matrix.indptr[stop]]
        difference = X[columns] - X[start:stop, None, :]
        values = np.einsum("ijk,ijk->ij", difference, difference)
        values[columns == own[:, None]] = np.inf  # an item is not its own neighbour
        squared[start:stop] = np.sort(np.partition(values, k - 1, axis=1)[:, :k], axis=1)
    return squared


def information_density(proba: np.ndarray, context: QueryContext) -> np.ndarray:
    """Entropy weighted by density (Settles & Craven 2008): uncertain *and* typical items
    first, so outliers the model is unsure of do not take the labels."""
    return entropy(proba, context) * density(context)


# Below this many labels per class, typical-margin still favours typical items.
WARM_UP_LABELS_PER_CLASS = 1.5


def typical_margin(proba: np.ndarray, context: QueryContext) -> np.ndarray:
    """Margin sampling that starts on typical items: the recommended strategy.

    While the labels number fewer than 1.5 per known class (the first batch after a start
    of one label per class), each item's closeness to a tie (one minus the gap between its
    two most likely classes) is weighted by its density squared; from then on it is plain
    margin. With one label per class the boundaries are guesses, and the items nearest
    them are as often outliers, whose labels teach the graph little, as real confusions.
    On full digits (10 typical starting labels, batches of 5, seeds 0-39; docs/benchmarks.md)
    it takes the accuracy at 15 labels from 0.889 to 0.934 (37 seeds better, 3 worse) and
    the mean over 10-100 labels from 0.970 to 0.974 (33 better, 7 worse) against margin
    from the first batch; at 20 labels 0.927 -> 0.935, at 50 and 100 no different.
    """
    closeness = 1.0 + margin(proba, context)
    if not _warming_up(int(context.labeled.sum()), proba.shape[1]):
        return closeness
    return closeness * density(context) ** 2


def _warming_up(n_labeled: int, n_classes: int) -> bool:
    return n_labeled < WARM_UP_LABELS_PER_CLASS * n_classes


def reads_density(strategy: str, n_labeled: int, n_classes: int) -> bool:
    """Whether the built-in ``strategy`` reads the pool's density (computed once, then
    cached) at ``n_labeled`` labels of ``n_classes`` known classes."""
    return strategy == "density" or (strategy == "typical-margin"
                                      and _warming_up(n_labeled, n_classes))


def expected_error_reduction(proba: np.ndarray, context: QueryContext,
                             candidates: int = 20) -> np.ndarray:
    """Expected error reduction on the graph (Zhu, Lafferty & Ghahramani 2003).

    For each of the ``candidates`` most uncertain items k and each class y, the spreading
    solution after labeling k as y is the current one plus y times k's column of the
    graph's Green's function (the solution is linear in the labels), so one block solve
    gives every what-if. The utility of k is minus the expected number of errors left on
    the unlabeled items, sum over y of p(y | k) * sum_i (1 - max_c p'_ic). Items outside
    the candidates get -inf. Needs the ``spreading`` model.
    """
    from .propagation import green_columns, one_hot

    labeling = getattr(context.model, "labeling", None)
    if getattr(labeling, "variant", None) != "spreading":
        raise UserError("strategy expected-error needs --model spreading")
    labeled = context.labeled
    picked = select_top(entropy(proba, context), labeled, candidates)
    utility = np.full(len(proba), -np.inf)
    if not len(picked):
        return utility
    classes = labeling.classes_
    Y = one_hot(context.labels, classes)
    scores, green = green_columns(context.model.graph, Y, picked, labeling.alpha)
    unlabeled = ~labeled
    for k, item in enumerate(picked):
        risk = np.zeros(len(classes))
        keep = unlabeled.copy()
        keep[item] = False
        for y in range(len(classes)):
            risk[y] = _errors_after(scores[keep], green[keep, k], y)
        utility[item] = -float(proba[item, :len(classes)] @ risk)
    return utility


def _errors_after(scores: np.ndarray, column: np.ndarray, y: int) -> float:
    """Expected errors (sum of 1 - top probability) if ``column`` is added to class y."""
    updated = scores.copy()
    updated[:, y] += column
    totals = np.maximum(updated.sum(axis=1), 1e-300)
    return float(np.sum(1.0 - updated.max(axis=1) / totals))


def first(proba: np.ndarray, context: QueryContext) -> np.ndarray:
    """Earlier pool items first: passive learning in the pool's (shuffled) order."""
    return -np.arange(len(proba), dtype=np.float64)


# The strategies that choose items without looking at the model.
PASSIVE_STRATEGIES = ("random", "first")

STRATEGIES: dict[str, Utility] = {
    "random": random,
    "first": first,
    "least-confident": least_confident,
    "margin": margin,
    "typical-margin": typical_margin,
    "entropy": entropy,
    "density": information_density,
    "expected-error": expected_error_reduction,
}


# Strategies that read only each item's own probabilities: a model whose probabilities are
# spread over several machines can score them where they are (``top_items``).
PER_ITEM: tuple = (least_confident, margin, entropy)


def get_strategy(name: str) -> Utility:
    """Look up a strategy by name, or import a user's one given as ``module:function``."""
    if name in STRATEGIES:
        return STRATEGIES[name]
    if ":" in name:
        return load_strategy(name)
    raise UserError(f"unknown strategy {name!r}; allowed: {', '.join(STRATEGIES)} "
                    "or module:function")


def score_pool(utility: Utility, proba: np.ndarray, context: QueryContext) -> np.ndarray:
    """The strategy's scores of every item, checked: one number per pool item, none NaN
    (-inf is allowed: it means "never pick this item").

    A user's strategy that breaks the contract is told so in one line; one of ours doing
    it is a bug and raises as one.
    """
    scores = np.asarray(utility(proba, context), dtype=np.float64)
    problem = None
    if scores.shape != (len(proba),):
        problem = f"returned shape {scores.shape}; it must return one score per pool item " \
                  f"({len(proba)})"
    elif np.isnan(scores).any():
        bad = np.flatnonzero(np.isnan(scores))
        problem = f"returned NaN for item {bad[0]} ({len(bad)} items in all); scores must " \
                  "be numbers (-inf for an item never to pick)"
    if problem is None:
        return scores
    name = getattr(utility, "__name__", repr(utility))
    if utility in STRATEGIES.values():
        raise RuntimeError(f"built-in strategy {name} {problem}")
    raise UserError(f"strategy {name} {problem}")


# When more than this share of the rows moved since the last ranking, rank the whole pool
# again. Updating the moved rows one by one took 0.7 / 1.7 / 3.1 / 4.8 ms at 1,000,000 rows
# with 1 / 10 / 25 / 50% moved, against 5.4 ms for a pass (AMD EPYC): past a quarter the
# gain is small, and the list of moved rows would keep growing.
RANK_AGAIN_MOVED = 0.25
# Rows of the probabilities a kept strategy scores at a time when it scores every row: its
# temporaries (the entropy's normalised rows and their entr) stay the size of a block.
# Over the whole pool at once they were a lone cluster worker's highest point in its
# rounds: 230 B an item at 1,000,000 x 10 (docs/benchmarks.md, forty-fourth session).
SCORED_ROWS = 65536


class PoolScores:
    """A strategy's scores of the pool, kept from round to round so that a strategy that
    reads only each item's own probabilities (:data:`PER_ITEM`) scores again only the
    items whose probabilities moved. After a local round (the solve pushed the new labels
    through the graph near them) most rows are unchanged, bit for bit; the model names
    the rows that may have moved (a :class:`activeprop.row_versions.RowVersion`), so no
    copy of the probabilities is kept to compare with (80 MB at 1,000,000 x 10, and 42 ms
    a query to compare).

    The scores are the same as scoring every row: such a strategy's score of a row reads
    that row alone, and a C-ordered row's reductions do not depend on the other rows.
    The batch is chosen the same way (:meth:`best`): only the moved rows are ranked again.
    """

    def __init__(self, utility: Utility):
        self.utility = utility
        self._stamp: tuple | None = None  # the version of the probabilities last scored
        self._shape: tuple | None = None  # and their shape
        self._scores: np.ndarray | None = None
        self._ranking = KeptRanking()
        self._moved = np.empty(0, dtype=np.int64)  # rows scored again since the last ranking

    def __call__(self, proba: np.ndarray, context: QueryContext, version=None) -> np.ndarray:
        """The utility's scores of every row of ``proba`` (see :func:`score_pool`);
        ``version``: the probabilities' :class:`activeprop.row_versions.RowVersion`, or
        None when unknown (every row is scored)."""
        moved = None
        if self.utility in PER_ITEM and proba.flags.c_contiguous and version is not None \
                and proba.shape == self._shape:
            moved = version.rows_changed_since(self._stamp)
        self._stamp = version.stamp if version is not None else None
        self._shape = proba.shape
        if moved is None:
            self._scores = self._score_every_row(proba, context)
            self._rank_afresh()
        else:  # only the moved rows are scored again
            self._scores[moved] = score_pool(self.utility, proba[moved], context)
            self._moved = np.concatenate([self._moved, moved])  # repeats do no harm
            if len(self._moved) > len(proba) * RANK_AGAIN_MOVED:
                self._rank_afresh()
        return self._scores.copy()

    def _score_every_row(self, proba: np.ndarray, context: QueryContext) -> np.ndarray:
        """:func:`score_pool` of every row; a per-item strategy's a block of
        :data:`SCORED_ROWS` rows at a time (the same scores: each row's reads that row)."""
        if self.utility not in PER_ITEM or len(proba) <= SCORED_ROWS:
            return score_pool(self.utility, proba, context)
        scores = np.empty(len(proba))
        for rows in row_steps(len(proba), SCORED_ROWS):
            scores[rows] = score_pool(self.utility, proba[rows], context)
        return scores

    def _rank_afresh(self) -> None:
        self._ranking.forget()
        self._moved = np.empty(0, dtype=np.int64)

    def best(self, excluded: np.ndarray, n: int, ids: np.ndarray | None = None) -> np.ndarray:
        """:func:`select_top` of the last call's scores (the ``n`` best rows not
        ``excluded``, ties to the lower of ``ids``, the rows' positions by default),
        ranking again only the rows that moved since the last ranking."""
        picked = self._ranking.best(self._scores, excluded, n, self._moved, ids)
        self._moved = np.empty(0, dtype=np.int64)
        return picked


def select_top(utility: np.ndarray, labeled: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` unlabeled items with the highest utility, best first.

    Ties go to the lower pool index, so a run is reproducible whatever the sort
    algorithm. Fewer than ``n`` items are returned when fewer are unlabeled.
    """
    candidates = np.flatnonzero(~labeled)
    return candidates[best_positions(utility[candidates], candidates, n)]


BATCH_MODES = ("topk", "diverse")
# A diverse batch of n picks among the DIVERSE_CANDIDATES * n best items.
DIVERSE_CANDIDATES = 10
INITIAL_STRATEGIES = ("first", "random", "typical")


def select_diverse(utility: np.ndarray, labeled: np.ndarray, n: int, X: np.ndarray,
                   seed: int = 0, candidates_per_item: int = DIVERSE_CANDIDATES,
                   best: Ranked | None = None) -> np.ndarray:
    """A batch that is not ``n`` near-copies of one confusing item.

    The ``candidates_per_item * n`` best unlabeled items (found by ``best`` when given, see
    :func:`select_batch`) are clustered into ``n`` groups by their features (k-means) and
    the best item of each group is taken; best first.
    """
    m = candidates_per_item * n
    pool = best(labeled, m) if best is not None else select_top(utility, labeled, m)
    return diverse_among(pool, utility[pool], X[pool], n, seed)


def diverse_among(ids: np.ndarray, scores: np.ndarray, rows: np.ndarray, n: int,
                  seed: int = 0) -> np.ndarray:
    """:func:`select_diverse`'s choice among candidates already found: ``ids`` best first
    (ties to the lower index), their ``scores`` and feature ``rows``. The best item of each
    of ``n`` k-means groups of the rows; best first."""
    if len(ids) <= n:
        return ids
    from sklearn.cluster import KMeans

    groups = KMeans(n_clusters=n, n_init=3, random_state=seed).fit_predict(rows)
    best = np.array([np.flatnonzero(groups == g)[np.argmax(scores[groups == g])]
                     for g in range(n)])
    return ids[best][np.lexsort((ids[best], -scores[best]))]


def select_batch(mode: str, utility: np.ndarray, labeled: np.ndarray, n: int,
                 X: np.ndarray | None, seed: int = 0, best: Ranked | None = None) -> np.ndarray:
    """The batch by ``mode``: ``topk`` (the n best) or ``diverse`` (see select_diverse).

    ``best(labeled, n)``, when given, answers as ``select_top(utility, labeled, n)`` from a
    ranking kept between queries (:meth:`PoolScores.best` of the scores ``utility``).
    """
    if mode == "diverse":
        return select_diverse(utility, labeled, n, X, seed, best=best)
    if mode != "topk":
        raise UserError(f"unknown batch mode {mode!r}; allowed: {', '.join(BATCH_MODES)}")
    return best(labeled, n) if best is not None else select_top(utility, labeled, n)


def initial_items(kind: str, X: np.ndarray, k: int, seed: int = 0,
                  allowed: np.ndarray | None = None,
                  embedding: np.ndarray | None = None) -> np.ndarray:
    """The first ``k`` items to label, chosen without any label.

    ``first``: the pool's first items (its shuffled order). ``random``: drawn with the seed.
    ``typical``: the item nearest the centre of each of k k-means clusters, so the start
    covers the pool instead of depending on luck; clusters of ``embedding`` (the graph's
    spectral embedding) when given, else of the features. ``allowed`` restricts the choice
    (a held-out set is never labeled).
    """
    candidates = np.flatnonzero(allowed) if allowed is not None else np.arange(len(X))
    if k > len(candidates):
        raise UserError(f"initial ({k}) is more than the pool holds ({len(candidates)} items)")
    if kind == "first":
        return candidates[:k]
    if kind == "random":
        return np.sort(np.random.default_rng(seed).choice(candidates, k, replace=False))
    if kind != "typical":
        raise UserError(f"unknown initial strategy {kind!r}; allowed: "
                        f"{', '.join(INITIAL_STRATEGIES)}")
    space = X if embedding is None else embedding
    return _typical_items(space[candidates], k, seed, candidates)


def _typical_items(X: np.ndarray, k: int, seed: int, ids: np.ndarray) -> np.ndarray:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if len(X) > 20_000:
        clusters = MiniBatchKMeans(n_clusters=k, n_init=3, random_state=seed,
                                   batch_size=4096).fit(X)
    else:
        clusters = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(X)
    distances = ((X[:, None, :] - clusters.cluster_centers_[None]) ** 2).sum(axis=2) \
        if len(X) * k <= 5_000_000 else None
    chosen: list[int] = []
    for centre in range(k):
        if distances is not None:
            order = np.argsort(distances[:, centre])
        else:
            order = np.argsort(((X - clusters.cluster_centers_[centre]) ** 2).sum(axis=1))
        chosen.append(next(int(i) for i in order if int(i) not in chosen))
    return ids[np.array(chosen)]
