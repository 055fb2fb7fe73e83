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
