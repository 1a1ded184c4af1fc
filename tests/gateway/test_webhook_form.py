from __future__ import annotations

from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st

from gateway.engine.webhooks import form_body

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
