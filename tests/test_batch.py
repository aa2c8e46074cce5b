"""
Tests for L{logger_service.batch}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from logger_service.batch import Batch, merge


class BatchTests(SynchronousTestCase):
    """
    A batch keeps records in order with their counts and acks.
    """

    def test_add(self) -> None:
        """
        Adding records adds their bytes, records and lines per connection.
        """
        batch = Batch()
        self.assertFalse(batch)
        batch.add(b"a\nb\n", 2, {1: 2})
        batch.add(b"c\n", 1, None)
        batch.add(b"d\n", 1, {1: 1, 2: 1})
        self.assertTrue(batch)
        self.assertEqual(b"".join(batch), b"a\nb\nc\nd\n")
        self.assertEqual((batch.size, batch.records, batch.acks), (8, 4, {1: 3, 2: 1}))
        self.assertEqual(batch.data(), b"a\nb\nc\nd\n")

    def test_consume(self) -> None:
        """
        After a short write, the batch holds the rest, and says how many
        whole records were written.
        """
        batch = Batch()
        batch.add(b"one\ntwo\n", 2, None)
        batch.add(b"three\n", 1, None)
        self.assertEqual(batch.consume(6), 1)
        self.assertEqual((batch.data(), batch.size, batch.records), (b"o\nthree\n", 8, 2))
        self.assertEqual(batch.consume(2), 1)
        self.assertEqual((batch.data(), batch.size, batch.records), (b"three\n", 6, 1))

    def test_memoryview(self) -> None:
        """
        Records given as a memoryview (a worker's message) come out as
        bytes.
        """
        batch = Batch()
        batch.add(memoryview(b"xa\n")[1:], 1, None)  # type: ignore[arg-type]
        data = batch.data()
        self.assertIs(type(data), bytes)
        self.assertEqual(data, b"a\n")

    def test_merge(self) -> None:
        """
        Merging adds counts per connection.
        """
        counts = {1: 1}
        merge(counts, {1: 2, 3: 4})
        self.assertEqual(counts, {1: 3, 3: 4})
