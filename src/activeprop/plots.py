"""Figures: the gallery of queried items per round."""

from __future__ import annotations

from pathlib import Path

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


LINE_STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "x")


def learning_curves(summary: dict, path: Path) -> Path:
    """Save mean accuracy vs labels per strategy, with the shaded confidence band;
    one panel per model."""
    plt = _pyplot()
    models = list(dict.fromkeys(r["model"] for r in summary["results"]))
    figure, axes = plt.subplots(1, len(models), squeeze=False, sharey=True,
                                figsize=(5.5 * len(models), 4.2))
    for ax, model in zip(axes[0], models):
        results = [r for r in summary["results"] if r["model"] == model]
        for index, result in enumerate(results):
            curve = result["curve"]
            x = [p["n_labeled"] for p in curve]
            # Strategies that pick alike draw the same curve: each its own dashes and
            # marker, so that one drawn over another still shows.
            line, = ax.plot(x, [p["mean"] for p in curve], label=result["strategy"],
                            linestyle=LINE_STYLES[index % len(LINE_STYLES)],
                            marker=MARKERS[index % len(MARKERS)], markersize=4,
                            fillstyle="none" if index % 2 else "full")
            ax.fill_between(x, [p["ci_low"] for p in curve], [p["ci_high"] for p in curve],
                            color=line.get_color(), alpha=0.2, linewidth=0)
        repeats = max(p["n_repeats"] for r in summary["results"] for p in r["curve"])
        ax.set_title(f"{model}: mean of {repeats} repeats, "
                     f"{summary['confidence']:.0%} band", size=10)
        ax.set_xlabel("number of labels")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=9)
    axes[0][0].set_ylabel(f"accuracy (eval: {summary['eval']})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)
