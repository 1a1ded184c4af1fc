"""Twilio-shaped JSON for our records: field names, date format and URIs as the 2010-04-01 API."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

from gateway.twilio import API_VERSION
from store.models import Message

_last_second: datetime | None = None
_last_text = ""


def rfc2822(moment: datetime | None) -> str | None:
    """`Thu, 24 Aug 2023 05:01:45 +0000`, as Twilio writes dates (always UTC).

    The last second formatted is remembered: under load every message created in one second
    shows that second (twice: created and updated), and `format_datetime` is not cheap.
    """
    global _last_second, _last_text
    if moment is None:
        return None
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    second = moment.replace(microsecond=0)
    if second != _last_second:
        _last_text = format_datetime(second)
        _last_second = second
    return _last_text


def message_uri(account_sid: str, sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json"


def message_json(message: Message) -> dict:
    uri = message_uri(message.account_sid, message.sid)
    return {
        "sid": message.sid,
        "account_sid": message.account_sid,
        "messaging_service_sid": None,
        "from": message.from_addr,
        "to": message.to_addr,
        "body": message.body,
        "status": str(message.status),
        "direction": message.direction,
        "num_segments": str(message.num_segments),
        "num_media": "0",
        "price": None,
        "price_unit": "USD",
        "error_code": message.error_code,
        "error_message": message.error_message,
        "date_created": rfc2822(message.date_created),
        "date_updated": rfc2822(message.date_updated),
        "date_sent": rfc2822(message.date_sent),
        "api_version": API_VERSION,
        "uri": uri,
        "subresource_uris": {"media": uri.removesuffix(".json") + "/Media.json"},
    }
