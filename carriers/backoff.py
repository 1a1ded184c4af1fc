"""Exponential backoff with "equal jitter": the one retry-delay function of smsgw.

It lives at the bottom of the import graph so that every layer waits the same way: the SMPP
client between reconnects (``carriers/`` may import nothing of ``gateway/``), and the delivery
engine and the webhook sender between retries (they reach it through
:mod:`gateway.engine.policy`). Pure: the random source is an argument, so tests drive it.
"""

from __future__ import annotations

import random

_MAX_EXPONENT = 62  # 2**62 already dwarfs any ceiling; larger would only overflow a float later


def backoff_delay(attempt: int, base: float, ceiling: float, rng: random.Random) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): ``base·2^(attempt-1)`` capped
    at ``ceiling``, then "equal jitter": half of it fixed, half drawn from ``rng``.

    Why equal jitter (``d/2 + U(0, d/2)``) rather than the ±50 % the engine used before or AWS's
    "full jitter" (``U(0, d)``):

    * The result never exceeds ``ceiling``: ``retry_max = 300`` in the configuration means five
      minutes, not seven and a half.
    * It never drops below half the nominal delay: with full jitter a message retried after an
      error could come back almost at once, which is exactly what a struggling carrier (or a
      webhook receiver that answers 503) must not see.
    * Half the interval is still random, which is enough to spread a burst that failed together
      (a carrier outage, a fleet of gateways losing the same SMSC) so it does not return in
      lockstep.

    ``attempt`` below 1 counts as 1.
    """
    if base < 0 or ceiling < 0:
        raise ValueError(f"base and ceiling must be >= 0, got {base} and {ceiling}")
    exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
    nominal = min(ceiling, base * 2.0**exponent)
    return nominal / 2 + rng.random() * nominal / 2
