import random

import pytest

from carriers.smpp import constants as smpp
from gateway.engine.backoff import backoff_delay
from gateway.engine.outcomes import SubmitVerdict, classify_receipt, classify_submit


@pytest.mark.parametrize(
    ("status", "verdict", "code"),
    [
        (smpp.ESME_ROK, SubmitVerdict.ACCEPTED, None),
        (smpp.ESME_RTHROTTLED, SubmitVerdict.THROTTLED, 30001),
        (smpp.ESME_RMSGQFUL, SubmitVerdict.THROTTLED, 30001),
        (smpp.ESME_RSYSERR, SubmitVerdict.RETRY, 30008),
        (smpp.ESME_RINVDSTADR, SubmitVerdict.FAILED, 30005),
        (0x0458, SubmitVerdict.FAILED, 30008),  # vendor-specific value
    ],
)
def test_submit_statuses_map_to_verdicts(status, verdict, code):
    outcome = classify_submit(status)
    assert outcome.verdict is verdict
    assert outcome.error_code == code


def test_failed_submit_message_names_the_raw_status():
    assert "0x0000000B" in classify_submit(smpp.ESME_RINVDSTADR).error_message.upper() or (
        "RINVDSTADR" in classify_submit(smpp.ESME_RINVDSTADR).error_message
    )


@pytest.mark.parametrize(
    ("stat", "final", "delivered", "code"),
    [
        ("DELIVRD", True, True, None),
        ("delivrd", True, True, None),
        ("UNDELIV", True, False, 30003),
        ("REJECTD", True, False, 30007),
        ("EXPIRED", True, False, 30003),
        ("ENROUTE", False, False, None),
        (None, True, False, 30008),
    ],
)
def test_receipt_stats(stat, final, delivered, code):
    outcome = classify_receipt(stat)
    assert (outcome.final, outcome.delivered, outcome.error_code) == (final, delivered, code)


def test_backoff_grows_is_capped_and_jittered():
    rng = random.Random(7)
    delays = [backoff_delay(n, 1.0, 60.0, rng) for n in range(1, 12)]
    assert 0.5 <= delays[0] <= 1.5
    assert all(d <= 90.0 for d in delays)
    assert delays[5] > delays[0]
