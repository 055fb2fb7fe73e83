"""The compiled loop that widens an (n, k) array with room in place
(:func:`activeprop.column_room.widened`), in a module of its own so that numba is imported
only by a process that widens one. Compiled on first use and cached on disk for the next
process."""

from numba import njit


@njit(cache=True, nogil=True)
def widen_rows(buffer, n, k, width, positions):
    """Move row i of an (n, k) array at the front of ``buffer`` to its place in an
    (n, width) one, its columns to ``positions``, the other columns zero; rows last to
    first and, within a row, columns last to first (a value's new place is never before
    its old one, and every value still to be moved lies before the one being written)."""
    for row in range(n - 1, -1, -1):
        old, new = row * k, row * width
        column = width - 1
        for j in range(k - 1, -1, -1):
            while column > positions[j]:
                buffer[new + column] = 0.0
                column -= 1
            buffer[new + column] = buffer[old + j]
            column -= 1
        while column >= 0:
            buffer[new + column] = 0.0
            column -= 1
