"""
L{benchmarks.webchat}, quickly: every line reaches every other client, over
TCP and over WebSocket, in the burst and in the paced run.
"""

from __future__ import annotations

import argparse
from typing import Optional

from twisted.trial.unittest import SynchronousTestCase

from benchmarks.webchat import compare

try:
    # The web extra: Twisted >= 25.5 and wsproto.
    import twisted.web.websocket  # noqa: F401
except ImportError:
    WEB_MISSING: Optional[str] = "the web extra (Twisted>=25.5 with websocket) is not installed"
else:
    WEB_MISSING = None


class QuickRunTests(SynchronousTestCase):
    skip = WEB_MISSING

    def test_quickRun(self) -> None:
        args = argparse.Namespace(clients=5, lines=2, paced_rate=20.0, paced_seconds=0.5, timeout=60.0, repeat=1)
        results = compare(args)
        self.assertEqual(
            [(r["mode"], r["transport"]) for r in results],
            [("burst", "tcp"), ("burst", "websocket"), ("paced", "tcp"), ("paced", "websocket")],
        )
        for r in results:
            self.assertEqual(r["deliveries"], r["expected"], r)
            self.assertEqual(r["clients"], 5)
        self.assertEqual(results[1]["expected"], 2 * 5 * 4)
        self.assertEqual(results[3]["expected"], 10 * 4)
