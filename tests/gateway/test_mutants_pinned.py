"""Behaviour the mutation tester (tests/mutate.py) found unpinned in the carrier policy."""

from __future__ import annotations

import pytest

from gateway.engine.policy import CarrierPolicy


def test_a_base_may_equal_its_ceiling():
    policy = CarrierPolicy(retry_base=5.0, retry_max=5.0, throttle_base=2.0, throttle_max=2.0)
    assert (policy.retry_base, policy.retry_max) == (5.0, 5.0)
    assert (policy.throttle_base, policy.throttle_max) == (2.0, 2.0)


def test_bases_below_one_second_are_allowed():
    assert CarrierPolicy(retry_base=0.5, throttle_base=0.25).retry_base == 0.5


@pytest.mark.parametrize("window", [0.5, 1.0])
def test_any_positive_receipt_window_is_allowed(window):
    assert CarrierPolicy(receipt_window=window).receipt_window == window


@pytest.mark.parametrize("window", [0.0, -1.0])
def test_a_receipt_window_that_is_not_positive_is_refused(window):
    with pytest.raises(ValueError, match="receipt_window must be positive"):
        CarrierPolicy(receipt_window=window)
