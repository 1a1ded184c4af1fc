from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from gateway.engine.callback_form import callback_params, form_body, signed_form
from gateway.signing import twilio_signature
from store.models import Callback
from store.states import Status

# Text that form encoding can carry (no lone surrogates: they cannot be UTF-8 encoded).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)))


@given(st.dictionaries(st.from_regex(r"[A-Za-z]{1,12}", fullmatch=True), TEXT, max_size=10))
def test_form_body_is_what_urlencode_writes(params):
    assert form_body(params) == urlencode(params).encode("ascii")


def test_numbers_and_sids_are_encoded_as_twilio_receivers_expect():
    params = {"MessageSid": "SM" + "a" * 32, "From": "+15017122661", "To": "+44 7700 900123"}
    assert form_body(params) == (
        b"MessageSid=SM" + b"a" * 32 + b"&From=%2B15017122661&To=%2B44+7700+900123"
    )


@settings(max_examples=500, deadline=None)
@given(
    account=TEXT,
    sid=TEXT,
    status=st.sampled_from(list(Status)),
    error_code=st.none() | st.integers(0, 99999),
    done=st.none() | st.just("") | TEXT,
    sender=TEXT,
    to=TEXT,
    url=TEXT,
    token=TEXT,
)
def test_signed_form_is_the_form_and_the_signature_the_general_path_writes(
    account, sid, status, error_code, done, sender, to, url, token
):
    callback = Callback(1, sid, account, url, status, error_code, done, 0, sender, to)
    params = callback_params(callback)
    assert signed_form(callback, url, token) == (
        form_body(params),
        twilio_signature(token, url, params),
    )


def test_a_signed_form_is_accepted_by_twilios_request_validator():
    callback = Callback(
        7, "SM" + "c" * 32, "AC" + "d" * 32, "https://app.example/status?x=1", Status.UNDELIVERED,
        30003, "2612040102", 0, "+15017122661", "+44 7700 900123",
    )  # fmt: skip
    body, signature = signed_form(callback, callback.url, "t" * 32)
    params = dict(parse_qsl(body.decode("ascii"), keep_blank_values=True))
    assert RequestValidator("t" * 32).validate(callback.url, params, signature)
