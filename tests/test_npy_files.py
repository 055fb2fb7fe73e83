"""numpy's files read from several threads at once (python/cpython#106905: numpy parses each
header with ast, and CPython 3.11 counts the AST constructor's depth per interpreter)."""

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import activeprop
from activeprop import npy_files


def test_files_read_on_many_threads_at_once_come_back_whole(tmp_path):
    rows = np.arange(60.0).reshape(20, 3)
    np.save(tmp_path / "rows.npy", rows)
    np.savez(tmp_path / "both.npz", X=rows, y=np.arange(20))

    def read(_):
        with npy_files.opened(tmp_path / "both.npz") as arrays:
            both = arrays["X"], arrays["y"]
        return npy_files.load(tmp_path / "rows.npy", mmap_mode="r"), *both

    with ThreadPoolExecutor(8) as threads:
        for loaded, X, y in threads.map(read, range(200)):
            assert np.array_equal(loaded, rows) and np.array_equal(X, rows)
            assert np.array_equal(y, np.arange(20))


def test_the_package_reads_numpys_files_only_through_npy_files():
    """A direct ``np.load`` would parse its headers beside another thread's again."""
    package = Path(activeprop.__file__).parent
    direct = [f"{path.relative_to(package)}:{number}"
              for path in package.rglob("*.py") if path.name != "npy_files.py"
              for number, line in enumerate(path.read_text().splitlines(), 1)
              if re.search(r"\b(np|numpy)\.load\(", line)]
    assert not direct, direct
