"""activeprop: label a whole pool with few human labels.

A graph over the pool spreads every human label to the items around it, and an active
learner asks for the labels that teach the model most.
"""

from .datasets import Pool, load_pool
from .graph import Graph, build_graph
from .learner import ActiveLearner
from .models import make_model

__all__ = ["ActiveLearner", "Graph", "LabelPropagation", "LabelSpreading", "PoissonLearning",
           "Pool",
           "build_graph", "load_pool", "make_model"]
__version__ = "0.1.0"

ESTIMATORS = ("LabelPropagation", "LabelSpreading", "PoissonLearning")


def __getattr__(name: str):
    # The scikit-learn estimators load scikit-learn (about a second); commands that only
    # run rounds never touch them, so they are imported on first use.
    if name in ESTIMATORS:
        from . import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'activeprop' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *ESTIMATORS])
