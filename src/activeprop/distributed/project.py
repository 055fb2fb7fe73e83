"""A labeling project's model on a Dask cluster (``init --cluster``, ``serve --cluster``).

The project's settings become a :class:`ClusterGraphModel`; its graph is built on the
workers when the project is opened (it is held there in row blocks, never gathered, so it
is not kept beside the database as a one-machine graph is) and shared by the session's
models through the ``graphs`` dict.
"""

from __future__ import annotations

from ..errors import UserError
from ..features import reduces
from ..strategies import PER_ITEM, STRATEGIES, get_strategy
from .model import CLUSTER_MODELS, ClusterGraphModel

# A new project's strategy on a cluster: the recommended typical-margin reads the pool's
# density, which a cluster does not compute; its typical start is the cold-start order.
CLUSTER_STRATEGY = "margin"
GRAPH_KEY = "cluster"


def per_item_strategies() -> list[str]:
    """The strategies a cluster scores where the probabilities are (per item)."""
    return [name for name, utility in STRATEGIES.items() if utility in PER_ITEM]


def check_project_settings(settings: dict, shape: tuple | None = None) -> None:
    """Raise UserError, in one line naming the setting, when a project's ``settings`` (and,
    when given, features of ``shape`` about to be reduced) have no cluster form."""
    problems = [
        (settings["model"] in CLUSTER_MODELS,
         f"model {settings['model']!r} does not run on a cluster; allowed there: "
         f"{', '.join(CLUSTER_MODELS)}"),
        (settings["kernel"] == "knn", "a cluster needs the knn kernel (a dense rbf graph "
                                      "does not split into row blocks)"),
        (get_strategy(settings["strategy"]) in PER_ITEM,
         f"strategy {settings['strategy']!r} reads more than each item's own probabilities "
         f"and does not run on a cluster; allowed there: {', '.join(per_item_strategies())}"),
        (settings.get("class_priors") is None, "class priors do not run on a cluster yet"),
        (not settings.get("local_from"), "local edge weights (--local-from) do not run on "
                                         "a cluster yet; give --local-from 0"),
        (settings.get("graph_weights", "connectivity") == "connectivity",
         f"graph weights {settings.get('graph_weights')!r} do not run on a cluster yet; "
         "allowed there: connectivity"),
        (settings.get("column_weights", "none") != "labels",
         "column weights from the labels do not run on a cluster; give --column-weights none"),
        (shape is None or not reduces(shape, settings["components"]),
         f"the pool has {shape and shape[1]} features, which init reduces to "
         f"{settings['components']} principal components in one process only: give "
         "--components 0 to keep them, or store reduced ones with `activeprop shard "
         f"--components {settings['components']}`"),
    ]
    for ok, message in problems:
        if not ok:
            raise UserError(message)


def project_cluster_model(settings: dict, X, client, graphs: dict) -> ClusterGraphModel:
    """The model a project's ``settings`` describe, on the cluster of ``client``; the
    graph is taken from ``graphs`` or built and put there."""
    check_project_settings(settings)
    model = ClusterGraphModel(settings["model"], X, client,
                              n_neighbors=settings["n_neighbors"],
                              alpha=settings["alpha"] if settings["model"] == "spreading"
                              else None, max_iter=settings["max_iter"], rtol=settings["rtol"])
    model.graph = graphs.get(GRAPH_KEY)
    if model.graph is None or not model.can_use(model.graph):  # (its model was changed)
        graphs[GRAPH_KEY] = model.build_graph()
    return model

