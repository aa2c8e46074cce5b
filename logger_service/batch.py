"""
Batches: records on their way to the sink, with the lines they acknowledge.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Optional

Counts = Dict[int, int]
"""Lines per connection id."""


def merge(into: Counts, more: Counts) -> None:
    """
    Add the lines per connection of C{more} to C{into}.
    """
    for conn, count in more.items():
        into[conn] = into.get(conn, 0) + count


class Batch:
    """
    Records on their way to the sink, in order, with how many whole records
    they are and how many lines of each connection they carry (for acks).

    Iterating a batch gives its bytes, in order.

    @ivar size: how many bytes.
    @ivar records: how many whole records.
    @ivar acks: lines per connection id.
    """

    __slots__ = ("_chunks", "size", "records", "acks")

    def __init__(self) -> None:
        self._chunks: List[bytes] = []
        self.size = 0
        self.records = 0
        self.acks: Counts = {}

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)

    def __bool__(self) -> bool:
        return bool(self._chunks)

    def add(self, data: bytes, records: int, acks: Optional[Counts]) -> None:
        """
        Add C{data}, C{records} whole records carrying C{acks}.
        """
        self._chunks.append(data)
        self.size += len(data)
        self.records += records
        if acks:
            merge(self.acks, acks)

    def data(self) -> bytes:
        """
        Every byte of the batch, as one string (kept as such, for retries).
        """
        # A chunk may be a memoryview (a worker's message): join makes bytes,
        # and returns a lone bytes chunk as it is.
        data = b"".join(self._chunks)
        self._chunks = [data]
        return data

    def consume(self, written: int) -> int:
        """
        Drop the first C{written} bytes, which a short write wrote.

        @return: how many whole records they were.
        """
        data = self.data()
        done = data.count(b"\n", 0, written)
        self._chunks = [data[written:]]
        self.size -= written
        self.records -= done
        return done
