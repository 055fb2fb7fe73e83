# anyio (a dependency of FastAPI) loads its file I/O lazily, on the first file a page serves,
# in the test client's thread. anyio is a pytest plugin, so pytest rewrites that module's
# asserts with ast.parse, and on CPython 3.11.7 ast.parse in one thread while another
# parses failed the web test once on CI ("SystemError: AST constructor recursion depth
# mismatch", CPython issue gh-106905). Loaded here, in the main thread, before any test.
import anyio._core._fileio  # noqa: F401
import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris, load_wine, make_moons


@pytest.fixture(scope="session")
def small_datasets():
    """Several small datasets with ~85% of the labels hidden (-1)."""
    digits = load_digits()
    sets = {
        "digits400": (digits.data[:400], digits.target[:400]),
        "iris": load_iris(return_X_y=True),
        "wine": load_wine(return_X_y=True),
        "moons": make_moons(250, noise=0.1, random_state=0),
    }
    out = {}
    for name, (X, y) in sets.items():
        rng = np.random.RandomState(3)
        partial = y.copy()
        partial[rng.rand(len(y)) < 0.85] = -1
        out[name] = (np.asarray(X, dtype=float), y, partial)
    return out


@pytest.fixture(scope="session")
def client():
    """A Dask LocalCluster of two worker processes, shared by the cluster tests."""
    pytest.importorskip("distributed")
    from activeprop.distributed.cluster import close, connect

    client = connect("local:2")
    yield client
    close(client)
