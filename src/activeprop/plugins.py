"""User extensions named on the command line as ``module:name``."""

from __future__ import annotations

import importlib


def import_object(spec: str, what: str):
    """Import ``module:attribute``; raise a clear ValueError when it cannot be found.

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
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot load {what} {spec!r} ({error}); give module:name of an "
                         "importable module") from None
