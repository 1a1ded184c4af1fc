"""The official twilio helper library drives the gateway with only its base URL changed."""

from __future__ import annotations

import asyncio

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client


def _create_and_fetch(base_url: str, sid: str, token: str):
    client = Client(sid, token)
    client.api.base_url = base_url
    message = client.messages.create(to="+14155552671", from_="+15017122661", body="hi twilio")
    fetched = client.messages(message.sid).fetch()
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to="+1555", from_="+15017122661", body="bad number")
    return message, fetched, info.value


async def test_twilio_python_creates_fetches_and_sees_errors(gateway):
    message, fetched, error = await asyncio.to_thread(
        _create_and_fetch, gateway.base_url, gateway.account_sid, gateway.auth_token
    )
    assert message.sid.startswith("SM") and message.status == "queued"
    assert message.num_segments == "1"
    assert message.date_created is not None  # twilio-python parsed our RFC 2822 date
    assert fetched.sid == message.sid
    assert fetched.to == "+14155552671"
    assert error.code == 21211 and error.status == 400
