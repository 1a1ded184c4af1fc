from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.responses import JSONResponse

from gateway.api.create_path import render_json
from gateway.api.serialize import rfc2822

MOMENT = datetime(2023, 8, 24, 5, 1, 45, 123_456, tzinfo=UTC)


def test_dates_are_rfc2822_in_utc_without_fractions():
    assert rfc2822(MOMENT) == "Thu, 24 Aug 2023 05:01:45 +0000"
    assert rfc2822(None) is None


def test_a_remembered_second_never_leaks_into_the_next():
    assert rfc2822(MOMENT) == "Thu, 24 Aug 2023 05:01:45 +0000"
    assert rfc2822(MOMENT + timedelta(seconds=1)) == "Thu, 24 Aug 2023 05:01:46 +0000"
    assert rfc2822(MOMENT - timedelta(days=400)) == "Wed, 20 Jul 2022 05:01:45 +0000"
    assert rfc2822(MOMENT.replace(microsecond=999_999)) == "Thu, 24 Aug 2023 05:01:45 +0000"


def test_other_offsets_are_written_as_utc():
    two_hours_ahead = MOMENT.astimezone(timezone(timedelta(hours=2)))
    assert rfc2822(two_hours_ahead) == "Thu, 24 Aug 2023 05:01:45 +0000"


# -- the 201's JSON is Starlette's JSON (gateway/api/create_path.py) -----------------------------

_TEXT = st.text(st.characters(exclude_categories=("Cs",)))  # UTF-8 text: no lone surrogates
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=250, deadline=None)
@given(st.dictionaries(_TEXT, _JSON_VALUES, max_size=8))
def test_the_create_path_renders_json_byte_for_byte_as_starlette_does(payload) -> None:
    assert render_json(payload) == JSONResponse(payload).body


def test_a_whole_message_resource_renders_as_starlette_renders_it() -> None:
    payload = {
        "sid": "SM" + "a" * 32, "body": "héllo \u2028 \"quoted\" \\ \n\t\x01", "num_segments": "1",
        "price": None, "error_code": None, "subresource_uris": {"media": "/2010-04-01/x.json"},
    }  # fmt: skip
    assert render_json(payload) == JSONResponse(payload).body
