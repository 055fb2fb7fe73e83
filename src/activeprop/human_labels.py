"""One process's view of a project's human labels, kept in step with its label log.

The log in the project store is the truth, shared by every process that has the project
open (a `serve`, a `label`, a notebook): :class:`HumanLabels` reads only the events appended
since it last looked, so a process takes in the others' labels and undos before it builds a
queue or refits, at the cost of one small query when nothing changed.
"""

from __future__ import annotations

import numpy as np

from .datasets import UNLABELED
from .store import ProjectStore


class HumanLabels:
    """The label in effect of every item (``UNLABELED`` when none), as of the newest event
    read from ``store``'s log.

    Attributes
    ----------
    array : ndarray of int64, shape (n_items,)
        Class index per item; updated in place, so holders of it see every change.
    seen : int
        Id of the newest label event taken in.
    """

    def __init__(self, store: ProjectStore, n_items: int):
        self.store = store
        self.array = np.full(n_items, UNLABELED, dtype=np.int64)
        self.seen = 0
        # kept with the array: a count over it took 1 ms, four times a label at 1,000,000
        self._n_labeled = 0
        self.sync()

    def sync(self) -> bool:
        """Take in the events appended since the last look; True when there were any."""
        new = self.store.events_after(self.seen)
        if not new:
            return False
        if self.seen == 0:  # the first look: the whole log at once
            for item, label in self.store.current_labels(new).items():
                self.array[item] = label
            self._n_labeled = int(np.count_nonzero(self.array != UNLABELED))
        else:
            for item in {event.item_id for event in new}:
                label = self.store.current_labels(self.store.events(item)).get(item)
                self._n_labeled -= int(self.array[item] != UNLABELED)
                self.array[item] = UNLABELED if label is None else label
                self._n_labeled += int(self.array[item] != UNLABELED)
        self.seen = new[-1].id
        return True

    @property
    def n_labeled(self) -> int:
        """Items with a human label."""
        return self._n_labeled
