"""Text encodings, concatenation UDH and building submit_sm from text parts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carriers.smpp import constants as c
from carriers.smpp.codec import encode
from carriers.smpp.submits import build_submits
from carriers.smpp.text import concat_udh, decode_text, encode_text, parse_concat, split_udh


def test_gsm7_is_unpacked_one_septet_per_octet():
    assert encode_text("Hello", "gsm7") == (0x00, b"Hello")
    assert encode_text("@£$", "gsm7") == (0x00, b"\x00\x01\x02")


@pytest.mark.parametrize(
    ("char", "code"), [("€", 0x65), ("{", 0x28), ("^", 0x14), ("[", 0x3C), ("|", 0x40), ("~", 0x3D)]
)
def test_gsm7_extension_characters_are_escaped(char, code):
    data_coding, data = encode_text(f"a{char}b", "gsm7")
    assert data == b"a\x1b" + bytes([code]) + b"b"
    assert decode_text(data_coding, data) == f"a{char}b"


def test_gsm7_refuses_characters_it_lacks():
    with pytest.raises(UnicodeEncodeError):
        encode_text("Привет", "gsm7")


def test_ucs2_is_utf16_be_with_surrogate_pairs_for_emoji():
    data_coding, data = encode_text("hi 😀", "ucs2")
    assert data_coding == 0x08
    assert data == "hi ".encode("utf-16-be") + b"\xd8\x3d\xde\x00"
    assert decode_text(0x08, data) == "hi 😀"


def test_unknown_encoding_is_an_error():
    with pytest.raises(ValueError, match="latin"):
        encode_text("x", "latin")


@pytest.mark.parametrize(
    ("data_coding", "data", "text"),
    [
        (0x01, b"plain ascii", "plain ascii"),
        (0x03, "café".encode("latin-1"), "café"),
        (0x04, b"\xff\x00", "\xff\x00"),
        (0xF5, b"abc", "abc"),
        (0x08, b"\xd8\x3d", "\ufffd"),  # lone surrogate half
        (0x08, b"\x00a\x00", "a\ufffd"),  # odd length
        (0x00, b"\x1b", "?"),  # dangling escape
        (0x00, b"\x80\xff", "??"),  # not septets
        (0x01, b"\xe9", "\ufffd"),
    ],
)
def test_decode_text_never_raises(data_coding, data, text):
    assert decode_text(data_coding, data) == text


@given(st.integers(0, 255), st.binary(max_size=100))
def test_decode_text_never_raises_on_anything(data_coding, data):
    assert isinstance(decode_text(data_coding, data), str)


def test_concat_udh_uses_8bit_reference_when_it_fits():
    assert concat_udh(42, 3, 2) == b"\x05\x00\x03\x2a\x03\x02"
    assert concat_udh(0x1234, 3, 1) == b"\x06\x08\x04\x12\x34\x03\x01"
    assert parse_concat(concat_udh(0x1234, 3, 1)) == (0x1234, 3, 1)
    assert parse_concat(concat_udh(7, 2, 2)) == (7, 2, 2)


@pytest.mark.parametrize(
    ("ref", "total", "seqnum"), [(0, 0, 0), (1, 2, 3), (70000, 2, 1), (1, 256, 1)]
)
def test_concat_udh_rejects_impossible_parts(ref, total, seqnum):
    with pytest.raises(ValueError):
        concat_udh(ref, total, seqnum)


def test_split_udh_separates_header_and_tolerates_garbage():
    assert split_udh(b"\x05\x00\x03\x01\x02\x01hello") == (b"\x05\x00\x03\x01\x02\x01", b"hello")
    assert split_udh(b"") == (None, b"")
    assert split_udh(b"\xffshort") == (None, b"\xffshort")
    assert split_udh(b"\x00abc") == (None, b"\x00abc")
    assert parse_concat(b"\x04\x05\x04\x0b\x84") is None  # port element only
    assert parse_concat(b"\x09\x05\x04\x0b\x84\x23\xf0\x00\x03\x09\x02\x01") == (9, 2, 1)
    assert parse_concat(b"\x03\x00\x05\x01") is None  # truncated element


def test_single_part_has_no_udh():
    (pdu,) = build_submits(
        source_addr="Acme",
        source_ton=5,
        source_npi=0,
        destination_addr="447700900123",
        dest_ton=1,
        dest_npi=1,
        parts=["Hello €"],
        encoding="gsm7",
        reference=9,
    )
    assert (pdu.esm_class, pdu.data_coding, pdu.registered_delivery) == (0, 0, 1)
    assert pdu.short_message == b"Hello \x1be"
    assert pdu.sequence_number == 0
    encode(pdu)


def test_multipart_gets_udh_and_udhi():
    parts = build_submits(
        source_addr="447700900000",
        source_ton=1,
        source_npi=1,
        destination_addr="447700900123",
        dest_ton=1,
        dest_npi=1,
        parts=["a" * 66, "b" * 66, "😀"],
        encoding="ucs2",
        reference=300,
        registered_delivery=0,
        validity_period="000001000000000R",
    )
    assert len(parts) == 3
    for index, pdu in enumerate(parts, start=1):
        udh, _ = split_udh(pdu.short_message)
        assert parse_concat(udh) == (300, 3, index)
        assert pdu.esm_class == c.ESM_CLASS_UDHI
        assert pdu.data_coding == 0x08
        assert pdu.validity_period == "000001000000000R"
        assert pdu.registered_delivery == 0
        assert len(pdu.short_message) <= 140
        encode(pdu)
    assert decode_text(8, split_udh(parts[2].short_message)[1]) == "😀"


def test_build_submits_needs_parts():
    with pytest.raises(ValueError):
        build_submits(
            source_addr="a",
            source_ton=0,
            source_npi=0,
            destination_addr="1",
            dest_ton=0,
            dest_npi=0,
            parts=[],
            encoding="gsm7",
            reference=0,
        )


def test_message_text_leaves_out_the_udh_only_when_udhi_is_set():
    from carriers.smpp.text import concat_udh, encode_text, message_text

    data_coding, data = encode_text("part one €", "gsm7")
    udh = concat_udh(7, 2, 1)
    assert message_text(udh + data, 0x40, data_coding) == "part one €"
    assert message_text(data, 0x00, data_coding) == "part one €"
