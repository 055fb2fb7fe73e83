"""Decisions taken from this machine's measured costs (issue 18, item 2): each runs here on
made-up costs both ways, and the measurements are cached per machine."""

import json

import numpy as np
import pytest

from activeprop import calibration
from activeprop.calibration import (
    MEASUREMENTS,
    MachineCosts,
    powers_pay,
    powers_seconds,
    rows_worth_a_thread,
    search_backend,
)
from activeprop.graph import ThreadedMatrix, row_blocks

SEARCH = {"hnsw_item": 2e-5, "hnsw_dimension": 2e-7}


def test_the_powers_are_bought_when_the_rent_reaches_their_cost():
    fast_square = MachineCosts(square_madd=1e-12, thin_madd=1e-10)  # AVX-512-like
    slow_square = MachineCosts(square_madd=1e-10, thin_madd=1e-10)
    n = 1797
    assert powers_seconds(n, fast_square) < powers_seconds(n, slow_square)
    rent = 0.2  # seconds of columns rented so far (measured by the caller)
    assert powers_pay(n, rent, 0.0, fast_square)
    assert not powers_pay(n, rent, 0.0, slow_square)
    assert powers_pay(n, rent, 1e3, slow_square)  # a long run announced pays for them


def test_exact_search_while_it_costs_a_few_times_hnsw():
    cheap_flat = MachineCosts(flat_madd=1e-13, **SEARCH)
    dear_flat = MachineCosts(flat_madd=1e-9, **SEARCH)
    assert search_backend(70_000, 784, cheap_flat) == "flat"
    assert search_backend(70_000, 784, dear_flat) == "hnsw"
    assert search_backend(500, 64, dear_flat) == "flat"  # tiny: exact whatever it costs


@pytest.mark.parametrize("handoff,cores,blocks", [(1e-6, 2, 2), (1.0, 2, 1), (1e-6, 1, 1)])
def test_threads_only_where_they_pay(handoff, cores, blocks):
    costs = MachineCosts(thread_handoff=handoff)
    assert rows_worth_a_thread(1e-6, costs, cores=cores) >= 1
    assert len(row_blocks(100_000, 1e-6, n_blocks=cores, costs=costs)) == blocks


def test_a_threaded_graph_product_is_the_same_either_way(monkeypatch):
    from scipy import sparse

    from activeprop import graph

    rng = np.random.default_rng(0)
    matrix = sparse.random(3000, 3000, density=0.003, random_state=0, format="csr")
    block = rng.random((3000, 4))
    products = []
    for handoff in (1e-12, 10.0):  # threads pay / do not
        costs = MachineCosts(sparse_row=1e-7, thread_handoff=handoff)
        monkeypatch.setattr(graph, "machine_costs", lambda costs=costs: costs)
        threaded = ThreadedMatrix(matrix, n_blocks=2)
        products.append((len(threaded._blocks), threaded @ block))
    assert [blocks for blocks, _ in products] == [2, 1]
    np.testing.assert_array_equal(products[0][1], products[1][1])


def test_costs_are_measured_once_and_cached_per_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIVEPROP_CACHE", str(tmp_path))
    monkeypatch.setattr(calibration, "machine_share", lambda: 1.0)  # a quiet machine
    calls = []
    monkeypatch.setitem(MEASUREMENTS, "square_madd", lambda: calls.append(1) or 2e-11)
    path = calibration.cache_file()
    assert path.parent == tmp_path and calibration.machine_key() in path.name
    assert MachineCosts(path).square_madd == 2e-11
    assert MachineCosts(path).square_madd == 2e-11  # a new process reads the file
    assert calls == [1]
    stored = json.loads(path.read_text())
    assert stored["square_madd"] == 2e-11 and "flags" in stored["machine"]
    path.write_text("{not json")  # a damaged file is measured again, not trusted
    assert MachineCosts(path).square_madd == 2e-11 and calls == [1, 1]


def test_a_rate_taken_under_load_is_measured_again_keeping_the_fastest(tmp_path,
                                                                     monkeypatch):
    path = tmp_path / "costs.json"
    rates, shares = iter([4e-11, 6e-11, 2e-11, 9e-11]), iter([0.5, 0.5, 1.0, 0.5])
    monkeypatch.setitem(MEASUREMENTS, "square_madd", lambda: next(rates))
    monkeypatch.setattr(calibration, "machine_share", lambda: next(shares))
    assert MachineCosts(path).square_madd == 4e-11  # busy: used, and marked
    assert json.loads(path.read_text())["loaded"] == {"square_madd": 1}
    assert MachineCosts(path).square_madd == 4e-11  # busy again: the faster one is kept
    assert json.loads(path.read_text())["loaded"] == {"square_madd": 2}
    assert MachineCosts(path).square_madd == 2e-11  # quiet: settled
    assert json.loads(path.read_text())["loaded"] == {}
    assert MachineCosts(path).square_madd == 2e-11  # not measured again
    assert next(rates) == 9e-11


def test_an_always_busy_machine_stops_measuring_after_a_few_tries(tmp_path, monkeypatch):
    path, calls = tmp_path / "costs.json", []
    monkeypatch.setitem(MEASUREMENTS, "thin_madd", lambda: calls.append(1) or 1e-10)
    monkeypatch.setattr(calibration, "machine_share", lambda: 0.4)
    for _ in range(calibration.LOADED_RETRIES + 2):
        costs = MachineCosts(path)
        assert costs.thin_madd == costs.thin_madd == 1e-10  # once per object at most
    assert len(calls) == calibration.LOADED_RETRIES


def test_the_share_of_the_machine_is_a_fraction_of_its_cores():
    assert 0 < calibration.machine_share(0.02) <= 1.05  # clocks tick apart by a little


def test_the_real_measurements_are_rates():
    for name in ("square_madd", "thin_madd", "stream_item", "thread_handoff"):
        value = MEASUREMENTS[name]()
        assert 0 < value < 1, name
    assert MEASUREMENTS["square_madd"]() < MEASUREMENTS["thin_madd"]()  # BLAS's best case


def test_unknown_or_missing_costs_are_errors():
    with pytest.raises(TypeError, match="unknown costs"):
        MachineCosts(squre_madd=1.0)
    partial = MachineCosts(square_madd=1.0)
    with pytest.raises(AttributeError, match="thin_madd"):
        assert partial.thin_madd
