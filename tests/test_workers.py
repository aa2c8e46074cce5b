"""
Unit tests for L{logger_service.worker} and the supervisor's pieces of
C{--workers}: adopting descriptions, and parsing the worker count.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from logger_service.optionvalues import workerCount
from logger_service.worker import adoptable


class HelperTests(SynchronousTestCase):
    """
    Small helpers.
    """

    def test_adoptable(self) -> None:
        """
        systemd descriptions become a placeholder whose listen is adopted;
        others, wrappers included, stay.
        """
        self.assertEqual(adoptable("systemd:domain=INET:index=0"), "tcp:0")
        self.assertEqual(adoptable("haproxy:systemd:domain=INET:index=0"), "haproxy:tcp:0")
        self.assertEqual(adoptable("haproxy:tcp:1234"), "haproxy:tcp:1234")

    def test_workerCount(self) -> None:
        """
        C{auto} is at least one; numbers below one are refused.
        """
        self.assertGreaterEqual(workerCount("auto"), 1)
        self.assertEqual(workerCount("3"), 3)
        self.assertRaises(ValueError, workerCount, "0")
        self.assertRaises(ValueError, workerCount, "x")
