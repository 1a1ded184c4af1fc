import hmac

from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from gateway.signing import hmac_sha1, twilio_signature


def test_twilio_request_validator_accepts_our_signature():
    token = "12345678901234567890123456789012"
    url = "https://example.com/status?x=1"
    params = {
        "MessageSid": "SM" + "a" * 32,
        "MessageStatus": "delivered",
        "To": "+14155552671",
        "Body": "ünïcode € text",
    }
    signature = twilio_signature(token, url, params)
    assert RequestValidator(token).validate(url, params, signature)
    assert not RequestValidator("another token").validate(url, params, signature)


def test_signature_matches_twilios_documented_example():
    # Example from Twilio's security documentation.
    token = "12345"
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    assert twilio_signature(token, url, params) == RequestValidator(token).compute_signature(
        url, params
    )


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=200), st.binary(max_size=300))
def test_our_hmac_is_hmac_sha1_for_any_token_and_payload(token: str, payload: bytes) -> None:
    # Keys longer than SHA-1's 64-byte block are hashed first (RFC 2104): lengths on both sides.
    assert hmac_sha1(token, payload) == hmac.digest(token.encode(), payload, "sha1")
