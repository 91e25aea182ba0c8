"""Foreground activity: background work in the API process waits for requests to pause."""

from __future__ import annotations

import threading
import time

from memsvc.service.activity import ForegroundActivity


def _hold(activity: ForegroundActivity, seconds: float, started: threading.Event) -> None:
    with activity.request():
        started.set()
        time.sleep(seconds)


def test_idle_process_does_not_wait() -> None:
    activity = ForegroundActivity()
    assert activity.quiet_for() == float("inf")
    assert activity.wait_for_quiet(0.5, 10.0) < 0.01


def test_waits_until_the_request_ends_and_the_quiet_period_passes() -> None:
    activity = ForegroundActivity()
    started = threading.Event()
    worker = threading.Thread(target=_hold, args=(activity, 0.3, started))
    worker.start()
    started.wait(5)
    assert activity.quiet_for() == 0.0
    waited = activity.wait_for_quiet(0.2, 10.0)
    worker.join()
    # The request ran for 0.3 s after it started, then 0.2 s of quiet were required.
    assert waited >= 0.4
    assert activity.quiet_for() >= 0.2


def test_a_steady_stream_of_requests_cannot_starve_background_work() -> None:
    activity = ForegroundActivity()
    started = threading.Event()
    worker = threading.Thread(target=_hold, args=(activity, 2.0, started))
    worker.start()
    started.wait(5)
    waited = activity.wait_for_quiet(0.1, 0.3)
    assert 0.3 <= waited < 1.5
    assert activity.quiet_for() == 0.0  # the request is still running
    worker.join()


def test_shutdown_ends_the_wait() -> None:
    activity = ForegroundActivity()
    stop = threading.Event()
    started = threading.Event()
    worker = threading.Thread(target=_hold, args=(activity, 2.0, started))
    worker.start()
    started.wait(5)
    stop.set()
    assert activity.wait_for_quiet(0.1, 30.0, stop) < 1.0
    worker.join()
