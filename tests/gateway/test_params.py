from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.api.auth import parse_basic
from gateway.api.errors import ApiError
from gateway.api.params import form_pairs, parse_params
from gateway.ids import is_sid, new_sid


def test_form_and_json_bodies():
    form = parse_params(
        b"To=%2B14155552671&Body=hi+there&MediaUrl=a&MediaUrl=b",
        "application/x-www-form-urlencoded; charset=utf-8",
    )
    assert form == {"To": ["+14155552671"], "Body": ["hi there"], "MediaUrl": ["a", "b"]}
    data = parse_params(b'{"To": "+14155552671", "Attempt": 2}', "application/json")
    assert data == {"To": ["+14155552671"], "Attempt": ["2"]}


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"\xff\xfe", "application/x-www-form-urlencoded", 400),
        (b"To=%FF", "application/x-www-form-urlencoded", 400),
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'{"To": {"nested": 1}}', "application/json", 400),
        (b"<xml/>", "application/xml", 415),
    ],
)
def test_malformed_bodies_are_client_errors(body, content_type, status):
    with pytest.raises(ApiError) as info:
        parse_params(body, content_type)
    assert info.value.status == status


def test_basic_auth_parsing():
    assert parse_basic("Basic QUMxOnRva2Vu") == ("AC1", "token")
    assert parse_basic("Basic !!!") is None
    assert parse_basic("Bearer abc") is None
    assert parse_basic(None) is None


def test_sids_are_typed_and_validated():
    sid = new_sid("SM")
    assert is_sid(sid, "SM") and len(sid) == 34
    assert not is_sid(sid.upper(), "SM")
    assert not is_sid("SM123", "SM")
    assert not is_sid(new_sid("AC"), "SM")


# -- form_pairs is parse_qsl, faster (gateway/api/params.py) ---------------------------------------

_FORM_ALPHABET = st.sampled_from([*"ab+=&%2B3DzZ09 .é€\x00", "%", "%E2%82%AC", "%FF", "%C3"])


def _parse_qsl_or_error(text: str):
    try:
        return parse_qsl(
            text, keep_blank_values=True, strict_parsing=bool(text), errors="strict",
            max_num_fields=100,
        )  # fmt: skip
    except ValueError:  # UnicodeDecodeError is one
        return ValueError


def _form_pairs_or_error(text: str):
    try:
        return form_pairs(text)
    except ValueError:
        return ValueError


@settings(max_examples=3000, deadline=None)
@given(st.lists(_FORM_ALPHABET, max_size=40).map("".join))
def test_form_pairs_reads_what_parse_qsl_reads_and_refuses_what_it_refuses(text: str) -> None:
    assert _form_pairs_or_error(text) == _parse_qsl_or_error(text)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), st.text(max_size=20), max_size=8))
def test_form_pairs_reads_back_what_urlencode_writes(params) -> None:
    params = {k: v for k, v in params.items() if _encodable(k) and _encodable(v)}
    text = urlencode(params)
    assert form_pairs(text) == parse_qsl(text, keep_blank_values=True) == list(params.items())


def test_form_pairs_refuses_more_than_100_fields_as_parse_qsl_does() -> None:
    assert _form_pairs_or_error("&".join(["a=1"] * 100)) == [("a", "1")] * 100
    assert _form_pairs_or_error("&".join(["a=1"] * 101)) is ValueError
    assert _parse_qsl_or_error("&".join(["a=1"] * 101)) is ValueError


def test_long_values_are_decoded_the_same_without_the_cache() -> None:
    value = "%E2%82%AC+" * 200  # longer than the cached size
    assert form_pairs("Body=" + value) == [("Body", "€ " * 200)]


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
