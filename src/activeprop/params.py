"""The one place where the model and graph parameters are checked.

Each parameter has one rule, the same for the command line, the labeler, the library's
models and the scikit-learn estimators (which follow scikit-learn's own ranges, e.g.
``gamma >= 0``). A value outside its range raises :class:`~activeprop.errors.UserError`
naming the parameter, what it got, and what is allowed.
"""

from __future__ import annotations

from numbers import Integral, Real

from .errors import UserError

KERNELS = ("rbf", "knn")
SOLVERS = ("iterate", "cg")


def _number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _integer(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


RULES = {
    "kernel": (lambda v: v in KERNELS or callable(v),
               f"one of {', '.join(KERNELS)} or a callable kernel(X, Y)"),
    "gamma": (lambda v: _number(v) and v >= 0, ">= 0"),
    "n_neighbors": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "alpha": (lambda v: _number(v) and 0 < v < 1, "strictly between 0 and 1"),
    "max_iter": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "tol": (lambda v: _number(v) and v >= 0, ">= 0"),
    "solver": (lambda v: v in SOLVERS, f"one of {', '.join(SOLVERS)}"),
    "rtol": (lambda v: _number(v) and 0 < v < 1, "in (0, 1)"),
}


def check_params(**values) -> None:
    """Raise UserError for the first value outside its rule (see :data:`RULES`)."""
    for name, value in values.items():
        ok, allowed = RULES[name]
        if not ok(value):
            raise UserError(f"{name} must be {allowed}, got {value!r}")
