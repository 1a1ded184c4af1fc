"""Cutting a TCP byte stream into SMPP frames."""

from __future__ import annotations

import struct
from collections.abc import Iterator

from carriers.smpp.encoder import HEADER_LENGTH
from carriers.smpp.errors import FramingError

DEFAULT_MAX_FRAME = 64 * 1024
_U32 = struct.Struct(">I")


class FrameReader:
    """Cuts a TCP byte stream into SMPP frames.

    ``feed()`` bytes as they arrive, then iterate to get every complete frame (``bytes``,
    header included). Iteration stops when only a partial frame is left; feed more and iterate
    again. A command_length below 16 or above ``max_length`` raises :class:`FramingError`, and
    every later iteration raises it again: once framing is lost the stream cannot be trusted.
    """

    __slots__ = ("_broken", "_buffer", "_position", "max_length")

    def __init__(self, max_length: int = DEFAULT_MAX_FRAME) -> None:
        self.max_length = max_length
        self._buffer = bytearray()
        self._position = 0
        self._broken: FramingError | None = None

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def buffered(self) -> int:
        """Octets received but not yet returned as a frame."""
        return len(self._buffer) - self._position

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._broken is not None:
            raise self._broken
        buffer = self._buffer
        pos = self._position
        available = len(buffer) - pos
        if available >= 4:
            (length,) = _U32.unpack_from(buffer, pos)
            if length < HEADER_LENGTH or length > self.max_length:
                self._broken = FramingError(
                    f"command_length {length} is outside 16..{self.max_length}: "
                    "the stream has lost its framing"
                )
                raise self._broken
            if available >= length:
                self._position = pos + length
                return bytes(buffer[pos : pos + length])
        # Only a partial frame left: drop consumed octets so the buffer does not grow forever.
        if pos:
            del buffer[:pos]
            self._position = 0
        raise StopIteration
