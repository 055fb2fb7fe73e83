"""Label inside a notebook (JupyterLab, Jupyter Notebook 7, VS Code): :class:`Labeler`, a
widget over the same labeling session as the page and the terminal.

Needs the notebook extra: ``pip install 'activeprop[notebook]'`` (anywidget, pandas).
"""

from .labeler import Labeler

__all__ = ["Labeler"]
