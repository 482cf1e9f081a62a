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
