"""
TLS and the PROXY protocol, end to end: a real twistd, a certificate made
here, C{openssl s_client} and Python's ssl as clients, and a PROXY v1
header as a load balancer sends it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import ssl
import struct
import subprocess
import termios
import threading
from typing import Dict, List

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from .twistd_helpers import (
    LineLogger,
    assertCleanShutdown,
    canConnect,
    freePort,
    makeTempDir,
    parseTextRecord,
    waitFor,
)

try:
    import OpenSSL  # noqa: F401

    HAVE_TLS = True
except ImportError:
    HAVE_TLS = False


def makeCertificate(directory: str) -> tuple:
    """
    Make a self-signed certificate for 127.0.0.1 with the openssl command.
    """
    key = os.path.join(directory, "key.pem")
    cert = os.path.join(directory, "cert.pem")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            key,
            "-out",
            cert,
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return key, cert


class TLSTests(SynchronousTestCase):
    """
    C{--port ssl:PORT:privateKey=KEY:certKey=CERT} serves TLS clients.
    """

    def setUp(self) -> None:
        if not HAVE_TLS:
            raise SkipTest("TLS needs pyOpenSSL: pip install 'Twisted[tls]'")
        if shutil.which("openssl") is None:
            raise SkipTest("no openssl command to make a certificate")
        self.dir = makeTempDir(self)
        self.key, self.cert = makeCertificate(self.dir)
        self.tlsPort = freePort()
        self.server = LineLogger(
            self,
            "--port",
            f"ssl:{self.tlsPort}:privateKey={self.key}:certKey={self.cert}:interface=127.0.0.1",
        )
        waitFor("the TLS port", lambda: canConnect(("127.0.0.1", self.tlsPort)), timeout=20)

    def test_pythonClient(self) -> None:
        """
        A verifying TLS client's lines are recorded with its address.
        """
        context = ssl.create_default_context(cafile=self.cert)
        with socket.create_connection(("127.0.0.1", self.tlsPort), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"over tls\r\nsecond\n")
                local = tls.getsockname()
                tls.unwrap()
        records = [parseTextRecord(r) for r in self.server.waitForRecords(2)]
        self.assertEqual([payload for _, _, payload in records], ["over tls", "second"])
        self.assertEqual({peer for _, peer, _ in records}, {f"127.0.0.1:{local[1]}"})

    def test_openssl_s_client(self) -> None:
        """
        C{openssl s_client}, as an operator would test it, gets through.
        """
        result = subprocess.run(
            [
                "openssl",
                "s_client",
                "-quiet",
                "-no_ign_eof",
                "-connect",
                f"127.0.0.1:{self.tlsPort}",
                "-CAfile",
                self.cert,
            ],
            input=b"hello from s_client\n",
            capture_output=True,
            timeout=30,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        records = self.server.waitForRecords(1)
        self.assertEqual(parseTextRecord(records[0])[2], "hello from s_client")


class ProxyProtocolTests(SynchronousTestCase):
    """
    C{--port haproxy:tcp:PORT}: records show the client the load balancer
    saw, not the load balancer.
    """

    def test_v1Header(self) -> None:
        """
        A PROXY v1 header names the original client; its lines carry that
        address, IPv4 and IPv6.
        """
        port = freePort()
        server = LineLogger(self, "--port", f"haproxy:tcp:{port}:interface=127.0.0.1")
        waitFor("the proxied port", lambda: canConnect(("127.0.0.1", port)), timeout=20)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 51234 1234\r\nbehind a balancer\n")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"PROXY TCP6 2001:db8::5 ::1 40000 1234\r\nover v6\n")
        records = sorted(parseTextRecord(r)[1:] for r in server.waitForRecords(2))
        self.assertEqual(records, [("203.0.113.7:51234", "behind a balancer"), ("[2001:db8::5]:40000", "over v6")])
        self.assertIn("Got connection from 203.0.113.7:51234", server.log())


class SigtermDrainTests(SynchronousTestCase):
    """
    SIGTERM while clients' lines wait unread in the server's socket buffers:
    every line the server's kernel had received is recorded, over TLS and
    behind a PROXY-protocol listener as over plain TCP.

    C{--max-rate} makes the server read slowly, so that when the signal
    comes most of each client's lines are still in the kernel; each client
    has sent all it will send and its kernel has nothing left to send
    (C{SIOCOUTQ} is 0) before the signal.
    """

    clients = 10
    lines = 3000

    def line(self, client: int, n: int) -> bytes:
        return b"c%03d %05d %s\n" % (client, n, b"x" * 30)

    def burst(self, client: int) -> bytes:
        return b"".join(self.line(client, n) for n in range(self.lines))

    def sigtermAndCheck(self, server: LineLogger, sockets: list, peers: list) -> None:
        """
        Wait until every byte sent is in the server's kernel, SIGTERM, and
        check that every line is recorded once, in order.
        """

        def unsent(s: socket.socket) -> int:
            count: int = struct.unpack("i", fcntl.ioctl(s.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
            return count

        waitFor("the server's kernel to take every byte", lambda: all(unsent(s) == 0 for s in sockets), timeout=30)
        before = len(server.records())
        status = server.stop()
        log = server.log()
        assertCleanShutdown(self, status, log)
        byPeer: Dict[str, List[str]] = {}
        for record in server.records():
            _, peer, payload = parseTextRecord(record)
            byPeer.setdefault(peer, []).append(payload)
        print(
            f"\n{self.clients} clients x {self.lines} lines: {before} recorded before SIGTERM, "
            f"{sum(len(v) for v in byPeer.values())} after"
        )
        self.assertLess(before, self.clients * self.lines, "the server had read everything before the signal")
        for client, peer in enumerate(peers):
            expected = [self.line(client, n).decode().rstrip("\n") for n in range(self.lines)]
            got = byPeer.get(peer, [])
            self.assertEqual(len(got), len(expected), f"client {client} ({peer}): lines lost\n{log[-2000:]}")
            self.assertEqual(got, expected)

    def test_tls(self) -> None:
        """
        TLS clients: nothing they sent before the signal is lost.
        """
        if not HAVE_TLS:
            raise SkipTest("TLS needs pyOpenSSL: pip install 'Twisted[tls]'")
        if shutil.which("openssl") is None:
            raise SkipTest("no openssl command to make a certificate")
        directory = makeTempDir(self)
        key, cert = makeCertificate(directory)
        port = freePort()
        server = LineLogger(
            self,
            "--port",
            f"ssl:{port}:privateKey={key}:certKey={cert}:interface=127.0.0.1",
            "--max-rate",
            "1000",
            "--connection-log-rate",
            "0",
        )
        waitFor("the TLS port", lambda: canConnect(("127.0.0.1", port)), timeout=20)
        context = ssl.create_default_context(cafile=cert)
        sockets = []
        for _ in range(self.clients):
            raw = socket.create_connection(("127.0.0.1", port), timeout=30)
            tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
            self.addCleanup(tls.close)
            sockets.append(tls)
        peers = [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
        threads = [
            threading.Thread(target=s.sendall, args=(self.burst(i),), daemon=True) for i, s in enumerate(sockets)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.sigtermAndCheck(server, sockets, peers)

    def test_proxy(self) -> None:
        """
        Clients behind a PROXY-protocol listener: nothing they sent before
        the signal is lost.
        """
        port = freePort()
        server = LineLogger(
            self,
            "--port",
            f"haproxy:tcp:{port}:interface=127.0.0.1",
            "--max-rate",
            "1000",
            "--connection-log-rate",
            "0",
        )
        waitFor("the proxied port", lambda: canConnect(("127.0.0.1", port)), timeout=20)
        sockets = []
        peers = []
        for i in range(self.clients):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            self.addCleanup(s.close)
            s.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 %d 1234\r\n" % (40000 + i))
            sockets.append(s)
            peers.append(f"203.0.113.7:{40000 + i}")
        for i, s in enumerate(sockets):
            s.sendall(self.burst(i))
        self.sigtermAndCheck(server, sockets, peers)
