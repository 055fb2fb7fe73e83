"""activeprop: label a whole pool with few human labels.

A graph over the pool spreads every human label to the items around it, and an active
learner asks for the labels that teach the model most.
"""

from .datasets import Pool, load_pool
from .graph import Graph, build_graph
from .learner import ActiveLearner
from .models import make_model
from .propagation import LabelPropagation, LabelSpreading, PoissonLearning

__all__ = ["ActiveLearner", "Graph", "LabelPropagation", "LabelSpreading", "PoissonLearning",
           "Pool",
           "build_graph", "load_pool", "make_model"]
__version__ = "0.1.0"
