"""
The messages between a worker process and the supervisor of C{--workers N}:
length-prefixed, over the UNIX socket at the worker's descriptor 3.

A worker sends batches of formatted records (L{encodeBatch}) and says when
it is ready to accept (L{READY}); the supervisor tells it when to start
accepting (L{LISTEN}: once every worker is ready and the sockets listen)
and answers which batches are written (L{DONE}).  With C{--metrics}, a worker also reports its counters
(L{COUNTERS}), every second and once more as it stops.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Dict, List, Sequence, Tuple

from twisted.internet.protocol import Protocol

Counts = Dict[int, int]

LINK_FD = 3
"""The descriptor of the worker's socket to the supervisor."""

MAX_MESSAGE = 1 << 30
"""The largest message between a worker and the supervisor."""

BATCH = b"B"
"""Worker to supervisor: C{B}, sequence, record count, ack count, (conn,
lines) pairs, then the formatted records."""
BATCH_HEADER = struct.Struct("!QII")
ACK_PAIR = struct.Struct("!QI")
READY = b"R"
"""Worker to supervisor: every listening socket is adopted; the worker
accepts on them once told to (L{LISTEN})."""
LISTEN = b"L"
"""Supervisor to worker: every worker is ready and the sockets listen:
accept connections on them."""
DONE = b"A"
"""Supervisor to worker: C{A} and sequence numbers of batches now written."""
SEQ = struct.Struct("!Q")
COUNTERS = b"C"
"""Worker to supervisor: C{C}, C{1} if this is the worker's last report
(answer it with L{COUNTED}) else C{0}, then its metrics' values as JSON
(L{encodeCounters})."""
COUNTED = b"K"
"""Supervisor to worker: the worker's last report of its counters is in."""

LENGTH = struct.Struct("!I")


def encodeBatch(seq: int, data: bytes, records: int, acks: Counts) -> List[bytes]:
    """
    Encode one batch of formatted records for the supervisor, as the parts
    of one message (see L{MessageProtocol.sendMessage}).
    """
    parts = [BATCH, BATCH_HEADER.pack(seq, records, len(acks))]
    parts.append(b"".join([ACK_PAIR.pack(conn, count) for conn, count in acks.items()]))
    parts.append(data)
    return parts


def encodeCounters(values: Dict[str, Any], last: bool) -> List[bytes]:
    """
    Encode a worker's report of its metrics' values (by metric name), as
    the parts of one message.
    """
    return [COUNTERS, b"1" if last else b"0", json.dumps(values, separators=(",", ":")).encode("utf-8")]


def decodeCounters(message: bytes) -> Tuple[Dict[str, Any], bool]:
    """
    Decode a message made by L{encodeCounters} (its C{C} included).

    @return: the values by metric name (a summary's pair as a tuple), and
        whether it is the worker's last report.
    """
    values = json.loads(bytes(message[2:]))
    return {name: tuple(v) if isinstance(v, list) else v for name, v in values.items()}, message[1:2] == b"1"


class MessageProtocol(Protocol):
    """
    Length-prefixed messages, as L{twisted.protocols.basic.Int32StringReceiver}
    but copying each byte a bounded number of times however large the
    message (that one joins its buffer again on every read), and sending a
    message from parts without joining them.
    """

    MAX_LENGTH = MAX_MESSAGE

    def __init__(self) -> None:
        self._chunks: List[bytes] = []
        self._have = 0
        self._need = LENGTH.size
        self._header = True

    def sendMessage(self, parts: Sequence[bytes]) -> None:
        """
        Send one message made of C{parts}.
        """
        assert self.transport is not None
        self.transport.writeSequence([LENGTH.pack(sum(len(p) for p in parts)), *parts])

    def dataReceived(self, data: bytes) -> None:
        """
        Gather messages; hand each whole one to L{messageReceived}.
        """
        self._chunks.append(data)
        self._have += len(data)
        while self._have >= self._need:
            buffer = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
            if self._header:
                length = LENGTH.unpack_from(buffer)[0]
                if length > self.MAX_LENGTH:
                    assert self.transport is not None
                    self.transport.loseConnection()
                    return
                rest = buffer[LENGTH.size :]
                self._header = False
                self._need = length
            else:
                message = buffer[: self._need] if len(buffer) > self._need else buffer
                rest = buffer[self._need :]
                self._header = True
                self._need = LENGTH.size
                self.messageReceived(message)
            self._chunks = [rest] if rest else []
            self._have = len(rest)

    def messageReceived(self, message: bytes) -> None:
        """
        A whole message arrived.
        """


def decodeBatch(message: bytes) -> Tuple[int, int, Counts, memoryview]:
    """
    Decode a message made by L{encodeBatch} (its C{B} included).

    @return: sequence number, record count, acks, and the records (a view
        into C{message}, not a copy).
    """
    seq, records, count = BATCH_HEADER.unpack_from(message, 1)
    offset = 1 + BATCH_HEADER.size
    acks: Counts = {}
    for _ in range(count):
        conn, lines = ACK_PAIR.unpack_from(message, offset)
        acks[conn] = lines
        offset += ACK_PAIR.size
    return seq, records, acks, memoryview(message)[offset:]
