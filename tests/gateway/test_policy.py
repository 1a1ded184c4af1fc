"""The carrier outcome policy: submit statuses, receipts, the retry budget and the one backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carriers.smpp import constants as smpp
from carriers.smpp.receipts import DELIVERED_STAT, FINAL_STATS, is_final_stat
from gateway.engine import policy
from gateway.engine.policy import (
    CarrierPolicy,
    SubmitOutcome,
    SubmitVerdict,
    backoff_delay,
    classify_receipt,
    classify_submit,
    decide_submit_failure,
    receipt_cutoff,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
POLICY = CarrierPolicy(
    max_attempts=3, retry_base=2.0, retry_max=30.0, throttle_base=0.5, throttle_max=4.0
)

# --- classify_submit ------------------------------------------------------------------------

_STANDARD_PERMANENT = [
    smpp.ESME_RINVMSGLEN,
    smpp.ESME_RINVCMDLEN,
    smpp.ESME_RINVCMDID,
    smpp.ESME_RALYBND,
    smpp.ESME_RINVPRTFLG,
    smpp.ESME_RINVREGDLVFLG,
    smpp.ESME_RINVMSGID,
    smpp.ESME_RINVSERTYP,
    smpp.ESME_RINVESMCLASS,
    smpp.ESME_RSUBMITFAIL,
    smpp.ESME_RINVSRCTON,
    smpp.ESME_RINVDSTNPI,
    smpp.ESME_RINVSCHED,
    smpp.ESME_RINVEXPIRY,
    smpp.ESME_RX_P_APPN,
    smpp.ESME_RINVOPTPARSTREAM,
    smpp.ESME_RMISSINGOPTPARAM,
    smpp.ESME_RDELIVERYFAILURE,
    smpp.ESME_RUNKNOWNERR,
    smpp.ESME_RPROHIBITED,
]


@pytest.mark.parametrize(
    ("status", "verdict", "code"),
    [
        (smpp.ESME_ROK, SubmitVerdict.ACCEPTED, None),
        # throttling: slow down, never spends the budget
        (smpp.ESME_RTHROTTLED, SubmitVerdict.THROTTLED, 30001),
        (smpp.ESME_RMSGQFUL, SubmitVerdict.THROTTLED, 30001),
        # transient: retried, counted
        (smpp.ESME_RSYSERR, SubmitVerdict.RETRY, 30008),
        (smpp.ESME_RX_T_APPN, SubmitVerdict.RETRY, 30008),
        (smpp.ESME_RINVBNDSTS, SubmitVerdict.RETRY, 30008),
        # permanent with a precise Twilio code
        (smpp.ESME_RINVDSTADR, SubmitVerdict.FAILED, 30005),
        (smpp.ESME_RINVSRCADR, SubmitVerdict.FAILED, 30007),
        (smpp.ESME_RX_R_APPN, SubmitVerdict.FAILED, 30007),
        # every other standard status, the vendor range (0x400-0x4FF) and reserved values
        *((status, SubmitVerdict.FAILED, 30008) for status in _STANDARD_PERMANENT),
        (0x0400, SubmitVerdict.FAILED, 30008),
        (0x0458, SubmitVerdict.FAILED, 30008),
        (0x04FF, SubmitVerdict.FAILED, 30008),
        (0x0009, SubmitVerdict.FAILED, 30008),  # reserved
    ],
)
def test_submit_statuses_map_to_verdicts(status, verdict, code):
    outcome = classify_submit(status)
    assert outcome.verdict is verdict
    assert outcome.error_code == code


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (smpp.ESME_RINVDSTADR, "ESME_RINVDSTADR"),
        (smpp.ESME_RTHROTTLED, "ESME_RTHROTTLED"),
        (smpp.ESME_RSYSERR, "ESME_RSYSERR"),
        (0x0458, "0x00000458"),
    ],
)
def test_submit_error_message_names_the_raw_status(status, name):
    assert name in classify_submit(status).error_message


# --- classify_receipt: finality is the carrier layer's, codes are ours ------------------------


@pytest.mark.parametrize(
    ("stat", "final", "delivered", "code"),
    [
        ("DELIVRD", True, True, None),
        ("delivrd", True, True, None),
        ("UNDELIV", True, False, 30003),
        ("EXPIRED", True, False, 30003),
        ("REJECTD", True, False, 30007),
        ("DELETED", True, False, 30008),
        ("UNKNOWN", True, False, 30008),  # SMPP 3.4 §5.2.28: final; the outcome is not known
        ("ENROUTE", False, False, None),
        ("ACCEPTD", False, False, None),  # carriers send it before the real outcome
        ("BUFFRED", False, False, None),  # a vendor word says nothing we can report
        ("", False, False, None),
        (None, False, False, None),  # a receipt without a stat
    ],
)
def test_receipt_stats(stat, final, delivered, code):
    outcome = classify_receipt(stat)
    assert (outcome.final, outcome.delivered, outcome.error_code) == (final, delivered, code)


def test_receipt_finality_is_the_carrier_layers_definition():
    words = [*FINAL_STATS, "ENROUTE", "ACCEPTD", "UNKNOWN", "junk", None]
    for stat in words:
        assert classify_receipt(stat).final == is_final_stat(stat), stat


def test_every_final_failure_stat_has_a_twilio_code():
    for stat in FINAL_STATS - {DELIVERED_STAT}:
        verdict = classify_receipt(stat)
        assert verdict.final and not verdict.delivered
        assert verdict.error_code in (30003, 30007, 30008), stat


# --- backoff_delay --------------------------------------------------------------------------


def test_backoff_grows_and_is_capped():
    class Top(random.Random):
        def random(self) -> float:
            return 1.0  # the upper edge of the jitter: the nominal delay

    delays = [backoff_delay(n, 1.0, 60.0, Top()) for n in range(1, 10)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]


def test_backoff_is_jittered_over_the_upper_half():
    rng = random.Random(7)
    delays = {backoff_delay(3, 1.0, 60.0, rng) for _ in range(200)}
    assert min(delays) >= 2.0 and max(delays) <= 4.0
    assert max(delays) - min(delays) > 1.0  # spread, not a constant


@given(
    attempt=st.integers(min_value=-5, max_value=10_000),
    base=st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    ceiling=st.floats(min_value=0.0, max_value=1e7, allow_nan=False),
    draw=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_backoff_is_bounded_by_the_ceiling_and_half_the_nominal_delay(attempt, base, ceiling, draw):
    class Fixed(random.Random):
        def random(self) -> float:
            return draw

    delay = backoff_delay(attempt, base, ceiling, Fixed())
    nominal = min(ceiling, base * 2.0 ** min(max(attempt - 1, 0), 62))
    assert nominal / 2 <= delay <= ceiling
    assert delay <= nominal


def test_backoff_refuses_negative_parameters():
    with pytest.raises(ValueError, match="must be >= 0"):
        backoff_delay(1, -1.0, 10.0, random.Random())


def test_the_engine_and_the_smpp_client_share_one_backoff_function():
    from carriers import backoff
    from carriers.smpp import client

    assert policy.backoff_delay is backoff.backoff_delay is client.backoff_delay


# --- decide_submit_failure ------------------------------------------------------------------

THROTTLED = classify_submit(smpp.ESME_RTHROTTLED)
QUEUE_FULL = classify_submit(smpp.ESME_RMSGQFUL)
TRANSIENT = classify_submit(smpp.ESME_RSYSERR)
PERMANENT = classify_submit(smpp.ESME_RINVDSTADR)


def decide(outcome, attempts, **kw):
    kw.setdefault("policy", POLICY)
    kw.setdefault("rng", random.Random(1))
    return decide_submit_failure(outcome, attempts=attempts, now=NOW, **kw)


@pytest.mark.parametrize(
    ("outcome", "attempts", "retries", "counts", "code"),
    [
        (TRANSIENT, 1, True, True, 30008),
        (TRANSIENT, 2, True, True, 30008),
        (TRANSIENT, 3, False, True, 30008),  # budget spent
        (TRANSIENT, 4, False, True, 30008),
        (None, 1, True, True, 30008),  # no answer: transient, counted
        (None, 3, False, True, 30008),
        (PERMANENT, 1, False, True, 30005),  # fails at once, budget or not
        (THROTTLED, 1, True, False, 30001),
        (THROTTLED, 3, True, False, 30001),  # never exhausted
        (THROTTLED, 1000, True, False, 30001),
        (QUEUE_FULL, 50, True, False, 30001),
    ],
)
def test_submit_failure_decisions(outcome, attempts, retries, counts, code):
    decision = decide(outcome, attempts)
    assert (decision.retry_at is not None) == retries
    assert decision.permanent == (not retries)
    assert decision.counts_attempt is counts
    assert decision.error_code == code


def test_retries_back_off_within_the_retry_scale():
    for attempts, (low, high) in {1: (1.0, 2.0), 2: (2.0, 4.0)}.items():
        decision = decide(TRANSIENT, attempts)
        delay = (decision.retry_at - NOW).total_seconds()
        assert low <= delay <= high, (attempts, delay)


def test_throttling_waits_on_its_own_steady_scale():
    delays = [
        (decide(THROTTLED, attempts, rng=random.Random(n)).retry_at - NOW).total_seconds()
        for n, attempts in enumerate([1, 2, 3, 50])
    ]
    assert all(0.25 <= d <= 0.5 for d in delays), delays  # throttle_base, whatever the attempts


def test_throttling_that_persists_may_grow_up_to_throttle_max():
    decision = decide(THROTTLED, 1, throttles=100)
    assert 2.0 <= (decision.retry_at - NOW).total_seconds() <= 4.0


def test_exhausted_retries_say_after_how_many_attempts_and_why():
    decision = decide(TRANSIENT, 3)
    assert decision.error_message == (
        "Retries exhausted after 3 attempts: Carrier temporary error (ESME_RSYSERR)."
    )
    single = decide(None, 1, policy=CarrierPolicy(max_attempts=1), reason="no submit_sm_resp")
    assert single.error_message == "Retries exhausted after 1 attempt: no submit_sm_resp"


def test_uncertain_submit_takes_the_callers_reason_and_code():
    decision = decide(None, 1, reason="uncertain, duplicate possible: timeout", error_code=30009)
    assert decision.error_message == "uncertain, duplicate possible: timeout"
    assert decision.error_code == 30009 and decision.counts_attempt
    assert decide(None, 1).error_message == "No answer from the carrier."


def test_permanent_failure_keeps_the_outcomes_message():
    decision = decide(PERMANENT, 1)
    assert decision.retry_at is None
    assert "ESME_RINVDSTADR" in decision.error_message


def test_an_accepted_submit_is_not_a_failure():
    with pytest.raises(ValueError, match="accepted"):
        decide(SubmitOutcome(SubmitVerdict.ACCEPTED), 1)


@given(
    attempts=st.integers(min_value=1, max_value=500),
    max_attempts=st.integers(min_value=1, max_value=50),
    status=st.sampled_from(
        [smpp.ESME_RTHROTTLED, smpp.ESME_RMSGQFUL, smpp.ESME_RSYSERR, smpp.ESME_RX_T_APPN, None]
    ),
    throttles=st.integers(min_value=1, max_value=1000),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_decisions_are_bounded_by_the_ceilings(attempts, max_attempts, status, throttles, seed):
    limits = CarrierPolicy(
        max_attempts=max_attempts,
        retry_base=1.5,
        retry_max=120.0,
        throttle_base=0.2,
        throttle_max=3.0,
    )
    outcome = classify_submit(status) if status is not None else None
    decision = decide(
        outcome, attempts, policy=limits, rng=random.Random(seed), throttles=throttles
    )
    throttled = outcome is not None and outcome.verdict is SubmitVerdict.THROTTLED
    if throttled:
        assert decision.retry_at is not None and not decision.counts_attempt
        assert timedelta(0) < decision.retry_at - NOW <= timedelta(seconds=3.0)
    elif attempts >= max_attempts:
        assert decision.retry_at is None and decision.counts_attempt
        assert f"after {attempts} attempt" in decision.error_message
    else:
        assert decision.retry_at is not None and decision.counts_attempt
        assert timedelta(0) < decision.retry_at - NOW <= timedelta(seconds=120.0)


# --- CarrierPolicy --------------------------------------------------------------------------


def test_policy_defaults():
    default = CarrierPolicy()
    assert (default.max_attempts, default.retry_base, default.retry_max) == (10, 2.0, 300.0)
    assert default.throttle_base < default.retry_max
    assert default.receipt_window == 72 * 3600


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
        ({"retry_base": 0}, "need 0 < retry_base <= retry_max"),
        ({"retry_base": 10.0, "retry_max": 5.0}, "need 0 < retry_base <= retry_max"),
        ({"throttle_base": 20.0}, "need 0 < throttle_base <= throttle_max"),
        ({"receipt_window": 0}, "receipt_window must be positive"),
    ],
)
def test_policy_refuses_impossible_values(fields, message):
    with pytest.raises(ValueError, match=message):
        CarrierPolicy(**fields)


def test_receipt_cutoff_is_the_window_before_now():
    assert receipt_cutoff(NOW, CarrierPolicy(receipt_window=3600)) == NOW - timedelta(hours=1)


# --- pinned outcomes (each test fails if its mapping regresses) ----------------------------


def _settle(stats):
    """The first final verdict among receipts for one message, as the store applies them (the
    first final answer wins, later ones are history), or None if none was final."""
    for stat in stats:
        verdict = classify_receipt(stat)
        if verdict.final:
            return verdict
    return None


def test_acceptd_then_delivrd_settles_the_message_as_delivered():
    """Were ACCEPTD final, the DELIVRD after it would be filed as late and the customer told
    "undelivered" (or, delivered=False with no code, worse) about a message that arrived."""
    accepted = classify_receipt("ACCEPTD")
    assert (accepted.final, accepted.delivered, accepted.error_code) == (False, False, None)
    settled = _settle(["ENROUTE", "ACCEPTD", "acceptd", "DELIVRD", "UNDELIV"])
    assert settled is not None
    assert (settled.final, settled.delivered, settled.error_code) == (True, True, None)
    assert _settle(["ACCEPTD"]) is None  # still `sent`, waiting for the real outcome


def test_an_accepted_receipt_parsed_from_the_wire_form_is_not_final():
    from carriers.smpp.pdus import DeliverSm, Tlv
    from carriers.smpp.receipts import parse_receipt

    by_text = parse_receipt(
        DeliverSm(
            esm_class=smpp.ESM_CLASS_SMSC_DELIVERY_RECEIPT, short_message=b"id:1 stat:ACCEPTD"
        )
    )
    by_state = parse_receipt(
        DeliverSm(
            esm_class=smpp.ESM_CLASS_SMSC_DELIVERY_RECEIPT,
            tlvs=(Tlv(smpp.RECEIPTED_MESSAGE_ID, b"1\0"), Tlv(smpp.MESSAGE_STATE, b"\x06")),
        )
    )
    for receipt in (by_text, by_state):
        assert receipt.stat == "ACCEPTD"
        assert not classify_receipt(receipt.stat).final


def test_an_sme_acknowledgement_never_settles_a_message():
    """esm_class 0x08/0x10 come from the handset: even a DELIVRD text in them is not final."""
    from carriers.smpp.pdus import DeliverSm, Tlv
    from carriers.smpp.receipts import parse_receipt

    for esm_class in (smpp.ESM_CLASS_SME_DELIVERY_ACK, smpp.ESM_CLASS_SME_MANUAL_ACK):
        ack = parse_receipt(
            DeliverSm(
                esm_class=esm_class,
                short_message=b"id:1 stat:DELIVRD err:000",
                tlvs=(Tlv(smpp.RECEIPTED_MESSAGE_ID, b"1\0"),),
            )
        )
        assert ack is not None and ack.message_id == "1"
        verdict = classify_receipt(ack.stat)
        assert (verdict.final, verdict.delivered, verdict.error_code) == (False, False, None)


def test_incorrect_bind_status_is_a_session_problem_retried_not_a_failed_message():
    """ESME_RINVBNDSTS (0x04): the bind is wrong, not the message; retried after a rebind."""
    outcome = classify_submit(0x00000004)
    assert outcome.verdict is SubmitVerdict.RETRY
    assert outcome.error_code == 30008
    assert "ESME_RINVBNDSTS" in outcome.error_message
    first = decide(outcome, 1)
    assert not first.permanent and first.retry_at is not None and first.retry_at > NOW
    assert first.counts_attempt  # a bind that stays wrong must not retry it forever
    assert decide(outcome, POLICY.max_attempts).permanent  # ...only after the whole budget


@pytest.mark.parametrize(
    ("status", "name", "code", "says"),
    [
        # A sender the carrier refuses once the message was accepted is carrier filtering
        # (30007). 21212 "Invalid From Number" is the API's answer at accept (routing's
        # InvalidSender), never a delivery outcome.
        (0x0000000A, "ESME_RINVSRCADR", 30007, "source address"),
        # "ESME receiver reject": the SMSC's application refused it for good (filtered).
        (0x00000066, "ESME_RX_R_APPN", 30007, "rejected"),
    ],
)
def test_permanent_carrier_refusals_have_pinned_twilio_codes(status, name, code, says):
    outcome = classify_submit(status)
    assert outcome.verdict is SubmitVerdict.FAILED
    assert outcome.error_code == code
    assert outcome.error_code not in (21212, 30008)
    assert says in outcome.error_message and name in outcome.error_message
    decision = decide(outcome, 1)
    assert decision.permanent and decision.retry_at is None
    assert decision.error_code == code


def test_the_temporary_and_permanent_application_errors_are_told_apart():
    """0x64 ESME_RX_T_APPN is retried; 0x65 ESME_RX_P_APPN and 0x66 ESME_RX_R_APPN are not."""
    assert classify_submit(0x64).verdict is SubmitVerdict.RETRY
    assert (classify_submit(0x65).verdict, classify_submit(0x65).error_code) == (
        SubmitVerdict.FAILED,
        30008,
    )
    assert (classify_submit(0x66).verdict, classify_submit(0x66).error_code) == (
        SubmitVerdict.FAILED,
        30007,
    )
