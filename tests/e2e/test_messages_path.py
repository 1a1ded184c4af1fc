"""The whole path in one process: HTTP API → SQLite → SMPP bind → simulator → receipt → webhook."""

from __future__ import annotations

import asyncio
import re

import httpx
from twilio.request_validator import RequestValidator

from tests.e2e.harness import WebhookReceiver

RFC2822 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")


async def test_message_is_delivered_and_every_transition_is_called_back(gateway, webhooks):
    response = await gateway.send(
        To="+14155552671",
        From="+15017122661",
        Body="Hello from smsgw",
        StatusCallback=webhooks.url,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", created["sid"])
    assert created["status"] == "queued"
    assert created["account_sid"] == gateway.account_sid
    assert created["to"] == "+14155552671" and created["from"] == "+15017122661"
    assert created["num_segments"] == "1" and created["direction"] == "outbound-api"
    assert RFC2822.match(created["date_created"])
    assert created["uri"] == gateway.messages_path(created["sid"])
    assert created["api_version"] == "2010-04-01"

    sid = created["sid"]
    callbacks = webhooks.callbacks
    await callbacks.wait_for(
        lambda: any(f["MessageStatus"] == "delivered" for f in callbacks.for_message(sid))
    )
    statuses = [form["MessageStatus"] for form in callbacks.for_message(sid)]
    assert statuses == ["sending", "sent", "delivered"]

    fetched = await gateway.fetch(sid)
    assert fetched["status"] == "delivered"
    assert RFC2822.match(fetched["date_sent"])
    assert fetched["error_code"] is None

    validator = RequestValidator(gateway.auth_token)
    for url, form, headers in callbacks.received:
        assert form["AccountSid"] == gateway.account_sid
        assert form["SmsSid"] == form["MessageSid"] == sid
        assert form["From"] == "+15017122661" and form["To"] == "+14155552671"
        assert form["ApiVersion"] == "2010-04-01"
        assert validator.validate(url, form, headers["X-Twilio-Signature"]), form
    delivered = callbacks.for_message(sid)[-1]
    assert re.fullmatch(r"\d{10}", delivered["RawDlrDoneDate"])


async def test_long_unicode_message_goes_out_in_parts_and_is_delivered(gateway, webhooks):
    body = "Привет, мир! " * 12  # 156 characters of Cyrillic: UCS-2, 67 per part
    response = await gateway.send(
        To="+447911123456", From="Acme", Body=body, StatusCallback=webhooks.url
    )
    assert response.status_code == 201, response.text
    sid = response.json()["sid"]
    assert response.json()["num_segments"] == "3"
    callbacks = webhooks.callbacks
    await callbacks.wait_for(
        lambda: any(f["MessageStatus"] == "delivered" for f in callbacks.for_message(sid))
    )
    assert (await gateway.fetch(sid))["status"] == "delivered"


async def test_many_concurrent_messages_are_delivered_with_one_callback_per_transition(
    gateway, webhooks
):
    responses = await asyncio.gather(
        *(
            gateway.send(
                To="+14155552671", From="12345", Body=f"message {n}", StatusCallback=webhooks.url
            )
            for n in range(300)
        )
    )
    assert {r.status_code for r in responses} == {201}
    sids = {r.json()["sid"] for r in responses}
    assert len(sids) == 300
    callbacks = webhooks.callbacks
    await callbacks.wait_for(
        lambda: sum(f["MessageStatus"] == "delivered" for _, f, _ in callbacks.received) >= 300,
        timeout=60,
    )
    for sid in sids:
        statuses = [form["MessageStatus"] for form in callbacks.for_message(sid)]
        assert statuses == ["sending", "sent", "delivered"], (sid, statuses)
    fetched = await asyncio.gather(*(gateway.fetch(sid) for sid in sids))
    assert {m["status"] for m in fetched} == {"delivered"}


async def test_failing_callback_endpoint_gets_the_newest_status_in_order(gateway):
    """The first three posts fail: each is retried, or skipped when a newer status of the
    message is already waiting (superseded); the endpoint gets the statuses in order, once
    each, and always the final one."""
    async with WebhookReceiver(fail_first=3) as failing:
        response = await gateway.send(
            To="+14155552671", From="+15017122661", Body="retry me", StatusCallback=failing.url
        )
        sid = response.json()["sid"]
        callbacks = failing.callbacks

        def told() -> list[str]:
            return [form["MessageStatus"] for form in callbacks.for_message(sid)]

        await callbacks.wait_for(lambda: "delivered" in told(), timeout=20)
        order = ["sending", "sent", "delivered"]
        assert told() == [status for status in order if status in told()]


async def test_fetching_an_unknown_or_malformed_sid_is_20404(gateway):
    for sid in ("SM" + "0" * 32, "SMnot-a-sid", "../../etc"):
        response = await gateway.http.get(gateway.messages_path(sid))
        assert response.status_code == 404
        assert response.json()["code"] == 20404


async def test_wrong_credentials_are_20003(gateway):
    path = gateway.messages_path()
    for auth in [(gateway.account_sid, "wrong"), ("AC" + "1" * 32, gateway.auth_token), None]:
        async with httpx.AsyncClient(base_url=gateway.base_url, auth=auth) as client:
            response = await client.post(path, data={"To": "+14155552671", "Body": "x"})
        assert response.status_code == 401
        body = response.json()
        assert body["code"] == 20003
        assert set(body) == {"code", "message", "more_info", "status"}


async def test_another_accounts_path_is_refused(gateway):
    other = f"/2010-04-01/Accounts/AC{'2' * 32}/Messages.json"
    response = await gateway.http.post(other, data={"To": "+14155552671", "Body": "x"})
    assert response.status_code == 401


async def test_bad_requests_get_precise_codes_and_store_nothing(gateway):
    cases = [
        ({"From": "+15017122661", "Body": "hi"}, 400, 21604),
        ({"To": "+14155552671", "From": "+15017122661"}, 400, 21602),
        ({"To": "+14155552671", "Body": "hi"}, 400, 21603),
        ({"To": "+1555", "From": "+15017122661", "Body": "hi"}, 400, 21211),
        ({"To": "+14155552671", "From": "not valid!!!!!!", "Body": "hi"}, 400, 21212),
        ({"To": "+14155552671", "From": "+15017122661", "Body": "x" * 1601}, 400, 21617),
        ({"To": "+14155552671", "From": "+15017122661", "Body": "a\x00b"}, 400, 20001),
        (
            {
                "To": "+14155552671",
                "From": "+15017122661",
                "Body": "hi",
                "MediaUrl": "https://example.com/cat.jpg",
            },
            400,
            21620,
        ),
        (
            {
                "To": "+14155552671",
                "From": "+15017122661",
                "Body": "hi",
                "StatusCallback": "ftp://example.com",
            },
            400,
            21609,
        ),
    ]
    for params, status, code in cases:
        response = await gateway.send(**params)
        assert response.status_code == status, (params, response.text)
        body = response.json()
        assert body["code"] == code, (params, body)
        assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
        assert body["status"] == status and body["message"]


async def test_malformed_bodies_are_400_never_500(gateway):
    path = gateway.messages_path()
    for content, content_type in [
        (b"To=%FF%FE&Body=x", "application/x-www-form-urlencoded"),
        (b"\xff\xfe\xfd", "application/x-www-form-urlencoded"),
        (b"{broken", "application/json"),
        (b"To=1&&&=&", "application/x-www-form-urlencoded"),
    ]:
        response = await gateway.http.post(
            path, content=content, headers={"content-type": content_type}
        )
        assert response.status_code == 400, (content, response.text)
        assert response.json()["code"] in (20001, 21604)
    huge = b"Body=" + b"x" * 70_000
    response = await gateway.http.post(
        path, content=huge, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 413


async def test_json_bodies_are_accepted(gateway):
    response = await gateway.http.post(
        gateway.messages_path(),
        json={"To": "+14155552671", "From": "+15017122661", "Body": "json body"},
    )
    assert response.status_code == 201, response.text


async def test_unknown_route_is_a_twilio_404(gateway):
    response = await gateway.http.get("/2010-04-01/Nothing.json")
    assert response.status_code == 404
    assert response.json()["code"] == 20404


async def test_create_refusals_carry_their_headers_and_twilio_bodies(gateway):
    """Creating a message has its own ASGI path in front of Starlette (gateway.api.create_path):
    its refusals must look exactly like the rest of the API's."""
    path = gateway.messages_path()
    form = {"To": "+14155552671", "From": "+15017122661", "Body": "x"}
    async with httpx.AsyncClient(base_url=gateway.base_url) as anonymous:
        response = await anonymous.post(path, data=form)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="smsgw"'
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate: use HTTP Basic auth with your AccountSid and AuthToken.",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    other = "AC" + "0" * 32
    response = await gateway.http.post(f"/2010-04-01/Accounts/{other}/Messages.json", data=form)
    assert response.status_code == 401  # the path's account must be the authenticated one
    response = await gateway.http.post(path, content=b"To=1", headers={"content-type": "text/csv"})
    assert (response.status_code, response.json()["code"]) == (415, 20001)


async def test_other_methods_on_the_create_path_are_a_twilio_405(gateway):
    response = await gateway.http.get(gateway.messages_path())
    assert response.status_code == 405
    assert response.json()["code"] == 20004
