"""The form a status callback posts, and its X-Twilio-Signature, as Twilio writes them.

Kept apart from the sender (`webhooks.py`) because it is the per-callback CPU: three callbacks a
message. `signed_form` writes the body and the signature's payload straight from the callback,
in the order each needs (the body in Twilio's field order, the payload in sorted name order) —
the general path, a params dict then `form_body` and `twilio_signature` sorting it, cost twice
as much. The general path stays as the readable statement of the form, which
tests/gateway/test_webhook_form.py holds `signed_form` equal to (and `form_body` to `urlencode`).
"""

from __future__ import annotations

import functools
import re
from binascii import b2a_base64
from urllib.parse import quote_plus

from gateway.signing import hmac_sha1
from gateway.twilio import API_VERSION
from store.models import Callback


def callback_params(callback: Callback) -> dict[str, str]:
    """The form Twilio posts for a status change (field names as Twilio's)."""
    params = {
        "AccountSid": callback.account_sid,
        "MessageSid": callback.message_sid,
        "SmsSid": callback.message_sid,
        "MessageStatus": str(callback.status),
        "SmsStatus": str(callback.status),
        "From": callback.from_addr,
        "To": callback.to_addr,
        "ApiVersion": API_VERSION,
    }
    if callback.error_code is not None:
        params["ErrorCode"] = str(callback.error_code)
    if callback.raw_done_date:
        params["RawDlrDoneDate"] = callback.raw_done_date
    return params


_FORM_SAFE = re.compile(r"[A-Za-z0-9_.\-+]*")


@functools.lru_cache(maxsize=8192)
def _form_value(value: str) -> str:
    """One value as `urlencode` writes it. Cached: a message's three callbacks repeat its
    numbers, SIDs and statuses, and quoting was a third of a callback's CPU."""
    if _FORM_SAFE.fullmatch(value):
        return value.replace("+", "%2B")
    return quote_plus(value)


def form_body(params: dict[str, str]) -> bytes:
    """`application/x-www-form-urlencoded`, as `urlencode` writes it, for a fraction of its cost
    (it was half of a callback's CPU): SIDs, statuses and codes need no quoting at all, and an
    E.164 number only its plus sign."""
    return "&".join([f"{name}={_form_value(value)}" for name, value in params.items()]).encode(
        "ascii"
    )


def signed_form(callback: Callback, url: str, auth_token: str) -> tuple[bytes, str]:
    """(`form_body(callback_params(callback))`, the X-Twilio-Signature of that form at `url`)."""
    q = _form_value
    account, sid, status = callback.account_sid, callback.message_sid, str(callback.status)
    sender, to = callback.from_addr, callback.to_addr
    code = None if callback.error_code is None else str(callback.error_code)
    done = callback.raw_done_date or None
    qsid, qstatus = q(sid), q(status)
    body = (
        f"AccountSid={q(account)}&MessageSid={qsid}&SmsSid={qsid}&MessageStatus={qstatus}"
        f"&SmsStatus={qstatus}&From={q(sender)}&To={q(to)}&ApiVersion={API_VERSION}"
    )
    if code is not None:
        body += f"&ErrorCode={q(code)}"
    if done is not None:
        body += f"&RawDlrDoneDate={q(done)}"
    # Twilio's payload: the URL, then each name and value with the names sorted.
    payload = (
        f"{url}AccountSid{account}ApiVersion{API_VERSION}"
        + ("" if code is None else f"ErrorCode{code}")
        + f"From{sender}MessageSid{sid}MessageStatus{status}"
        + ("" if done is None else f"RawDlrDoneDate{done}")
        + f"SmsSid{sid}SmsStatus{status}To{to}"
    )
    digest = hmac_sha1(auth_token, payload.encode("utf-8"))
    return body.encode("ascii"), b2a_base64(digest, newline=False).decode("ascii")
