"""Property tests: any valid PDU round trips; no input makes decoding raise anything unexpected."""

from __future__ import annotations

import contextlib
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carriers.smpp.codec import FrameReader, decode, encode
from carriers.smpp.errors import SmppCodecError
from carriers.smpp.pdus import (
    BindTransceiver,
    BindTransmitterResp,
    DataSm,
    DataSmResp,
    DeliverSm,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Tlv,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

octet = st.integers(0, 255)
seq = st.integers(0, 0x7FFFFFFF)
status = st.integers(0, 0xFFFFFFFF)


def cstring(max_size):
    return st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=max_size)


time_field = st.one_of(
    st.just(""), st.text(st.sampled_from("0123456789R+-"), min_size=16, max_size=16)
)
tlvs = st.lists(st.builds(Tlv, st.integers(0, 0xFFFF), st.binary(max_size=40)), max_size=4).map(
    tuple
)


# The fields submit_sm, deliver_sm and data_sm share.
MESSAGE_FIELDS = dict(
    sequence_number=seq,
    command_status=status,
    service_type=cstring(5),
    source_addr_ton=octet,
    source_addr_npi=octet,
    source_addr=cstring(20),
    dest_addr_ton=octet,
    dest_addr_npi=octet,
    destination_addr=cstring(20),
    esm_class=octet,
    registered_delivery=octet,
    data_coding=octet,
    tlvs=tlvs,
)


def short_message(cls):
    return st.builds(
        cls,
        **MESSAGE_FIELDS,
        protocol_id=octet,
        priority_flag=octet,
        schedule_delivery_time=time_field,
        validity_period=time_field,
        replace_if_present_flag=octet,
        sm_default_msg_id=octet,
        short_message=st.binary(max_size=254),
    )


any_pdu = st.one_of(
    short_message(SubmitSm),
    short_message(DeliverSm),
    st.builds(SubmitSmResp, sequence_number=seq, command_status=status, message_id=cstring(64)),
    st.builds(
        BindTransceiver,
        sequence_number=seq,
        system_id=cstring(15),
        password=cstring(8),
        system_type=cstring(12),
        interface_version=octet,
        addr_ton=octet,
        addr_npi=octet,
        address_range=cstring(40),
    ),
    st.builds(
        BindTransmitterResp,
        sequence_number=seq,
        command_status=status,
        system_id=cstring(15),
        tlvs=tlvs,
    ),
    st.builds(DataSm, **MESSAGE_FIELDS),
    st.builds(DataSmResp, sequence_number=seq, command_status=status, message_id=cstring(64)),
    st.builds(
        QuerySm,
        sequence_number=seq,
        command_status=status,
        message_id=cstring(64),
        source_addr_ton=octet,
        source_addr_npi=octet,
        source_addr=cstring(20),
    ),
    st.builds(
        QuerySmResp,
        sequence_number=seq,
        command_status=status,
        message_id=cstring(64),
        final_date=time_field,
        message_state=octet,
        error_code=octet,
    ),
)


@FAST
@given(any_pdu)
def test_valid_pdus_round_trip(pdu):
    assert decode(encode(pdu)) == pdu


def decode_quietly(frame):
    with contextlib.suppress(SmppCodecError):
        decode(frame)


@FAST
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_codec_errors(data):
    decode_quietly(data)
    reader = FrameReader(max_length=1024)
    reader.feed(data)
    with contextlib.suppress(SmppCodecError):
        for frame in reader:
            decode_quietly(frame)


@FAST
@given(
    st.sampled_from(
        [0x80000000, 1, 2, 3, 4, 5, 6, 9, 0x15, 0x80000003, 0x80000004, 0x80000009, 0x80000005]
    ),
    st.binary(max_size=120),
)
def test_known_commands_with_random_bodies_only_raise_codec_errors(command_id, body):
    decode_quietly(struct.pack(">IIII", 16 + len(body), command_id, 0, 1) + body)


@FAST
@given(any_pdu, st.data())
def test_mutated_frames_only_raise_codec_errors(pdu, data):
    frame = bytearray(encode(pdu))
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(4, len(frame) - 1))  # keep command_length honest
        frame[index] = data.draw(octet)
    cut = data.draw(st.integers(16, len(frame)))
    frame = frame[:cut]
    frame[:4] = struct.pack(">I", len(frame))
    decode_quietly(bytes(frame))
