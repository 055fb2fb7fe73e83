"""Who answers a query: the ground truth (simulation) or a person."""

from __future__ import annotations

import numpy as np

from .errors import UserError


class GroundTruthOracle:
    """A simulated annotator that answers every query with the true label."""

    def __init__(self, y: np.ndarray):
        if np.any(y < 0):
            raise UserError("the dataset has items without a ground-truth label; a "
                            "simulation needs every label (give y for every item)")
        self.y = y

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        """The true labels of the pool items at ``indices``."""
        return self.y[np.asarray(indices, dtype=np.int64)]
