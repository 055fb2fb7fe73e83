"""The ``activeprop`` command: parse options, call the library, print.

A user error (:class:`~activeprop.errors.UserError`: bad option, unreadable file, value out of
range) prints one line on stderr and exits with code 2. Anything else is a bug and shows its
traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import warnings
from pathlib import Path

import typer

from . import experiments
from .errors import UserError
from .scaling import SPREAD_RATIO

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None, no_args_is_help=True,
                  help="Label a pool with few human labels: graph label spreading + "
                       "active learning.")


@app.callback()
def _commands() -> None:
    """Label a pool with few human labels: graph label spreading + active learning."""


# Options shared by `simulate` and `compare` (defaults: the digits example's).
DATASET = typer.Option("digits", help="digits, digits-aug:N[:SIZE], iris, wine, breast-cancer, "
                                      "FILE.npz, FILE.csv, FILE.jsonl (with --text-column) "
                                      "or a folder of images")
LABEL_COLUMN = typer.Option(None, help="label column of a .csv or .jsonl dataset")
TEXT_COLUMN = typer.Option(None, help="the column of a .csv or .jsonl dataset that holds "
                                      "each item's text (features: TF-IDF + SVD)")
FEATURES = typer.Option(None, help="your own features: .npy, .npz, .csv or .parquet, one row "
                                   "per item, matched by a 'path' column or by order")
TEXT_MODEL = typer.Option(None, help="texts: a sentence-transformers model (a folder, or a "
                                     "name in your Hugging Face cache) instead of TF-IDF; "
                                     "pip install 'activeprop[text]'")
IMAGE_FEATURES = typer.Option(None, help="image folders: pixels, hog, colour or hog+colour "
                                         "(default hog, chosen by measurement: bench/bench_image_features.py)")
IMAGE_MODEL = typer.Option(None, help="image folders: a pretrained Hugging Face image model "
                                      "(a folder, or a name in your cache, e.g. "
                                      "facebook/dinov2-small) instead of --image-features; "
                                      "pip install 'activeprop[vision]'")
SEED = typer.Option(0, help="seed of the shuffle (numpy RandomState) and strategies")
SUBSET = typer.Option(330, help="keep the first N shuffled items; 0 keeps all")
INITIAL = typer.Option(40, help="the first N items of the pool start labeled")
ROUNDS = typer.Option(5, help="rounds of fit, score and query")
BATCH = typer.Option(5, help="items labeled per round")
KERNEL = typer.Option("rbf", help="graph kernel: rbf or knn")
GAMMA = typer.Option(0.25, help="rbf kernel width, > 0")
ALPHA = typer.Option(0.2, help="spreading clamping factor, in (0, 1)")
MAX_ITER = typer.Option(20, help="solver iterations at most")
NEIGHBORS = typer.Option(7, help="neighbours per item of the knn kernel")
SOLVER = typer.Option("iterate", help="iterate (scikit-learn's, exact) or cg (converged, "
                                      "warm-started; for large pools)")
RTOL = typer.Option(1e-6, help="relative residual the cg solver stops at")
GRAPH_BACKEND = typer.Option("auto", help="knn search: sklearn (exact, scikit-learn's graph), "
                                          "flat (faiss exact), hnsw (faiss approximate), auto "
                                          "(sklearn with iterate, faiss with cg)")
GRAPH_SYMMETRIC = typer.Option(False, "--graph-symmetric", help="symmetrise the knn graph")
GRAPH_WEIGHTS = typer.Option("connectivity", help="knn edge weights: connectivity, rbf, or "
                             "local (exp(-4 d^2 / d_k^2), d_k each item's k-th neighbour)")
CLUSTER_ADDRESS = ("a scheduler address (tcp://HOST:PORT) or local:N worker processes (needs "
                   "the distributed extra)")
CLUSTER = typer.Option(None, help="build the graph and solve on a Dask cluster: " +
                                  CLUSTER_ADDRESS)
COMPONENTS = typer.Option(0, help="reduce features of more than 256 dimensions to this many "
                                  "principal components (0 keeps them; --recommended: 48)")
SCALE_HELP = (f"a table's columns: auto (standardised when their spreads differ over "
              f"{SPREAD_RATIO:g} times, the mark of different units), standard or none")
SCALE = typer.Option("auto", help=SCALE_HELP)
INITIAL_STRATEGY = typer.Option("first", help="how the initial items are picked: first "
                                              "(the shuffled order), random, typical "
                                              "(k-means centres)")
BATCH_MODE = typer.Option("topk", help="topk (the best items) or diverse (the best of each "
                                       "k-means cluster of the top candidates)")
RECOMMENDED_FLAG = typer.Option(False, "--recommended",
                                help="the project's recommended settings (Poisson learning, "
                                     "7-NN graph on features wider than 256, reduced to 48 "
                                     "components, else 15-NN; typical-margin, typical "
                                     "start, diverse batches) "
                                     "for every model, graph and strategy option not given "
                                     "on the command line")
LOCAL_FROM = typer.Option(0.0, help="switch the knn graph to local edge weights once the "
                                     "labels number this many per class seen (0: never; "
                                     "--recommended: 4 for pictures, 0 for texts and tables)")
COLUMN_WEIGHTS_HELP = ("a table's columns weighed by what the labels say about them "
                       "(the graph built again as labels come): labels, none, or auto "
                       "(labels for a table of at most 5,000 rows; {})")
COLUMN_WEIGHTS = typer.Option("none", help=COLUMN_WEIGHTS_HELP.format("--recommended's"))
CLASS_PRIORS = typer.Option(None, help="poisson model only: how common the classes are, if "
                                        "you know it: uniform, or one share per class "
                                        "(e.g. 0.37,0.63); predictions are shifted to match")
STRATEGY_HELP = ("random, first, least-confident, margin, typical-margin, entropy, density, "
                 "expected-error or module:function")
MODEL_HELP = "spreading, propagation, poisson, logistic or module:Class"
EVAL_HELP = ("accuracy on: pool (items not yet labeled), all (the whole pool), "
             "holdout:F (a fraction F never labeled)")


@app.command()
def simulate(
    context: typer.Context,
    dataset: str = DATASET, label_column: str = LABEL_COLUMN, text_column: str = TEXT_COLUMN,
    text_model: str = TEXT_MODEL, features: str = FEATURES,
    image_features: str = IMAGE_FEATURES, image_model: str = IMAGE_MODEL, seed: int = SEED,
    subset: int = SUBSET, initial: int = INITIAL, rounds: int = ROUNDS, batch: int = BATCH,
    strategy: str = typer.Option("entropy", help=STRATEGY_HELP),
    model: str = typer.Option("spreading", help=MODEL_HELP),
    kernel: str = KERNEL, gamma: float = GAMMA, alpha: float = ALPHA, max_iter: int = MAX_ITER,
    neighbors: int = NEIGHBORS, solver: str = SOLVER, rtol: float = RTOL,
    graph_backend: str = GRAPH_BACKEND, graph_symmetric: bool = GRAPH_SYMMETRIC,
    graph_weights: str = GRAPH_WEIGHTS, local_from: float = LOCAL_FROM,
    column_weights: str = COLUMN_WEIGHTS,
    components: int = COMPONENTS, scale: str = SCALE, initial_strategy: str = INITIAL_STRATEGY,
    batch_mode: str = BATCH_MODE,
    evaluation: str = typer.Option("pool", "--eval", help=EVAL_HELP),
    recommended: bool = RECOMMENDED_FLAG, class_priors: str = CLASS_PRIORS,
    stop_when: float = typer.Option(None, help="stop once the predictions are this stable "
                                               "(Cohen's kappa between rounds, e.g. 0.99) for "
                                               "3 rounds; prints the estimates every round"),
    estimate: bool = typer.Option(None, help="estimate accuracy and stability without ground "
                                             "truth every round (refits on held-out folds of "
                                             "the labels; off unless --stop-when is given)"),
    out: Path = typer.Option(None, help="write the figure and results.json to this folder"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document instead of text"),
    cluster: str = CLUSTER,
):
    """Run active learning with a simulated annotator (defaults: the scikit-learn digits example)."""
    if estimate is None:  # opt-in, but a run that stops on the estimate needs it
        estimate = stop_when is not None
    config = _simulation_config(locals())
    model = config.model
    config.validate()
    with _cluster_client(cluster, config) as client:
        result = experiments.simulate(config, client=client)
    document = result.to_json()
    if as_json:
        print(json.dumps(document))
    else:
        if result.standardised and scale == "auto":
            print(f"The table's columns are standardised (their spreads differ over "
                  f"{SPREAD_RATIO:g} times: different units); --scale none keeps them as "
                  "they are.")
        if result.missing_cells:
            print(_missing_message(result.missing_cells))
        if result.config.column_weights == "labels":
            print("The table's columns are weighed by what the labels say about them "
                  "(--column-weights none keeps them equal).")
        for round_ in result.rounds:
            print(experiments.format_round(round_, model))
            # The example's output stays the example's; a run that stops on the estimate,
            # or one with the recommended settings, also prints it every round.
            if round_.estimate is not None and (stop_when is not None or recommended):
                print(experiments.format_estimate(round_, config.strategy))
        if result.exhausted:
            print("No unlabeled items left to label.")
        if result.stopped:
            print(f"Stopping: the predictions were stable (kappa >= {stop_when}) for 3 rounds.")
    if out is not None:
        with writing_to(out):
            _write_outputs(result, document, out, quiet=as_json)


@app.command()
def compare(
    context: typer.Context,
    strategies: str = typer.Option("random,least-confident,margin,entropy",
                                   help="comma-separated: " + STRATEGY_HELP),
    model: str = typer.Option("spreading", help="comma-separated: " + MODEL_HELP),
    repeats: int = typer.Option(20, help="paired runs per model and strategy"),
    target: float = typer.Option(0.95, help="accuracy whose label cost is reported"),
    evaluation: str = typer.Option(None, "--eval",
                                   help=EVAL_HELP + "; default pool with a graph model, "
                                                    "else all"),
    jobs: int = typer.Option(-1, help="parallel repeats; -1 uses every core"),
    quiet: bool = typer.Option(False, help="no progress bar"),
    out: Path = typer.Option(None, help="write results.csv, summary.json and "
                                        "learning_curves.png to this folder"),
    dataset: str = DATASET, label_column: str = LABEL_COLUMN, text_column: str = TEXT_COLUMN,
    text_model: str = TEXT_MODEL, features: str = FEATURES,
    image_features: str = IMAGE_FEATURES, image_model: str = IMAGE_MODEL, seed: int = SEED,
    subset: int = SUBSET, initial: int = INITIAL, rounds: int = ROUNDS, batch: int = BATCH,
    kernel: str = KERNEL, gamma: float = GAMMA, alpha: float = ALPHA, max_iter: int = MAX_ITER,
    neighbors: int = NEIGHBORS, solver: str = SOLVER, rtol: float = RTOL,
    graph_backend: str = GRAPH_BACKEND, graph_symmetric: bool = GRAPH_SYMMETRIC,
    graph_weights: str = GRAPH_WEIGHTS, local_from: float = LOCAL_FROM,
    column_weights: str = COLUMN_WEIGHTS,
    components: int = COMPONENTS, scale: str = SCALE, initial_strategy: str = INITIAL_STRATEGY,
    batch_mode: str = BATCH_MODE, recommended: bool = RECOMMENDED_FLAG,
    class_priors: str = CLASS_PRIORS, cluster: str = CLUSTER,
):
    """Compare strategies and models over repeated paired runs: curves, AUC, significance.

    With --recommended every run uses the recommended model, graph, start and batch mode;
    only the strategies differ."""
    from . import comparison, report

    models = _split(model)
    base = _simulation_config(locals(), keep=("strategy",), model=models[0] if models else "")
    if recommended:
        models = [base.model]
    config = comparison.CompareConfig(comparison.resolve_evaluation(base, models, evaluation),
                                      _split(strategies), models, repeats, target, jobs)
    config.validate()
    for name in models:
        _check_cluster(cluster, dataclasses.replace(config.base, model=name))
    with _cluster_client(cluster, config.base) as client, \
            report.progress_bar(repeats, quiet) as advance:
        result = comparison.compare(config, progress=advance, client=client)
    report.print_summary(result.summary)
    if out is not None:
        with writing_to(out):
            written = comparison.write_results(result, out)
        print("Wrote " + ", ".join(str(path) for path in written))


PROJECT = typer.Option(..., help="the project directory")
PROJECT_CLUSTER = typer.Option(None, "--cluster", help="build the graph, refit and score on "
                                                       "a Dask cluster: " + CLUSTER_ADDRESS)
PLUGINS = typer.Option([], "--plugin", help="a module:name strategy or model the project uses "
                                            "that you trust to import and run (repeatable); "
                                            "a project's plugins are never imported without it")


@app.command()
def shard(
    out: Path = typer.Argument(..., help="where to write: NAME.zarr (a Zarr group) or a "
                                         "folder of .npy shards"),
    dataset: str = typer.Option(..., help="any dataset activeprop reads (digits, "
                                          "digits-aug:N[:SIZE], FILE.npz, FILE.csv, a folder "
                                          "of images, ...)"),
    label_column: str = LABEL_COLUMN, text_column: str = TEXT_COLUMN,
    text_model: str = TEXT_MODEL, features: str = FEATURES, image_features: str = IMAGE_FEATURES,
    image_model: str = IMAGE_MODEL,
    shard_rows: int = typer.Option(100_000, help="items per shard (chunk)"),
    components: int = typer.Option(0, help="store features of more than 256 dimensions as "
                                           "this many principal components (0 keeps them; "
                                           "a cluster uses the features as stored)"),
    scale: str = SCALE,
):
    """Store a dataset's features, labels, paths, texts and pictures in row shards, for
    pools larger than memory and for --cluster: the result is itself a dataset
    (--dataset OUT)."""
    from .datasets import load_pool
    from .features import principal_components
    from .scaling import scaled
    from .shards import write_sharded

    pool = load_pool(dataset, label_column=label_column, text_column=text_column,
                     text_model=text_model, features=features, image_features=image_features,
                     image_model=image_model)
    X = principal_components(scaled(pool.X, scale, pool.is_table), components)
    write_sharded(pool.with_features(X), out, shard_rows)
    n_shards = -(-len(pool) // shard_rows)
    print(f"Wrote {out}: {len(pool)} items x {pool.X.shape[1]} features (float32), "
          f"{n_shards} shard(s) of up to {shard_rows} rows. Use it as --dataset {out}")


@app.command()
def init(
    project: Path = PROJECT,
    dataset: str = typer.Option(..., help="digits, digits-aug:N[:SIZE], FILE.npz, FILE.csv or "
                                          "a folder of images (one subfolder per class)"),
    label_column: str = LABEL_COLUMN, text_column: str = TEXT_COLUMN,
    text_model: str = TEXT_MODEL, features: str = FEATURES, image_features: str = IMAGE_FEATURES,
    image_model: str = IMAGE_MODEL,
    classes: str = typer.Option(None, help="the classes, comma-separated (an image folder "
                                           "without class subfolders names none)"),
    image_size: int = typer.Option(16, help="image folders with --image-features pixels: "
                                            "grey pixels resized to SIZE x SIZE"),
    strategy: str = typer.Option(None, help="query strategy (default: "
                                            f"{experiments.RECOMMENDED['strategy']}, with "
                                            "diverse batches)"),
    model: str = typer.Option(None, help="poisson (default), spreading or propagation"),
    kernel: str = typer.Option(None, help="knn (default) or rbf"),
    neighbors: int = typer.Option(None, help="knn neighbours (default 7 on features "
                                                 "reduced to components, else 15)"),
    gamma: float = typer.Option(None, help="rbf width"),
    alpha: float = typer.Option(None, help="spreading clamping factor (default 0.9)"),
    components: int = typer.Option(None, help="reduce features of more than 256 dimensions "
                                              "to this many principal components (default "
                                              "48; 0 keeps them)"),
    class_priors: str = CLASS_PRIORS,
    scale: str = typer.Option(None, help=SCALE_HELP.replace("auto", "auto (default)", 1)),
    graph_weights: str = typer.Option(None, help="knn edge weights: connectivity (default), "
                                                 "rbf or local"),
    local_from: float = typer.Option(None, help="switch to local edge weights once the labels "
                                                "number this many per class seen (0: never; "
                                                "default 4 for pictures under poisson, 0 "
                                                "otherwise)"),
    column_weights: str = typer.Option(None, help=COLUMN_WEIGHTS_HELP.format("the default")),
    cluster: str = typer.Option(None, help="build the graph and the first items' order on a "
                                           "Dask cluster: " + CLUSTER_ADDRESS + "; a sharded "
                                           "dataset's features then stay where they are"),
):
    """Create a labeling project (a directory with a SQLite store) from a dataset."""
    from .project import init_project

    print("Reading the dataset and searching each item's neighbours (a minute or more for "
          "a large pool)...", file=sys.stderr, flush=True)
    with _cluster_client(cluster) as client:
        store = init_project(project, dataset, label_column=label_column,
                             image_size=image_size, text_column=text_column,
                             text_model=text_model, features=features,
                             image_features=image_features, image_model=image_model,
                             classes=_split(classes) if classes else None, client=client,
                             strategy=strategy, model=model, kernel=kernel,
                             n_neighbors=neighbors, gamma=gamma, alpha=alpha,
                             components=components, class_priors=class_priors,
                             scale=scale, graph_weights=graph_weights, local_from=local_from,
                             column_weights=column_weights)
    classes = ", ".join(store.class_names) or "none yet (add them on the page)"
    serve = f"activeprop serve --project {project}" + (f" --cluster {cluster}" if cluster else "")
    scaled = " Its columns are standardised (--scale none keeps them as they are)." \
        if store.meta("settings").get("scale") == "standard" else ""
    missing = store.meta("missing_cells")
    filled = f" {_missing_message(missing)}" if missing else ""
    weighed = " Its columns will be weighed by what the labels say about them " \
        "(--column-weights none keeps them equal)." \
        if store.meta("settings").get("column_weights") == "labels" else ""
    print(f"Created project {project}: {store.n_items():,} items, classes {classes}."
          f"{_graph_summary(store.meta('graph'))}{scaled}{filled}{weighed} Next: {serve}")


def _missing_message(n_cells: int) -> str:
    """What a run or a project does with a table's missing cells."""
    return (f"{n_cells:,} cell{'s' if n_cells > 1 else ''} of the table "
            f"{'are' if n_cells > 1 else 'is'} missing: the graph fills each with its "
            "column's median, and the labeler shows it as missing.")


def _graph_summary(graph: dict | None) -> str:
    """The init message's sentence about the project's graph ("" when it has none)."""
    if not graph:
        return ""
    how = graph["backend"] if graph["recall"] is None else \
        f"{graph['backend']}, recall {graph['recall']:.3f}"
    if graph.get("halo_rows") is not None:  # held by a cluster's workers
        how += f", {graph['blocks']} row blocks, halo {graph['halo_rows']} rows"
    size = f"{graph['n_neighbors']} neighbours" if graph["n_neighbors"] else graph["kernel"]
    return f" Graph: {size} ({how}), built in {graph['build_seconds']:.1f} s."


@app.command()
def serve(
    project: Path = PROJECT,
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, min=1, max=65535, help="port to listen on"),
    no_browser: bool = typer.Option(False, "--no-browser", help="do not open a browser"),
    token: str = typer.Option(None, help="required on every request; generated when binding "
                                         "an address other than localhost"),
    plugins: list[str] = PLUGINS,
    cluster: str = PROJECT_CLUSTER,
):
    """Label in the browser: the page refits after every label."""
    import webbrowser

    import uvicorn

    from .web.app import create_app

    token = required_token(host, token)
    _check_can_listen(host, port)
    with _project_session(project, plugins, cluster) as session:
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
        url += f"?token={token}" if token else ""
        print(f"activeprop labeler for {project}: {url}", flush=True)
        if not no_browser:
            webbrowser.open(url)
        uvicorn.run(create_app(session, token, host), host=host, port=port,
                    log_level="warning")


@app.command()
def label(
    project: Path = PROJECT,
    annotator: str = typer.Option("terminal", help="your name in the label log"),
    plugins: list[str] = PLUGINS,
    cluster: str = PROJECT_CLUSTER,
):
    """Label in the terminal: one key per item (s skip, u undo, q quit)."""
    from . import terminal

    with _project_session(project, plugins, cluster) as session:
        terminal.run(session, annotator)


@app.command()
def export(
    project: Path = PROJECT,
    format: str = typer.Option("csv", help="csv, jsonl or npz"),  # noqa: A002
    out: Path = typer.Option(..., help="file to write"),
    min_confidence: float = typer.Option(0.0, help="blank the propagated labels less "
                                                   "confident than this (every item keeps "
                                                   "its row)"),
    plugins: list[str] = PLUGINS,
):
    """Write every item with its final label, source, confidence and human label events."""
    from .labeling import LabelingSession

    session = LabelingSession(project, plugins=plugins)
    data = session.export(format, min_confidence)
    with writing_to(out):
        out.write_bytes(data)
    print(f"Wrote {out} ({len(session.pool)} items)")


@app.command()
def review(
    project: Path = PROJECT,
    threshold: float = typer.Option(0.5, help="list labels whose chance of being a slip "
                                              "(from the other labels, held out) is at "
                                              "least this"),
    plugins: list[str] = PLUGINS,
):
    """List human labels that their neighbours on the graph disagree with."""
    from rich.console import Console
    from rich.table import Table

    from .labeling import LabelingSession

    flagged = LabelingSession(project, plugins=plugins).review(threshold)
    if not flagged:
        print("No label looks like a slip (a class needs 3 labels before its labels are "
              "checked).")
        return
    table = Table(title=f"{len(flagged)} labels to review (slip: chance the label is a "
                        "mistake; support: held-out probability of "
                        "the given label)")
    for column in ("item", "label", "suggested", "slip", "support", "annotator"):
        table.add_column(column)
    for entry in flagged:
        table.add_row(str(entry["item_id"]), entry["label"], entry["suggested"],
                      f"{entry['slip']:.2f}", f"{entry['support']:.2f}", entry["annotator"] or "")
    Console().print(table)


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def _check_can_listen(host: str, port: int) -> None:
    """A clear error before uvicorn starts when the address cannot be used."""
    import socket

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        raise UserError(f"cannot listen on {host}:{port} ({error.strerror or error}); "
                        "choose another --port or --host") from None


def required_token(host: str, token: str | None) -> str | None:
    """The token the server demands: the one given, or a new one for a non-local address."""
    import secrets

    if host not in LOCAL_HOSTS and not token:
        return secrets.token_urlsafe(18)
    return token


# Command-line option names that differ from SimulationConfig's fields.
OPTION_FIELDS = {"neighbors": "n_neighbors", "evaluation": "eval"}
FIELD_OPTIONS = {field: option for option, field in OPTION_FIELDS.items()}


def _simulation_config(options: dict, keep: tuple = (), **overrides):
    """A SimulationConfig from a command's options (its ``locals()``); ``--recommended``
    replaces the recommended fields except those named in ``keep``."""
    fields = {f.name for f in dataclasses.fields(experiments.SimulationConfig)}
    values = {OPTION_FIELDS.get(name, name): value for name, value in options.items()}
    values = {name: value for name, value in values.items()
              if name in fields and not (name == "eval" and value is None)}
    config = experiments.SimulationConfig(**{**values, **overrides})
    if options.get("recommended"):
        # The preset fills in what the user left at its default; an option given on the
        # command line wins over it.
        given = _given_on_command_line(options.get("context"))
        chosen = {k: v for k, v in experiments.RECOMMENDED.items()
                  if k not in keep and FIELD_OPTIONS.get(k, k) not in given}
        config = dataclasses.replace(config, **chosen)
    return config


def _given_on_command_line(context: typer.Context | None) -> set[str]:
    """The parameters of the running command that the user typed (not defaults)."""
    if context is None:
        return set()
    return {name for name in context.params
            if getattr(context.get_parameter_source(name), "name", None) == "COMMANDLINE"}


def _check_cluster(spec: str | None, config) -> None:
    """With ``--cluster``, refuse settings that do not run on a cluster (one line each)."""
    if spec is not None:
        from .distributed.model import check_cluster_config

        check_cluster_config(config)


@contextlib.contextmanager
def _cluster_client(spec: str | None, config=None):
    """A Dask client for ``--cluster`` (None without it), closed when the command ends;
    a simulation ``config`` is checked first."""
    if spec is None:
        yield None
        return
    from .distributed.cluster import close, connect

    if config is not None:
        _check_cluster(spec, config)  # before starting any process
    client = connect(spec)
    try:
        yield client
    finally:
        close(client)


@contextlib.contextmanager
def _project_session(project: Path, plugins: list[str], cluster: str | None):
    """A labeling session on ``project``, on the Dask cluster ``cluster`` when given (the
    project's settings checked before any process starts; its graph built there)."""
    from .labeling import LabelingSession
    from .store import ProjectStore

    if cluster is not None:
        from .distributed.project import check_project_settings

        check_project_settings(ProjectStore(project).meta("settings"))
        print(f"Building {project}'s graph on the cluster...", file=sys.stderr, flush=True)
    with _cluster_client(cluster) as client:
        yield LabelingSession(project, plugins=plugins, client=client)


def _split(names: str) -> list[str]:
    return [name.strip() for name in names.split(",") if name.strip()]


def _write_outputs(result, document: dict, out: Path, quiet: bool) -> None:
    from .plots import uncertain_gallery

    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(document, indent=2))
    figure = uncertain_gallery(result, out / "uncertain_items.png")
    if not quiet:
        print(f"Wrote {out / 'results.json'}" + (f" and {figure}" if figure else ""))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``activeprop`` console script."""
    command = typer.main.get_command(app)
    try:
        with warnings.catch_warnings():
            # A solver stopping at max_iter is reported in the results, not as a warning.
            warnings.simplefilter("ignore", category=UserWarning)
            command.main(args=argv, prog_name="activeprop", standalone_mode=False)
    except typer.Exit as done:
        return done.exit_code
    except typer.Abort:
        print("activeprop: aborted", file=sys.stderr)
        return 130
    except typer.TyperException as error:  # usage errors: unknown option, bad value
        if type(error).__name__ == "NoArgsIsHelpError":
            print(error.format_message())
            return 0
        print(f"activeprop: error: {error.format_message()}", file=sys.stderr)
        return 2
    except UserError as error:
        print(f"activeprop: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    return 0


@contextlib.contextmanager
def writing_to(path: Path):
    """Turn a failure to write the user's output path into a user error."""
    try:
        yield
    except OSError as error:
        raise UserError(f"cannot write {error.filename or path}: {error.strerror or error}; "
                        "choose another --out") from None


if __name__ == "__main__":
    sys.exit(main())
