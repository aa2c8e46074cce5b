"""
C{--web} start-up and refusals, end to end: a real C{twistd} on 127.0.0.1
and plain HTTP over a socket.
"""

from __future__ import annotations

import os
import socket

from twisted.trial.unittest import SynchronousTestCase

from .twistd_helpers import LineLogger, freePort, makeTempDir, runTwistd


def httpGet(port: int, path: str, headers: str = "") -> bytes:
    """
    One HTTP/1.0 GET; the whole answer.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk


def startWeb(testCase: SynchronousTestCase, *options: str) -> int:
    """
    Start linelogger with C{--web} on a free port (retried if taken
    meanwhile) and C{options}; return the web port once it serves.
    """
    for _ in range(5):
        webPort = freePort()
        try:
            server = LineLogger(testCase, "--web", f"tcp:{webPort}:interface=127.0.0.1", *options)
        except AssertionError as e:
            if "Address already in use" not in str(e):
                raise
            continue
        server.twistd.waitForLog(f"Site starting on {webPort}")
        return webPort
    raise AssertionError("no free port for --web in 5 attempts")


class StartupTests(SynchronousTestCase):
    def test_badEndpoint(self) -> None:
        """
        A C{--web} that is no endpoint stops twistd with one line and a
        non-zero status, not a traceback.
        """
        status, log, _ = runTwistd(self, ["-n", "--pidfile=", "linelogger", "--port", "tcp:0", "--web", "bogus:1"])
        self.assertNotEqual(status, 0)
        self.assertIn("linelogger: --web bogus:1: Unknown endpoint type: 'bogus'", log)
        self.assertNotIn("Traceback", log)

    def test_missingTokenFile(self) -> None:
        status, log, _ = runTwistd(
            self, ["-n", "--pidfile=", "linelogger", "--web", "tcp:0", "--web-token-file", "/nonexistent/token"]
        )
        self.assertNotEqual(status, 0)
        self.assertIn("cannot read --web-token-file /nonexistent/token: No such file or directory", log)
        self.assertNotIn("Traceback", log)

    def test_webPortTaken(self) -> None:
        """
        A C{--web} port already in use: one line, non-zero status.
        """
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            status, log, _ = runTwistd(
                self, ["-n", "--pidfile=", "linelogger", "--port", "tcp:0", "--web", f"tcp:{port}:interface=127.0.0.1"]
            )
        self.assertNotEqual(status, 0)
        self.assertIn("Address already in use", log)
        self.assertNotIn("Traceback", log)


class RefusalTests(SynchronousTestCase):
    def test_tailOffWithoutTokenFile(self) -> None:
        """
        Without C{--web-token-file}, C{/tail} says the tail is off; without
        C{--chat}, C{/} says it is no chat.
        """
        webPort = startWeb(self)
        answer = httpGet(webPort, "/tail")
        self.assertTrue(answer.startswith(b"HTTP/1.0 403") or answer.startswith(b"HTTP/1.1 403"), answer[:100])
        self.assertIn(b"the tail is off: start linelogger with --web-token-file", answer)
        answer = httpGet(webPort, "/")
        self.assertIn(b" 404 ", answer.split(b"\r\n")[0])
        self.assertIn(b"--chat", answer)

    def test_tokenInHeader(self) -> None:
        """
        C{Authorization: Bearer} opens the tail as C{?token=} does.
        """
        workdir = makeTempDir(self)
        tokenFile = os.path.join(workdir, "token")
        with open(tokenFile, "w") as f:
            f.write("abc123\n")
        webPort = startWeb(self, "--web-token-file", tokenFile)
        self.assertIn(b" 401 ", httpGet(webPort, "/tail").split(b"\r\n")[0])
        self.assertIn(b" 401 ", httpGet(webPort, "/tail", "Authorization: Bearer abc124\r\n").split(b"\r\n")[0])
        self.assertIn(b" 200 ", httpGet(webPort, "/tail", "Authorization: Bearer abc123\r\n").split(b"\r\n")[0])
        self.assertIn(b" 200 ", httpGet(webPort, "/tail?token=abc123").split(b"\r\n")[0])
