"""The labeling session's background work: jobs after the answer, one waiting for a pause."""

import threading
import time

from activeprop.background import BackgroundWork


def test_the_job_waiting_for_a_pause_is_the_last_calls_and_runs_once():
    work = BackgroundWork(quiet_seconds=30)
    ran = []
    for call in range(5):
        work.when_quiet(ran.append, call)
    assert ran == []  # no pause yet
    work.catch_up()  # as if the pause had come
    assert ran == [4]
    work.catch_up()
    assert ran == [4]  # nothing waits any more
    work.close()


def test_a_timer_that_ends_after_a_catch_up_runs_nothing_again():
    """The timer's thread can reach its end after catch_up took its job (cancelled while
    it was already firing, or not yet ended): the job runs once. (catch_up submitted the
    job again whenever the timer's thread was still alive: CI saw [4, 4].)"""
    work = BackgroundWork(quiet_seconds=30)
    ran = []
    work.when_quiet(ran.append, "point")
    timer = work._timer
    work.catch_up()
    timer.function(*timer.args)  # its end, as if the cancel had come too late
    work.catch_up()
    assert ran == ["point"]
    work.close()


def test_a_pause_runs_the_last_calls_job_by_itself_and_only_it():
    work = BackgroundWork(quiet_seconds=0.5)
    ran = []
    for call in range(5):
        work.when_quiet(ran.append, call)  # each call replaces the one before
    deadline = time.monotonic() + 20
    while not ran and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # the replaced calls' waits would have ended by now
    assert ran == [4]
    work.close()


def test_jobs_run_in_order_and_the_density_beside_them():
    """A density job runs while the other worker is busy (a queue waiting for the density
    must not wait behind jobs that wait for the queue's lock)."""
    work = BackgroundWork(quiet_seconds=30)
    busy, order = threading.Event(), []
    work.submit(busy.wait, 20)
    work.submit(order.append, "after the busy job")
    assert work.submit_awaited(lambda: "density").result(timeout=20) == "density"
    assert order == []
    busy.set()
    work.catch_up()
    assert order == ["after the busy job"]
    work.close()


def test_closing_drops_the_job_still_waiting_for_a_pause():
    work = BackgroundWork(quiet_seconds=0.05)
    ran = []
    work.when_quiet(ran.append, "point")
    work.close()
    time.sleep(0.2)  # past the pause: the timer was cancelled, and nothing may start
    assert ran == []
