"""
Syslog senders end to end: util-linux C{logger --tcp} (LF framing and RFC
6587 octet counting) and Python's C{SysLogHandler} over TCP (NUL framing),
against a real twistd with each C{--framing}.
"""

from __future__ import annotations

import logging
import logging.handlers
import shutil
import socket
import subprocess
from typing import List

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from .twistd_helpers import LineLogger, parseJSONRecord


def sendWithLogger(port: int, messages: List[str], octetCount: bool) -> None:
    """
    Send each message with one run of util-linux C{logger --tcp}.
    """
    if shutil.which("logger") is None:
        raise SkipTest("util-linux logger is not installed")
    for message in messages:
        argv = ["logger", "--tcp", "-n", "127.0.0.1", "-P", str(port), "-t", "app"]
        if octetCount:
            argv.append("--octet-count")
        subprocess.run([*argv, message], check=True, timeout=30)


def sendWithSysLogHandler(port: int, messages: List[str]) -> None:
    """
    Send messages through the standard library's SysLogHandler over TCP,
    which ends each one with a NUL.
    """
    handler = logging.handlers.SysLogHandler(address=("127.0.0.1", port), socktype=socket.SOCK_STREAM)
    logger = logging.Logger("linelogger-test")
    logger.addHandler(handler)
    try:
        for message in messages:
            logger.warning(message)
    finally:
        handler.close()


class SyslogTestCase(SynchronousTestCase):
    """
    Helpers to read the messages back out of JSON records.
    """

    def messages(self, server: LineLogger, count: int) -> List[str]:
        return [parseJSONRecord(r)["line"] for r in server.waitForRecords(count)]


class LoggerTests(SyslogTestCase):
    """
    C{logger --tcp}, with and without C{--octet-count}.
    """

    def test_lf(self) -> None:
        """
        Plain C{logger --tcp} ends messages with LF: the default framing.
        """
        server = LineLogger(self, "--format", "json")
        sendWithLogger(server.port, ["first message", "second message"], octetCount=False)
        got = self.messages(server, 2)
        self.assertEqual(len(got), 2)
        self.assertTrue(got[0].startswith("<13>1 ") and got[0].endswith(" first message"), got[0])
        self.assertTrue(got[1].endswith(" second message"), got[1])

    def test_octetCounted(self) -> None:
        """
        With C{--octet-count} and C{--framing octet}, each frame is one
        record holding exactly the message, even one with a newline in it.
        """
        server = LineLogger(self, "--format", "json", "--framing", "octet")
        sendWithLogger(server.port, ["counted one", "counted two"], octetCount=True)
        got = self.messages(server, 2)
        self.assertEqual(len(got), 2)
        self.assertTrue(got[0].endswith(" counted one"), got[0])
        self.assertTrue(got[1].endswith(" counted two"), got[1])

    def test_auto(self) -> None:
        """
        C{--framing auto} takes both kinds of sender on one port.
        """
        server = LineLogger(self, "--format", "json", "--framing", "auto")
        sendWithLogger(server.port, ["by lf"], octetCount=False)
        sendWithLogger(server.port, ["by count"], octetCount=True)
        got = sorted(m.rsplit(" ", 2)[-2] + " " + m.rsplit(" ", 1)[-1] for m in self.messages(server, 2))
        self.assertEqual(got, ["by count", "by lf"])
        self.assertEqual(len(server.records()), 2, "exactly once each")


class SysLogHandlerTests(SyslogTestCase):
    """
    Python's C{logging.handlers.SysLogHandler(socktype=SOCK_STREAM)}.
    """

    def test_defaultFraming(self) -> None:
        """
        With the default framing, no C{--framing} given, each message is
        one record (one per line for a message with a LF in it, the first
        one too), and a LF-ended line from another client with a NUL in it
        stays whole.
        """
        server = LineLogger(self, "--format", "json")
        sendWithSysLogHandler(server.port, ["first\nof two lines", "disk almost full", "disk full"])
        self.assertEqual(
            self.messages(server, 4), ["<12>first", "of two lines", "<12>disk almost full", "<12>disk full"]
        )
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as client:
            client.sendall(b"nul\x00byte\n")
        self.assertEqual(self.messages(server, 5)[4], "nul\x00byte")

    def test_nul(self) -> None:
        """
        Messages end with NUL: with C{--framing nul} each is one record, with
        no NUL in it and no empty record between.
        """
        server = LineLogger(self, "--format", "json", "--framing", "nul")
        sendWithSysLogHandler(server.port, ["disk almost full", "disk full"])
        self.assertEqual(self.messages(server, 2), ["<12>disk almost full", "<12>disk full"])

    def test_auto(self) -> None:
        """
        C{--framing auto} reads SysLogHandler's NUL-ended messages too.
        """
        server = LineLogger(self, "--format", "json", "--framing", "auto")
        sendWithSysLogHandler(server.port, ["one", "two", "three"])
        self.assertEqual(self.messages(server, 3), ["<12>one", "<12>two", "<12>three"])
