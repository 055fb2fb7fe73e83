import pytest

from activeprop.row_steps import row_steps


@pytest.mark.parametrize("n_rows, step, start", [(10, 3, 0), (9, 3, 0), (10, 3, 4),
                                                  (2, 5, 0), (0, 4, 0), (7, 7, 7)])
def test_the_steps_cover_each_row_once_in_order_and_stop_at_the_end(n_rows, step, start):
    slices = list(row_steps(n_rows, step, start=start))
    covered = [row for rows in slices for row in range(rows.start, rows.stop)]
    assert covered == list(range(start, n_rows))
    assert all(rows.stop - rows.start == step for rows in slices[:-1])
    assert all(0 < rows.stop - rows.start <= step and rows.stop <= n_rows for rows in slices)


def test_a_step_below_one_row_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        list(row_steps(10, 0))
