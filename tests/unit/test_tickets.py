"""The upload tickets' token bucket: a burst at once, then the average rate."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from photocluster.errors import StoreCorrupt, UploadsThrottled
from photocluster.library.tickets import Allowance, TicketRate, UploadTickets
from photocluster.store import Store

RATE = TicketRate(per_minute=60, burst=3)


def test_a_burst_then_one_a_second() -> None:
    allowance = Allowance(3.0, 0.0)
    for _ in range(3):
        allowance = allowance.take(0.0, RATE)
    with pytest.raises(UploadsThrottled, match="60 a minute \\(3 at once\\): retry in 1 s") as e:
        allowance.take(0.5, RATE)
    assert e.value.retry_after_s == pytest.approx(0.5)
    allowance = allowance.take(1.0, RATE)
    assert allowance.left == pytest.approx(0.0)
    assert allowance.take(100.0, RATE).left == pytest.approx(2.0)  # refills to the burst only


def test_a_clock_that_goes_back_refills_nothing() -> None:
    with pytest.raises(UploadsThrottled):
        Allowance(0.0, 100.0).take(50.0, RATE)


@given(st.lists(st.floats(0, 10), min_size=1, max_size=200))
def test_no_schedule_gets_more_than_the_burst_and_the_rate(gaps: list[float]) -> None:
    allowance, now, taken = Allowance(float(RATE.burst), 0.0), 0.0, 0
    for gap in gaps:
        now += gap
        try:
            allowance = allowance.take(now, RATE)
            taken += 1
        except UploadsThrottled:
            pass
    assert taken <= RATE.burst + now * RATE.per_second + 1e-9


def test_the_allowance_is_kept_beside_the_users_files(tmp_path: Path) -> None:
    tickets = UploadTickets(Store(tmp_path, fsync=False), RATE, fsync=False)
    tickets.store.paths("alice").tickets.parent.mkdir(parents=True)
    for _ in range(3):
        tickets.take("alice", 10.0)
    with pytest.raises(UploadsThrottled):
        UploadTickets(Store(tmp_path, fsync=False), RATE).take("alice", 10.0)  # another process
    tickets.path("alice").write_text('{"format": 1, "left": NaN, "at": 0}')
    with pytest.raises(StoreCorrupt):
        tickets.take("alice", 11.0)
