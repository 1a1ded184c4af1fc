"""Hostile and random request bodies: every answer is a Twilio error or a 201, never a 5xx."""

from __future__ import annotations

import json
import random

STRINGS = [
    "+14155552671",
    "+15017122661",
    "",
    "+",
    "Acme",
    "\x00",
    "€" * 900,
    "😀",
    "\ud800",
    "a" * 2000,
    "%FF",
    "1" * 40,
    "+1 (415) 555-2671",
    "https://example.com/cb",
    " ",
]
NAMES = ["To", "From", "Body", "StatusCallback", "MediaUrl", "Attempt", "ValidityPeriod", "X"]


def _random_body(rng: random.Random) -> tuple[bytes, str]:
    kind = rng.choice(["form", "json", "bytes"])
    params = {rng.choice(NAMES): rng.choice(STRINGS) for _ in range(rng.randint(0, 5))}
    if kind == "json":
        return json.dumps(params).encode(), "application/json"
    if kind == "form":
        from urllib.parse import urlencode

        safe = {k: v.encode("utf-8", "surrogatepass") for k, v in params.items()}
        return urlencode(safe).encode(), "application/x-www-form-urlencoded"
    return rng.randbytes(rng.randint(0, 300)), rng.choice(
        ["application/x-www-form-urlencoded", "application/json", "text/plain", ""]
    )


async def test_random_bodies_never_get_a_5xx(gateway):
    rng = random.Random(20261123)
    statuses = set()
    for _ in range(300):
        content, content_type = _random_body(rng)
        headers = {"content-type": content_type} if content_type else {}
        response = await gateway.http.post(
            gateway.messages_path(), content=content, headers=headers
        )
        assert response.status_code < 500, (content, content_type, response.text)
        if response.status_code != 201:
            body = response.json()
            assert set(body) == {"code", "message", "more_info", "status"}, body
        statuses.add(response.status_code)
    assert 400 in statuses


async def test_lone_surrogate_in_a_json_body_is_refused(gateway):
    content = b'{"To": "+14155552671", "From": "+15017122661", "Body": "\\ud800 broken"}'
    response = await gateway.http.post(
        gateway.messages_path(), content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "Unicode" in response.json()["message"]
