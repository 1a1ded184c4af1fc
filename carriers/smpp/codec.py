"""Sans-IO SMPP 3.4 codec: PDU objects to bytes and back, plus stream framing.

Why our own codec instead of smpplib, aiosmpplib or smpp34: they were measured at ~28k, ~65k
and ~1.2M submit_sm encodes/s against ~2.8M/s for plain precompiled ``struct`` packing (this codec,
validating every field, does ~1.1M/s; ``bench/smpp.py`` measures it), and each mishandles input
real carriers send. smpplib, for one, raises on any TLV it does not know unless told otherwise, and
slices garbage when a C-string lacks its NUL (a common slip in a submit_sm_resp's message_id).
A gateway's codec sits on the hot path of every message and must be *strict in what it sends,
lenient in what it accepts*:

* ``encode`` validates every field against the spec (C-octet string lengths, ASCII, octet ranges,
  short_message <= 254 octets) and raises :class:`PduEncodeError` before a byte is produced.
* ``decode`` accepts what carriers actually emit: unknown TLVs are kept, unknown commands become
  :class:`UnknownPdu`, error responses with an empty body decode to empty fields, a missing NUL at
  the very end of a body is forgiven. What cannot be understood raises :class:`PduDecodeError`
  with the command_status the peer must be answered with.
* :class:`FrameReader` cuts a byte stream into frames and raises :class:`FramingError` when a
  command_length is impossible: from there on the stream is unrecoverable.

The work is split by direction: :mod:`carriers.smpp.encoder`, :mod:`carriers.smpp.decoder` and
:mod:`carriers.smpp.framing`; this module is the one to import.
"""

from carriers.smpp.decoder import decode
from carriers.smpp.encoder import HEADER_LENGTH, MAX_SHORT_MESSAGE, encode, encode_with_sequence
from carriers.smpp.framing import DEFAULT_MAX_FRAME, FrameReader

__all__ = [
    "DEFAULT_MAX_FRAME",
    "HEADER_LENGTH",
    "MAX_SHORT_MESSAGE",
    "FrameReader",
    "decode",
    "encode",
    "encode_with_sequence",
]
