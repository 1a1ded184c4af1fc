"""The sans-IO ESME session, driven by bytes and explicit times: no sockets, no sleeps."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from carriers.smpp import constants as c
from carriers.smpp.codec import FrameReader, decode, encode
from carriers.smpp.errors import LocalProtocolError, NotBound, PduEncodeError, WindowFull
from carriers.smpp.events import (
    BindFailed,
    Bound,
    DeliverReceived,
    LateSubmitResponse,
    LateWindowClosed,
    Notified,
    PeerUnbound,
    ProtocolError,
    QueryAnswered,
    QueryFailed,
    RequestRefused,
    RequestTimedOut,
    SubmitAccepted,
    SubmitRejected,
    Unbound,
    UnmatchedResponse,
)
from carriers.smpp.pdus import (
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitterResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    Unbind,
    UnbindResp,
    UnknownPdu,
)
from carriers.smpp.session import MAX_SEQUENCE, BindState, Session

MESSAGE = SubmitSm(destination_addr="447700900123", short_message=b"hi")


def sent(session):
    """The PDUs the session wants written, decoded."""
    reader = FrameReader()
    reader.feed(session.data_to_send())
    return [decode(frame) for frame in reader]


def events(session):
    out = []
    while (event := session.next_event()) is not None:
        out.append(event)
    return out


def bound_session(kind="transceiver", **options):
    session = Session(**options)
    seq = session.bind(kind, "smsgw", "secret", now=0.0)
    session.data_to_send()
    resp = {"transceiver": BindTransceiverResp, "transmitter": BindTransmitterResp}[kind]
    session.receive_data(encode(resp(sequence_number=seq, system_id="SMSC")), now=0.0)
    assert events(session) == [Bound("SMSC")]
    return session


def test_bind_sends_the_bind_pdu_and_reports_bound():
    session = Session()
    seq = session.bind("transceiver", "smsgw", "secret", system_type="X", now=0.0)
    (pdu,) = sent(session)
    assert pdu == BindTransceiver(
        sequence_number=seq, system_id="smsgw", password="secret", system_type="X"
    )
    assert session.state is BindState.BINDING and not session.bound
    session.receive_data(encode(BindTransceiverResp(sequence_number=seq, system_id="SMSC")))
    assert events(session) == [Bound("SMSC")]
    assert session.state is BindState.BOUND_TRX and session.bound


def test_bind_refused_reports_status_and_returns_to_open():
    session = Session()
    seq = session.bind("transmitter", "smsgw", "wrong", now=0.0)
    session.receive_data(
        encode(BindTransmitterResp(sequence_number=seq, command_status=c.ESME_RINVPASWD))
    )
    assert events(session) == [BindFailed(c.ESME_RINVPASWD)]
    assert session.state is BindState.OPEN


def test_bind_answered_by_generic_nack_fails():
    session = Session()
    seq = session.bind("receiver", "smsgw", "pw", now=0.0)
    session.receive_data(encode(GenericNack(sequence_number=seq, command_status=c.ESME_RINVCMDID)))
    assert events(session) == [BindFailed(c.ESME_RINVCMDID)]


def test_bind_rejects_bad_arguments_without_state_change():
    session = Session()
    with pytest.raises(ValueError, match="kind"):
        session.bind("sideways", "a", "b", now=0.0)
    with pytest.raises(PduEncodeError, match="password"):
        session.bind("transmitter", "a", "much-too-long", now=0.0)
    assert session.state is BindState.OPEN and session.outstanding == 0
    session.bind("transmitter", "a", "b", now=0.0)
    with pytest.raises(LocalProtocolError):
        session.bind("transmitter", "a", "b", now=0.0)


def test_submit_before_bound_is_refused():
    session = Session()
    with pytest.raises(NotBound):
        session.submit(MESSAGE, now=0.0)
    rx = bound_session("transceiver")
    rx.state = BindState.BOUND_RX  # a receiver bind may not submit either
    with pytest.raises(NotBound):
        rx.submit(MESSAGE, now=0.0)


def test_submit_assigns_sequence_numbers_and_matches_responses():
    session = bound_session()
    first = session.submit(MESSAGE, now=1.0)
    second = session.submit(MESSAGE, now=1.0)
    assert second == first + 1
    pdus = sent(session)
    assert [p.sequence_number for p in pdus] == [first, second]
    assert pdus[0] == SubmitSm(
        sequence_number=first, destination_addr="447700900123", short_message=b"hi"
    )
    session.receive_data(
        encode(SubmitSmResp(sequence_number=second, command_status=c.ESME_RTHROTTLED))
        + encode(SubmitSmResp(sequence_number=first, message_id="abc"))
    )
    assert events(session) == [
        SubmitRejected(second, c.ESME_RTHROTTLED),
        SubmitAccepted(first, "abc"),
    ]
    assert session.window_free == session.window


def test_window_full_until_a_response_frees_a_slot():
    session = bound_session(window=2)
    a = session.submit(MESSAGE, now=0.0)
    session.submit(MESSAGE, now=0.0)
    assert session.window_free == 0
    with pytest.raises(WindowFull):
        session.submit(MESSAGE, now=0.0)
    session.enquire_link(now=0.0)  # control requests do not need a window slot
    session.receive_data(encode(SubmitSmResp(sequence_number=a, message_id="1")))
    assert session.window_free == 1
    session.submit(MESSAGE, now=0.0)


def test_invalid_submit_consumes_nothing():
    session = bound_session(window=1)
    with pytest.raises(PduEncodeError):
        session.submit(SubmitSm(destination_addr="x" * 30), now=0.0)
    with pytest.raises(TypeError):
        session.submit(DeliverSm(), now=0.0)
    assert session.window_free == 1 and session.data_to_send() == b""


def test_sequence_numbers_wrap_and_skip_outstanding_ones():
    session = bound_session(window=5)
    session._next_seq = MAX_SEQUENCE
    assert session.submit(MESSAGE, now=0.0) == MAX_SEQUENCE
    assert session.submit(MESSAGE, now=0.0) == 1
    session._next_seq = MAX_SEQUENCE
    assert session.submit(MESSAGE, now=0.0) == 2


def test_generic_nack_for_a_submit_is_a_rejection():
    session = bound_session()
    seq = session.submit(MESSAGE, now=0.0)
    session.receive_data(encode(GenericNack(sequence_number=seq, command_status=c.ESME_RINVCMDLEN)))
    assert events(session) == [SubmitRejected(seq, c.ESME_RINVCMDLEN)]
    seq = session.submit(MESSAGE, now=0.0)
    session.receive_data(encode(GenericNack(sequence_number=seq)))
    assert events(session) == [SubmitRejected(seq, c.ESME_RSYSERR)]


def test_responses_matching_nothing_are_reported_not_fatal():
    session = bound_session()
    seq = session.submit(MESSAGE, now=0.0)
    session.receive_data(encode(SubmitSmResp(sequence_number=999, message_id="x")))
    session.receive_data(encode(EnquireLinkResp(sequence_number=seq)))  # wrong type
    assert events(session) == [
        UnmatchedResponse(999, c.SUBMIT_SM_RESP, 0),
        UnmatchedResponse(seq, c.ENQUIRE_LINK_RESP, 0),
    ]
    assert session.outstanding_submits == 1


def test_deliver_is_reported_and_acked_only_when_the_owner_says():
    session = bound_session()
    deliver = DeliverSm(sequence_number=55, esm_class=4, short_message=b"id:1 stat:DELIVRD")
    session.receive_data(encode(deliver))
    assert events(session) == [DeliverReceived(55, deliver)]
    assert session.data_to_send() == b""
    session.acknowledge_deliver(55)
    assert sent(session) == [DeliverSmResp(sequence_number=55)]
    with pytest.raises(LocalProtocolError):
        session.acknowledge_deliver(55)


def test_deliver_can_be_refused_temporarily():
    session = bound_session()
    session.receive_data(encode(DeliverSm(sequence_number=3)))
    events(session)
    session.acknowledge_deliver(3, c.ESME_RX_T_APPN)
    assert sent(session) == [DeliverSmResp(sequence_number=3, command_status=c.ESME_RX_T_APPN)]


def test_duplicate_unacked_deliver_is_reported_once():
    session = bound_session()
    session.receive_data(encode(DeliverSm(sequence_number=3)) * 2)
    assert len(events(session)) == 1


def test_receipt_before_submit_resp_is_delivered_in_order():
    session = bound_session()
    seq = session.submit(MESSAGE, now=0.0)
    receipt = DeliverSm(
        sequence_number=8, esm_class=4, tlvs=(Tlv(c.RECEIPTED_MESSAGE_ID, b"m1\0"),)
    )
    session.receive_data(
        encode(receipt) + encode(SubmitSmResp(sequence_number=seq, message_id="m1"))
    )
    assert events(session) == [DeliverReceived(8, receipt), SubmitAccepted(seq, "m1")]


def test_deliver_on_a_transmitter_bind_is_refused_with_rinvbndsts():
    session = bound_session("transmitter")
    session.receive_data(encode(DeliverSm(sequence_number=4)))
    assert events(session) == []
    assert sent(session) == [DeliverSmResp(sequence_number=4, command_status=c.ESME_RINVBNDSTS)]


def test_peer_enquire_link_is_answered_automatically():
    session = bound_session()
    session.receive_data(encode(EnquireLink(sequence_number=77)))
    assert events(session) == []
    assert sent(session) == [EnquireLinkResp(sequence_number=77)]


def test_unknown_request_gets_generic_nack_and_the_session_goes_on():
    session = bound_session()
    session.receive_data(
        encode(UnknownPdu(command_id=0x00000123, sequence_number=12, body=b"no such command"))
    )
    session.receive_data(encode(UnknownPdu(command_id=c.ALERT_NOTIFICATION, sequence_number=13)))
    assert sent(session) == [GenericNack(sequence_number=12, command_status=c.ESME_RINVCMDID)]
    # reported, so the connection logs what it refused (it used to be refused silently)
    assert events(session) == [
        RequestRefused(12, 0x00000123, c.ESME_RINVCMDID, "command not supported"),
        Notified(13, c.ALERT_NOTIFICATION, b""),  # answered by nothing, but not silently
    ]
    assert session.bound


def test_malformed_request_gets_generic_nack_with_the_decode_status():
    session = bound_session()
    body = b"\0\0\0A\0"  # submit-like body cut short
    frame = struct.pack(">IIII", 16 + len(body), c.DELIVER_SM, 0, 21) + body
    session.receive_data(frame)
    assert sent(session) == [GenericNack(sequence_number=21, command_status=c.ESME_RINVCMDLEN)]
    [refused] = events(session)
    assert isinstance(refused, RequestRefused) and session.bound
    assert (refused.seq, refused.command_id, refused.command_status) == (
        21, c.DELIVER_SM, c.ESME_RINVCMDLEN
    )  # fmt: skip
    assert refused.reason


def test_lost_framing_is_a_protocol_error_and_closes():
    session = bound_session()
    session.receive_data(b"\x00\x00\x00\x05garbage")
    assert events(session) == [
        ProtocolError(
            "framing_lost: command_length 5 is outside 16..65536: the stream has lost its framing"
        )
    ]
    assert session.state is BindState.CLOSED
    session.receive_data(encode(EnquireLink(sequence_number=1)))
    assert session.data_to_send() == b"" and session.next_deadline() is None


def test_peer_unbind_is_answered_and_reported():
    session = bound_session()
    session.receive_data(encode(Unbind(sequence_number=9)) + encode(EnquireLink()))
    assert events(session) == [PeerUnbound()]
    assert sent(session) == [UnbindResp(sequence_number=9)]  # nothing after unbind_resp
    assert session.state is BindState.CLOSED


def test_our_unbind_waits_for_outstanding_responses_then_reports_unbound():
    session = bound_session()
    submit_seq = session.submit(MESSAGE, now=0.0)
    seq = session.unbind(now=1.0)
    assert sent(session)[-1] == Unbind(sequence_number=seq)
    with pytest.raises(NotBound):
        session.submit(MESSAGE, now=1.0)
    session.receive_data(encode(SubmitSmResp(sequence_number=submit_seq, message_id="z")))
    session.receive_data(encode(UnbindResp(sequence_number=seq)))
    assert events(session) == [SubmitAccepted(submit_seq, "z"), Unbound()]
    assert session.state is BindState.CLOSED
    session.acknowledge_deliver(1234)  # no-op once closed


def test_unanswered_requests_time_out_in_order():
    session = bound_session(response_timeout=5.0, enquire_link_interval=100.0)
    a = session.submit(MESSAGE, now=1.0)
    b = session.submit(MESSAGE, now=2.0)
    assert session.next_deadline() == 6.0
    session.tick(5.9)
    assert events(session) == []
    session.tick(6.5)
    assert events(session) == [RequestTimedOut(a, c.SUBMIT_SM)]
    assert session.next_deadline() == 7.0
    session.tick(10.0)
    assert events(session) == [RequestTimedOut(b, c.SUBMIT_SM)]
    assert session.window_free == session.window
    session.receive_data(encode(SubmitSmResp(sequence_number=a, message_id="late")))
    assert events(session) == [UnmatchedResponse(a, c.SUBMIT_SM_RESP, 0)]


def test_bind_timeout_is_reported():
    session = Session(response_timeout=3.0)
    seq = session.bind("transceiver", "a", "b", now=10.0)
    assert session.next_deadline() == 13.0
    session.tick(13.0)
    assert events(session) == [RequestTimedOut(seq, c.BIND_TRANSCEIVER)]
    assert session.state is BindState.OPEN


def test_idle_link_sends_enquire_link_and_fails_when_unanswered():
    session = bound_session(enquire_link_interval=30.0, response_timeout=10.0)
    session.receive_data(encode(EnquireLink(sequence_number=1)), now=5.0)
    sent(session)
    assert session.next_deadline() == 35.0
    session.tick(34.0)
    assert sent(session) == []
    session.tick(35.0)
    (enquire,) = sent(session)
    assert isinstance(enquire, EnquireLink)
    assert session.next_deadline() == 45.0
    session.tick(45.0)
    assert events(session) == [ProtocolError("enquire_link_timeout")]
    assert session.state is BindState.CLOSED


def test_answered_enquire_link_keeps_the_link_up():
    session = bound_session(enquire_link_interval=30.0, response_timeout=10.0)
    session.tick(30.0)
    (enquire,) = sent(session)
    session.receive_data(encode(EnquireLinkResp(sequence_number=enquire.sequence_number)), now=31.0)
    session.tick(45.0)
    assert events(session) == [] and session.bound
    assert session.next_deadline() == 61.0
    assert session.enquire_link(now=46.0) == session.enquire_link(now=46.0)  # one at a time


def test_data_split_at_every_byte_gives_the_same_events():
    session = bound_session()
    seq = session.submit(MESSAGE, now=0.0)
    stream = encode(SubmitSmResp(sequence_number=seq, message_id="ok")) + encode(
        DeliverSm(sequence_number=2, short_message=b"MO")
    )
    for i in range(len(stream)):
        session.receive_data(stream[i : i + 1])
    assert [type(e) for e in events(session)] == [SubmitAccepted, DeliverReceived]


def test_a_receipt_in_a_data_sm_is_received_and_answered_with_data_sm_resp():
    from carriers.smpp.pdus import DataSm, DataSmResp, Tlv

    session = bound_session()
    receipt = DataSm(
        sequence_number=21, source_addr="447700900123", destination_addr="Acme",
        esm_class=c.ESM_CLASS_SMSC_DELIVERY_RECEIPT,
        tlvs=(Tlv(c.RECEIPTED_MESSAGE_ID, b"ab12\0"), Tlv(c.MESSAGE_STATE, bytes([c.DELIVERED]))),
    )  # fmt: skip
    session.receive_data(encode(receipt))
    [received] = events(session)
    assert isinstance(received, DeliverReceived) and received.seq == 21
    assert received.pdu == receipt.as_deliver()
    assert received.pdu.tlv(c.RECEIPTED_MESSAGE_ID).as_cstring() == "ab12"
    session.acknowledge_deliver(21)
    assert sent(session) == [DataSmResp(sequence_number=21)]


_VALID_REQUEST = st.sampled_from([c.ENQUIRE_LINK, c.DELIVER_SM, c.DATA_SM, c.UNBIND, 0x123])


@settings(max_examples=300, deadline=None)
@given(
    garbage=st.lists(
        st.one_of(
            st.binary(max_size=64),  # anything at all
            st.builds(  # a well-framed header over a random body: what a buggy SMSC sends
                lambda command_id, seq, body: struct.pack(
                    ">IIII", 16 + len(body), command_id, 0, seq
                ) + body,
                _VALID_REQUEST, st.integers(1, 0x7FFFFFFF), st.binary(max_size=40),
            ),
        ),
        max_size=6,
    )
)  # fmt: skip
def test_a_session_fed_garbage_answers_or_closes_and_never_raises(garbage):
    """Random and mutated bytes: never an exception out of receive_data; what the session sends
    back is only answers (responses, generic_nack, the owner's deliver acknowledgements); and if
    it closes the stream, it says why (a ProtocolError, or the peer's unbind)."""
    session = bound_session()
    for chunk in garbage:
        session.receive_data(chunk)
    got = events(session)
    for event in got:
        if isinstance(event, DeliverReceived):
            session.acknowledge_deliver(event.seq)
    replies = sent(session) if session.state is not BindState.CLOSED else []
    closed = session.state is BindState.CLOSED
    assert closed or all(p.is_response for p in replies)
    if closed:
        assert any(isinstance(e, (ProtocolError, PeerUnbound)) for e in got)


def test_a_late_answer_within_the_late_window_is_recognised():
    session = bound_session(
        response_timeout=5.0, enquire_link_interval=100.0, late_response_window=20.0
    )
    a = session.submit(MESSAGE, now=0.0)
    b = session.submit(MESSAGE, now=0.0)
    session.tick(5.0)
    assert events(session) == [RequestTimedOut(a, c.SUBMIT_SM), RequestTimedOut(b, c.SUBMIT_SM)]
    assert session.window_free == session.window  # out of the window at the timeout
    assert session.next_deadline() == 25.0
    session.receive_data(encode(SubmitSmResp(sequence_number=a, message_id="taken")), now=9.0)
    session.receive_data(encode(GenericNack(command_status=0, sequence_number=b)), now=9.0)
    assert events(session) == [
        LateSubmitResponse(a, c.ESME_ROK, "taken"),
        LateSubmitResponse(b, c.ESME_RSYSERR, None),  # a nack claiming success still refused
    ]
    # Answered: a second copy of the answer is unmatched, and nothing more is timed.
    session.receive_data(encode(SubmitSmResp(sequence_number=a, message_id="taken")), now=9.0)
    assert events(session) == [UnmatchedResponse(a, c.SUBMIT_SM_RESP, 0)]
    assert session.next_deadline() == 109.0  # the keepalive only (last heard at 9.0)


def test_the_late_window_closes_and_then_an_answer_is_unmatched():
    session = bound_session(
        response_timeout=5.0, enquire_link_interval=100.0, late_response_window=20.0
    )
    a = session.submit(MESSAGE, now=0.0)
    session.tick(5.0)
    assert events(session) == [RequestTimedOut(a, c.SUBMIT_SM)]
    session.tick(24.9)
    assert events(session) == []
    session.tick(25.0)
    assert events(session) == [LateWindowClosed(a)]
    session.receive_data(encode(SubmitSmResp(sequence_number=a, message_id="x")), now=26.0)
    assert events(session) == [UnmatchedResponse(a, c.SUBMIT_SM_RESP, 0)]


def test_a_sequence_number_awaiting_a_late_answer_is_not_reused():
    session = bound_session(
        response_timeout=5.0, enquire_link_interval=100.0, late_response_window=20.0
    )
    session._next_seq = MAX_SEQUENCE
    a = session.submit(MESSAGE, now=0.0)
    session.tick(5.0)
    events(session)
    session._next_seq = a  # as if the numbers had wrapped all the way round
    b = session.submit(MESSAGE, now=6.0)
    assert b != a


def test_without_a_late_window_a_late_answer_stays_unmatched():
    session = bound_session(response_timeout=5.0, enquire_link_interval=100.0)
    assert session.late_response_window == 0.0
    a = session.submit(MESSAGE, now=0.0)
    session.tick(5.0)
    events(session)
    session.receive_data(encode(SubmitSmResp(sequence_number=a, message_id="x")), now=6.0)
    assert events(session) == [UnmatchedResponse(a, c.SUBMIT_SM_RESP, 0)]
    assert session.next_deadline() == 106.0  # the keepalive only (last heard at 6.0)


def test_query_sm_is_answered_refused_or_times_out_without_closing_the_bind():
    session = bound_session(response_timeout=5.0, enquire_link_interval=100.0)
    ask = QuerySm(message_id="a1", source_addr_ton=1, source_addr_npi=1, source_addr="1555")
    a = session.query(ask, now=0.0)
    b = session.query(ask, now=0.0)
    d = session.query(ask, now=0.0)
    assert session.window_free == session.window  # queries take no submit slot
    assert sent(session) == [replace(ask, sequence_number=seq) for seq in (a, b, d)]
    session.receive_data(
        encode(QuerySmResp(sequence_number=a, message_id="a1", final_date="261203120000000+",
                           message_state=c.DELIVERED)),
        now=1.0,
    )  # fmt: skip
    session.receive_data(encode(QuerySmResp(sequence_number=b, command_status=0x67)), now=1.0)
    assert events(session) == [
        QueryAnswered(a, "a1", c.DELIVERED, "261203120000000+", 0),
        QueryFailed(b, c.ESME_RQUERYFAIL),
    ]
    session.tick(5.0)
    assert events(session) == [RequestTimedOut(d, c.QUERY_SM)]
    assert session.state is BindState.BOUND_TRX


def test_query_sm_needs_a_bind_that_can_send():
    session = Session()  # not bound
    with pytest.raises(NotBound):
        session.query(QuerySm(message_id="a1"), now=0.0)
