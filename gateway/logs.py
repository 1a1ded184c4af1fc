"""structlog set-up: JSON lines for journald and files, a readable console on a terminal.

One event name per happening (past tense: `bind.established`, `message.accepted`), with SIDs,
carrier and sequence numbers as fields. Secrets are never passed to a logger in the first place.
"""

from __future__ import annotations

import logging
import sys

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(format: str = "auto", level: str = "info", stream=None) -> None:
    stream = stream or sys.stderr
    console = format == "console" or (format == "auto" and stream.isatty())
    renderer = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if console
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )
    # uvicorn and asyncio log through the stdlib; keep them at warning and on the same stream.
    logging.basicConfig(level=logging.WARNING, stream=stream, format="%(name)s %(message)s")
