"""
Chat rooms across processes, end to end: a real C{redis-server} on a free
loopback port with its own data directory, and real C{twistd -n linelogger
--chat --redis ...} nodes on 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.request
from typing import Dict, List, Optional

from twisted.trial.unittest import SynchronousTestCase

from logger_service.redis.presence import DEAD_AFTER, HEARTBEAT

from .redis_helpers import ClusterTestCase, Collector, RedisServer, expectEnding
from .test_chat_twistd import ChatClient
from .twistd_helpers import LineLogger, freePort, waitFor

BOUND = 15.0
"""The documented bound: a lost node's members leave within it."""


class RelayTests(ClusterTestCase):
    """
    Rooms, nicknames and commands span the nodes.
    """

    def test_relayAcrossNodes(self) -> None:
        """
        A line said on one node reaches a member on the other, once, and not
        its sender; only the sender's node records it.
        """
        a = self.join(self.nodes[0], "alice")
        b = self.join(self.nodes[1], "bob")
        expectEnding(a, " is now bob")
        a.send("hello across")
        seen = b.expect("<alice> hello across", 20)
        self.assertNotIn("<alice> hello across", seen)
        b.send("and back")
        self.assertEqual(a.expect("<bob> and back", 20), [])
        self.nodes[0].waitForRecords(2)
        recordsA = [r for r in self.nodes[0].records() if "hello across" in r]
        recordsB = [r for r in self.nodes[1].records() if "hello across" in r]
        self.assertEqual((len(recordsA), len(recordsB)), (1, 0))

    def test_sameOrderEverywhere(self) -> None:
        """
        Senders on both nodes at once: observers on both nodes see every
        message once, in the same order.
        """
        senders = [self.join(self.nodes[i % 2], f"s{i}") for i in range(4)]
        observers = [self.join(node, f"o{i}") for i, node in enumerate(self.nodes)]
        for observer in observers:
            self.waitForWho(observer, "(6)")
        collectors = [Collector(o) for o in observers]
        count = 60

        def talk(client: ChatClient, i: int) -> None:
            for n in range(count):
                client.send(f"m {i} {n}")
                if n % 10 == 0:
                    time.sleep(0.01)

        threads = [threading.Thread(target=talk, args=(c, i)) for i, c in enumerate(senders)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        total = count * len(senders)
        for c in collectors:
            c.waitFor("<s", total)
        time.sleep(0.5)
        for c in collectors:
            c.stop()
        first, second = (c.messages("<s") for c in collectors)
        self.assertEqual(len(first), total)
        self.assertEqual(len(set(first)), total)
        self.assertEqual(first, second)
        for i in range(len(senders)):
            own = [line for line in first if line.startswith(f"<s{i}> ")]
            self.assertEqual(own, [f"<s{i}> m {i} {n}" for n in range(count)])

    def test_nickRace(self) -> None:
        """
        Two nodes' members asking for one nickname at once: exactly one
        gets it, every time.
        """
        a = self.join(self.nodes[0])
        b = self.join(self.nodes[1])
        races = 0
        for n in range(10):
            nick = f"racer{n}"
            a.send(f"/nick {nick}")
            b.send(f"/nick {nick}")
            answers: List[Optional[bool]] = []
            for client in (a, b):
                seen: List[str] = []
                while True:
                    try:
                        line = client.readLine(20) or ""
                    except AssertionError as e:
                        raise AssertionError(f"no answer to /nick {nick}; lines before: {seen}") from e
                    if line in (f"* You are now {nick}.", f"! The nickname {nick} is taken."):
                        answers.append(line.startswith("* You"))
                        break
                    if line == f"! The nickname {nick} could not be checked: try again soon.":
                        # Redis was slow to answer: this round raced nothing.
                        answers.append(None)
                        break
                    seen.append(line)
            if None in answers:
                continue
            self.assertEqual(sorted(answers), [False, True], nick)
            races += 1
            if races == 5:
                break
        self.assertEqual(races, 5)

    def test_msgWhoRoomsAcrossNodes(self) -> None:
        """
        /msg reaches a member of the other node; /who and /rooms list both
        nodes' members.
        """
        a = self.join(self.nodes[0], "alice")
        b = self.join(self.nodes[1], "bob")
        b.send("/msg alice psst")
        b.expect("-> *alice* psst", 20)
        a.expect("*bob* psst", 20)
        b.send("/msg nobody hello")
        b.expect("! No one is called nobody.", 20)
        self.waitForAnswer(b, "/who", "* In #", "* In #lobby (2): alice, bob")
        a.send("/join #side")
        a.expect("* You are now in #side.", 20)
        # Node A records the move in Redis a moment after alice sees it.
        self.waitForAnswer(b, "/rooms", "* Rooms: ", "* Rooms: #lobby (1), #side (1)")


class HistoryTests(ClusterTestCase):
    """
    History comes from Redis, as much as each node's --history says.
    """

    def test_noHistory(self) -> None:
        """
        A node with C{--history 0} replays nothing, and delivers only what
        is said after its member joined.
        """
        a = self.join(self.nodes[0], "alice")
        a.send("before")
        self.nodes[0].waitForRecords(2)
        quiet = self.node("--history", "0")
        c = self.join(quiet, "carol")
        a.send("after")
        self.assertEqual(c.expect("<alice> after", 20), [])


class FailureTests(ClusterTestCase):
    """
    Nodes and Redis that die.
    """

    def test_stoppedNodeMembersLeave(self) -> None:
        """
        A node stopped normally: each of its members leaves the rooms of the
        other node at once, each once.
        """
        a = self.join(self.nodes[0], "alice")
        self.join(self.nodes[1], "bob")
        self.join(self.nodes[1], "carol")
        self.waitForWho(a, "(3)")
        self.nodes[1].twistd.terminate()
        self.nodes[1].twistd.wait(20)
        lines: List[str] = []
        deadline = time.monotonic() + 10
        while len([line for line in lines if " left (" in line]) < 2 and time.monotonic() < deadline:
            lines.append(a.readLine(10) or "")
        left = sorted(line for line in lines if " left (" in line)
        self.assertEqual(left, ["* bob left (server shutting down)", "* carol left (server shutting down)"])
        self.waitForAnswer(a, "/who", "* In #", "* In #lobby (1): alice")

    def test_killedNodeMembersLeave(self) -> None:
        """
        kill -9 of a node: its members leave the rooms of the other within
        the documented bound, and their nicknames are free again.
        """
        a = self.join(self.nodes[0], "alice")
        c = self.join(self.nodes[1], "carol")
        expectEnding(a, " is now carol")
        c.send("/join #side")
        c.expect("* You are now in #side.", 20)
        a.send("/join #side")
        a.expect("* You are now in #side.", 20)
        # Wait for a heartbeat to have recorded the node with its members.
        time.sleep(HEARTBEAT + 0.5)
        killed = time.monotonic()
        self.nodes[1].twistd.kill()
        a.expect("* carol left (server lost)", BOUND + 15)
        elapsed = time.monotonic() - killed
        self.assertLessEqual(elapsed, BOUND, f"left after {elapsed:.1f}s")
        self.assertGreaterEqual(elapsed, DEAD_AFTER - HEARTBEAT)
        a.send("/nick carol")
        a.expect("* You are now carol.", 20)

    def test_redisRestartMidTraffic(self) -> None:
        """
        Redis killed (-9) and restarted while a member of each node sends:
        members of a sender's node hear it meanwhile; after the restart the
        members on both nodes have every line of both once, in order, and
        /metrics counts the reconnection.
        """
        metricsPort = freePort()
        self.nodes[0].twistd.terminate()
        self.nodes[0].twistd.wait(20)
        self.nodes[0] = self.node("--metrics", f"tcp:{metricsPort}:interface=127.0.0.1")
        sender = self.join(self.nodes[0], "sender")
        remote = self.join(self.nodes[1], "remote")
        local = self.join(self.nodes[0], "local")
        other = self.join(self.nodes[1], "other")
        expectEnding(sender, " is now other")
        collectors = [Collector(remote), Collector(local)]
        total = 300
        for n in range(total):
            sender.send(f"line {n}")
            other.send(f"too {n}")
            time.sleep(0.01)
            if n == 100:
                self.redis.kill()
            if n == 179:
                # Rooms split meanwhile: this node's members still hear each
                # other; the other node hears nothing.
                collectors[1].waitFor("<sender>", 180, 20)
                self.assertLessEqual(len(collectors[0].messages("<sender>")), 101)
                self.redis.start()
        for c in collectors:
            c.waitFor("<sender>", total)
            c.waitFor("<other>", total)
        time.sleep(1.0)
        for c in collectors:
            c.stop()
        for c in collectors:
            self.assertEqual(c.messages("<sender>"), [f"<sender> line {n}" for n in range(total)])
            self.assertEqual(c.messages("<other>"), [f"<other> too {n}" for n in range(total)])
        metrics: Dict[str, float] = {}
        body = urllib.request.urlopen(f"http://127.0.0.1:{metricsPort}/metrics", timeout=10).read().decode()
        for line in body.splitlines():
            if line.startswith("linelogger_redis_"):
                name, value = line.split()
                metrics[name] = float(value)
        self.assertEqual(metrics["linelogger_redis_up"], 1.0)
        self.assertGreaterEqual(metrics["linelogger_redis_reconnects_total"], 1.0)
        self.assertEqual(self.nodes[0].log().count("Redis at"), 2, self.nodes[0].log())

    def test_slowRedis(self) -> None:
        """
        Redis that stops answering for a while (CLIENT PAUSE): the node
        still reads and records its clients' lines; they are relayed after.
        """
        a = self.join(self.nodes[0], "alice")
        b = self.join(self.nodes[1], "bob")
        expectEnding(a, " is now bob")
        with socket.create_connection(("127.0.0.1", self.redis.port), timeout=10) as s:
            s.sendall(b"CLIENT PAUSE 4000 ALL\r\n")
            self.assertEqual(s.recv(100), b"+OK\r\n")
        paused = time.monotonic()
        a.send("while paused 1", "while paused 2")
        records = self.nodes[0].waitForRecords(3, timeout=10)
        self.assertLess(time.monotonic() - paused, 3.0)
        self.assertTrue(any("while paused 2" in r for r in records), records)
        b.expect("<alice> while paused 1", 30)
        b.expect("<alice> while paused 2", 30)

    def test_historyAfterEveryNodeRestarted(self) -> None:
        """
        Every node stopped and started again: a member joining any node gets
        the room's history from Redis.
        """
        a = self.join(self.nodes[0], "alice")
        b = self.join(self.nodes[1], "bob")
        a.send("one", "two")
        b.expect("<alice> two", 20)
        b.send("three")
        a.expect("<bob> three", 20)
        for node in self.nodes:
            node.twistd.terminate()
        for node in self.nodes:
            node.twistd.wait(20)
        self.nodes = [self.node(), self.node()]
        for node in self.nodes:
            client = ChatClient(node.connect())
            client.readLine(20)
            self.assertEqual(
                [client.readLine(20) for _ in range(4)],
                ["* Last 3 messages in #lobby:", "<alice> one", "<alice> two", "<bob> three"],
            )


class RedisDownAtStartTests(SynchronousTestCase):
    """
    A node whose Redis is not there yet.
    """

    def test_startsAnyway(self) -> None:
        """
        The node starts, says so in one log line, serves its own members,
        and joins the cluster once Redis is up.
        """
        redis = RedisServer(self)
        redis.kill()
        prefix = f"d{os.getpid()}"
        node = LineLogger(self, "--chat", "--redis", redis.url, "--redis-prefix", prefix)
        node.twistd.waitForLog("does not answer", timeout=20)
        client = ChatClient(node.connect())
        self.assertTrue((client.readLine(20) or "").startswith("* Welcome, guest"))
        redis.start()
        node.twistd.waitForLog("answers again", timeout=30)
        other = LineLogger(self, "--chat", "--redis", redis.url, "--redis-prefix", prefix)
        other.twistd.waitForLog(" disconnected (0 lines;", timeout=20)
        second = ChatClient(other.connect())
        second.readLine(20)
        second.send("hello")
        while not (client.readLine(30) or "").endswith("> hello"):
            pass
        self.assertEqual(node.log().count("does not answer"), 1)


class WorkersTests(ClusterTestCase):
    """
    C{--chat --redis --workers 2}: each worker is a node of the cluster, so
    a room spans the workers of one twistd.
    """

    def setUp(self) -> None:
        self.redis = RedisServer(self)
        self.prefix = f"t{os.getpid()}x{id(self) % 100000}"
        server = LineLogger(
            self,
            "--chat",
            "--workers",
            "2",
            "--redis",
            self.redis.url,
            "--redis-prefix",
            self.prefix,
            *self.options,
        )
        server.twistd.waitForLog("All 2 workers listen", timeout=30)
        self.server = server

    def test_roomSpansWorkers(self) -> None:
        """
        Clients of one port, served by different workers (their guest
        nicknames carry different node tags), hear each other once.
        """
        clients: List[ChatClient] = []
        tags: Dict[str, ChatClient] = {}
        while len(tags) < 2:
            self.assertLess(len(clients), 40, "every connection went to one worker")
            client = self.join(self.server)
            clients.append(client)
            tags.setdefault(client.nick.rsplit("-", 1)[1], client)
        first, second = tags.values()
        self.waitForWho(first, f"({len(clients)})")
        first.send("across the workers")
        seen = second.expect(f"<{first.nick}> across the workers", 20)
        self.assertNotIn(f"<{first.nick}> across the workers", seen)
        second.send("and back")
        self.assertNotIn(f"<{second.nick}> and back", first.expect(f"<{second.nick}> and back", 20))
        # Other lines (/who) are recorded too: wait for the last one said.
        waitFor("its record", lambda: any("and back" in r for r in self.server.records()) or None, timeout=20)
        records = self.server.records()
        self.assertEqual(len([r for r in records if "across the workers" in r]), 1)
        self.assertEqual(len([r for r in records if "and back" in r]), 1)
