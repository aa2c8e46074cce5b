"""
A real C{redis-server} and a cluster of real linelogger chat nodes on it,
for the tests against them (L{tests.test_redis_twistd}): the server on a
free loopback port with its own data directory, the nodes on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from typing import List, Optional

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from .test_chat_twistd import ChatClient
from .twistd_helpers import LineLogger, freePort, makeTempDir, waitFor

REDIS_SERVER = shutil.which("redis-server") or (
    "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
)


class RedisServer:
    """
    A C{redis-server} of a test's own: loopback, a free port, its own data
    directory, every write in its append-only file before it answers.
    """

    def __init__(self, testCase: SynchronousTestCase) -> None:
        if REDIS_SERVER is None:
            raise SkipTest("redis-server is not installed (.ci/run installs it)")
        self.dir = makeTempDir(testCase)
        self.port = freePort()
        self.process: Optional[subprocess.Popen[bytes]] = None
        testCase.addCleanup(self.kill)
        self.start()

    @property
    def url(self) -> str:
        """
        The C{--redis} URL of this server.
        """
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        """
        Start (again, on the same port and data) and wait until it answers.
        """
        assert REDIS_SERVER is not None
        log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                self.dir,
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ],
            stdout=log,
            stderr=log,
        )
        log.close()
        waitFor("redis-server to answer", self.answers, 20.0, 0.05)

    def answers(self) -> bool:
        """
        Whether it answers PING.
        """
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(100).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """
        kill -9 it.
        """
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None


class Collector(threading.Thread):
    """
    Read every line a client receives, in a thread.
    """

    def __init__(self, client: ChatClient) -> None:
        threading.Thread.__init__(self, daemon=True)
        self.client = client
        self.lines: List[str] = []
        self.stopping = False
        self.start()

    def run(self) -> None:
        while not self.stopping:
            try:
                line = self.client.readLine(timeout=0.2)
            except (AssertionError, OSError):
                continue
            if line is None:
                return
            self.lines.append(line)

    def messages(self, prefix: str) -> List[str]:
        """
        The lines received so far that start with C{prefix}.
        """
        return [line for line in list(self.lines) if line.startswith(prefix)]

    def waitFor(self, prefix: str, count: int, timeout: float = 60.0) -> None:
        """
        Wait until C{count} lines starting with C{prefix} have arrived.
        """
        waitFor(f"{count} lines {prefix}", lambda: len(self.messages(prefix)) >= count, timeout, 0.05)

    def stop(self) -> None:
        self.stopping = True
        self.join(10)


class ClusterTestCase(SynchronousTestCase):
    """
    One Redis and two linelogger chat nodes on it.
    """

    options: List[str] = ["--flood-rate", "1000", "--flood-burst", "1000"]

    def setUp(self) -> None:
        self.redis = RedisServer(self)
        self.prefix = f"t{os.getpid()}x{id(self) % 100000}"
        self.nodes = [self.node(), self.node()]

    def node(self, *more: str) -> LineLogger:
        """
        Start a node on this test's Redis, with its probe connection gone.
        """
        server = LineLogger(
            self,
            "--chat",
            "--format",
            "json",
            "--redis",
            self.redis.url,
            "--redis-prefix",
            self.prefix,
            *self.options,
            *more,
        )
        server.twistd.waitForLog(" disconnected (0 lines;", timeout=20)
        return server

    def join(self, node: LineLogger, nick: Optional[str] = None) -> ChatClient:
        """
        Connect to C{node}, read the welcome, take C{nick} if given.
        """
        client = ChatClient(node.connect())
        line = client.readLine(20)
        match = re.fullmatch(
            r"\* Welcome, (guest\d+-[0-9a-f]{4})! You are in #lobby\. Type /help for commands\.", line or ""
        )
        self.assertIsNotNone(match, line)
        assert match is not None
        client.nick = match.group(1)
        if nick is not None:
            client.send(f"/nick {nick}")
            client.expect(f"* You are now {nick}.", 20)
            client.nick = nick
        return client

    def waitForWho(self, client: ChatClient, count: str) -> None:
        """
        Ask /who until the room holds C{count} members, on every node.
        """
        deadline = time.monotonic() + 60
        while True:
            client.send("/who")
            line = ""
            while not line.startswith("* In #"):
                line = client.readLine(20) or ""
            if f" {count}: " in line:
                return
            self.assertLess(time.monotonic(), deadline, line)
            time.sleep(0.2)

    def waitForAnswer(self, client: ChatClient, command: str, prefix: str, wanted: str) -> None:
        """
        Send C{command} until its answer (the line starting with C{prefix})
        is C{wanted}.
        """
        deadline = time.monotonic() + 30
        while True:
            client.send(command)
            line = ""
            while not line.startswith(prefix):
                line = client.readLine(20) or ""
            if line == wanted:
                return
            self.assertLess(time.monotonic(), deadline, line)
            time.sleep(0.1)


def expectEnding(client: ChatClient, suffix: str, timeout: float = 20.0) -> None:
    """
    Read lines until one ends with C{suffix}.
    """
    deadline = time.monotonic() + timeout
    while not (client.readLine(max(0.1, deadline - time.monotonic())) or "").endswith(suffix):
        pass
