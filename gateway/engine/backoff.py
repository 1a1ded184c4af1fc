"""Exponential backoff with jitter, shared by message retries and webhook retries."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base: float, ceiling: float, rng: random.Random) -> float:
    """Seconds before retry number `attempt` (1-based): base·2^(attempt-1), capped, ±50 % jitter.

    The jitter spreads retries of a burst that failed together (a carrier outage) so they do not
    all return at the same instant.
    """
    exponent = min(max(attempt - 1, 0), 30)
    return min(ceiling, base * (2**exponent)) * (0.5 + rng.random())
