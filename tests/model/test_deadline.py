"""Cooperative deadlines: the primitive every long loop checks."""

from __future__ import annotations

import time

import pytest

from claimant.model import deadline
from claimant.model.errors import DeadlineExceeded


def test_no_deadline_never_cuts() -> None:
    assert deadline.current() is None
    deadline.check("anything")
    assert deadline.remaining() is None


def test_expired_deadline_raises_with_what_was_being_done() -> None:
    with deadline.deadline(0.01, "listing providers"):
        time.sleep(0.02)
        with pytest.raises(DeadlineExceeded) as err:
            deadline.check()
    assert err.value.code == "deadline_exceeded"
    assert "listing providers" in err.value.message
    assert err.value.details["reason"] == "deadline"
    assert deadline.current() is None


def test_cancel_stops_work_at_the_next_check() -> None:
    with deadline.deadline(60, "candidate search") as d:
        deadline.check()
        assert d is not None
        d.cancel()
        with pytest.raises(DeadlineExceeded) as err:
            deadline.check("weighing")
    assert err.value.details["reason"] == "cancelled"


def test_inner_deadline_never_outlives_the_outer_one() -> None:
    with deadline.deadline(0.01, "request"), deadline.deadline(60, "store query"):
        time.sleep(0.02)
        with pytest.raises(DeadlineExceeded):
            deadline.check()


def test_cancel_of_outer_reaches_inner() -> None:
    with deadline.deadline(60, "request") as outer, deadline.deadline(30, "search"):
        assert outer is not None
        outer.cancel()
        with pytest.raises(DeadlineExceeded):
            deadline.check()


def test_zero_or_none_means_no_deadline() -> None:
    with deadline.deadline(None):
        deadline.check()
    with deadline.deadline(0):
        deadline.check()


def test_shielded_work_runs_past_the_deadline() -> None:
    with deadline.deadline(0.01, "request") as d:
        time.sleep(0.02)
        with deadline.shielded():
            deadline.check("giving claims back")
            assert deadline.remaining() is None
        with pytest.raises(DeadlineExceeded):
            deadline.check()
    assert d is not None and d.tripped is not None


def test_the_first_cut_is_remembered_on_every_enclosing_deadline() -> None:
    with deadline.deadline(60, "request") as outer, deadline.deadline(0.01, "search") as inner:
        time.sleep(0.02)
        with pytest.raises(DeadlineExceeded) as err:
            deadline.check("weighing")
    assert inner is not None and outer is not None
    assert inner.tripped is err.value and outer.tripped is err.value
    assert "weighing (search)" in err.value.message


def test_remaining_never_exceeds_the_outer_deadline_and_is_zero_once_cancelled() -> None:
    with deadline.deadline(0.5, "request") as outer, deadline.deadline(60, "query"):
        left = deadline.remaining()
        assert left is not None and left <= 0.5
        assert outer is not None
        outer.cancel("server shutting down")
        assert deadline.remaining() == 0.0


def test_entered_runs_under_a_deadline_made_elsewhere() -> None:
    d = deadline.Deadline(60, "POST /v1/requests")
    d.cancel()
    with deadline.entered(d), pytest.raises(DeadlineExceeded):
        deadline.check()
    assert deadline.current() is None
