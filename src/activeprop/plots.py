"""Figures: the gallery of queried items per round."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MAX_GALLERY_ROWS = 10
MAX_GALLERY_COLUMNS = 10


def _pyplot():
    """matplotlib without a display; imported late so the CLI starts fast."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def uncertain_gallery(result, path: Path) -> Path | None:
    """Save the digits example's figure: each round's queried items with their labels.

    One row per round (the first ``MAX_GALLERY_ROWS``), headed by the model number and
    the number of labels it was fit with; each image titled with the model's prediction
    and the true label. Returns None when the pool's items are not images.
    """
    images = result.pool.display_images()
    rounds = result.rounds[:MAX_GALLERY_ROWS]
    if images is None or not rounds:
        return None
    names = result.pool.class_names
    columns = min(MAX_GALLERY_COLUMNS, max(len(r.queried) for r in rounds))
    plt = _pyplot()
    figure, axes = plt.subplots(len(rounds), columns + 1, squeeze=False,
                                figsize=(1.3 * (columns + 1), 1.55 * len(rounds) + 0.9))
    for row, round_ in zip(axes, rounds):
        row[0].axis("off")
        row[0].text(0.0, 0.5, "model %d\n\nfit with\n%d labels"
                    % (round_.round + 1, round_.n_labeled), va="center", size=10)
        for ax in row[1:]:
            ax.axis("off")
        for ax, item, guess in zip(row[1:], round_.queried, round_.queried_predicted):
            ax.imshow(images[item], cmap="gray_r", interpolation="none")
            ax.set_title("predict: %s\ntrue: %s" % (names[guess], names[result.pool.y[item]]),
                         size=10)
    shown = "" if len(rounds) == len(result.rounds) else \
        f" (first {len(rounds)} of {len(result.rounds)} rounds)"
    config = result.config
    figure.suptitle(f"Active learning: {config.model} model, {config.strategy} strategy.\n"
                    f"Each row: the items queried to label for the next model{shown}.")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
