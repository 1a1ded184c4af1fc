import pytest

from gateway.api.auth import parse_basic
from gateway.api.errors import ApiError
from gateway.api.params import parse_params
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
