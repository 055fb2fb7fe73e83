"""User extensions named as ``module:name``: strategies and models.

Code is imported only when the user names it on the command line (or passes the name to
the library). A project that someone sent you stores the names of the plugins it was made
with, but opening it never imports them: :func:`require_trusted` refuses until the same
names are given with ``--plugin``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Iterable

from .errors import UserError


def is_plugin(name: str | None) -> bool:
    """Whether a strategy or model name refers to user code (``module:name``)."""
    return isinstance(name, str) and ":" in name


def require_trusted(names: Iterable[str | None], trusted: Iterable[str]) -> None:
    """Raise unless every plugin among ``names`` is in ``trusted`` (named by the user)."""
    trusted = set(trusted)
    for name in names:
        if is_plugin(name) and name not in trusted:
            raise UserError(f"this project uses the plugin {name!r}, which would import and "
                            f"run code; pass --plugin {name} if you trust it")


def import_object(spec: str, what: str):
    """Import ``module:attribute``; raise a clear UserError when it cannot be found.

    The current directory is searched too, so a ``my_strategies.py`` next to where the
    command runs can be named as ``my_strategies:function``.

    Parameters
    ----------
    spec : str
        ``"package.module:name"``.
    what : str
        What the object is for ("strategy", "model"), used in the error message.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UserError(f"{what} {spec!r} is not of the form module:name")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attribute)
    except (ImportError, AttributeError) as error:
        raise UserError(f"cannot load {what} {spec!r} ({error}); give module:name of an "
                        "importable module") from None


def load_strategy(spec: str):
    """A user's strategy function ``f(proba, context) -> scores``, checked before use."""
    function = import_object(spec, "strategy")
    if not callable(function):
        raise UserError(f"strategy {spec!r} is a {type(function).__name__}, not a function; "
                        "give module:function with f(proba, context) -> one score per item")
    if not _accepts_two_arguments(function):
        raise UserError(f"strategy {spec!r} must take two arguments (proba, context); "
                        f"it is {_signature(function)}")
    return function


def load_model(spec: str, seed: int):
    """A user's scikit-learn classifier ``module:Class``, created without arguments."""
    cls = import_object(spec, "model")
    if not inspect.isclass(cls):
        raise UserError(f"model {spec!r} is a {type(cls).__name__}, not a class; give "
                        "module:Class of a scikit-learn classifier")
    try:
        estimator = cls()
    except TypeError as error:
        raise UserError(f"model {spec!r} cannot be created without arguments ({error})") \
            from None
    missing = [m for m in ("fit", "predict_proba", "get_params") if not hasattr(estimator, m)]
    if missing:
        raise UserError(f"model {spec!r} has no {', '.join(missing)}; give a scikit-learn "
                        "classifier with predict_proba (class probabilities)")
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=seed)
    return estimator


def _accepts_two_arguments(function) -> bool:
    try:
        inspect.signature(function).bind(None, None)
    except TypeError:
        return False
    except ValueError:  # no signature to read (some builtins): let the call decide
        return True
    return True


def _signature(function) -> str:
    try:
        return f"{getattr(function, '__name__', 'f')}{inspect.signature(function)}"
    except ValueError:
        return repr(function)
