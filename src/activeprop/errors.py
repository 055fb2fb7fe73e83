"""The one exception type for mistakes a user can make.

Only :class:`UserError` becomes a one-line message with exit code 2 on the command line, or a
4xx answer from the web API. Any other exception is a bug in activeprop (or in a plugin the
user named) and shows as one: a traceback, or a 500 with the traceback in the server's log.

It subclasses ValueError so that scikit-learn conventions hold (an estimator given a bad
parameter raises ValueError) and callers that catch ValueError keep working.
"""

from __future__ import annotations


class UserError(ValueError):
    """Something the user gave is wrong; the message says what and what is allowed."""


class UnknownItem(UserError, LookupError):
    """An item id that is not in the pool (404 on the web API)."""


class Conflict(UserError):
    """A request that cannot be carried out in the project's current state (409)."""
