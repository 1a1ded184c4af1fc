"""Names of Twilio's API that more than one part of the gateway speaks (the HTTP API renders them,
the webhook sender posts them), kept apart so neither imports the other."""

from __future__ import annotations

API_VERSION = "2010-04-01"
