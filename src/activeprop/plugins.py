"""User extensions named on the command line as ``module:name``."""

from __future__ import annotations

import importlib
import os
import sys


def import_object(spec: str, what: str):
    """Import ``module:attribute``; raise a clear ValueError when it cannot be found.

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
        raise ValueError(f"{what} {spec!r} is not of the form module:name")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot load {what} {spec!r} ({error}); give module:name of an "
                         "importable module") from None
