"""The delivery engine: carrier lanes (store ↔ SMPP), the carrier outcome policy, and the status
callback sender. It depends on the store and the carriers, never on the HTTP API."""
