"""Routing's errors: each carries the stable Twilio code the API answers with."""

from __future__ import annotations


class RoutingError(Exception):
    """A message the router cannot plan; `code` is the Twilio error code (21211, 21212, …)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidDestination(RoutingError):
    def __init__(self, message: str) -> None:
        super().__init__(21211, message)


class InvalidSender(RoutingError):
    def __init__(self, message: str) -> None:
        super().__init__(21212, message)


class NoRoute(RoutingError):
    """No carrier is configured for the destination (Twilio's 21612: cannot route)."""

    def __init__(self, message: str) -> None:
        super().__init__(21612, message)


class TooManyParts(RoutingError):
    """The body needs more segments than the carrier takes (its `max_parts`): Twilio's 21617,
    the concatenated body exceeds the limit."""

    def __init__(self, message: str) -> None:
        super().__init__(21617, message)
