"""
Unit tests for L{logger_service.worker} and the supervisor's pieces of
C{--workers}: adopting descriptions, parsing the worker count, and the
sockets that listen once every worker is ready.
"""

from __future__ import annotations

import socket
from typing import Any, List, Tuple

from twisted.internet.defer import succeed
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from logger_service.forwarding import SupervisorLink
from logger_service.optionvalues import workerCount
from logger_service.recorder import Recorder
from logger_service.reuseport import bindEndpoint
from logger_service.rootservice import QueueAcceptingListener
from logger_service.worker import adoptable
from logger_service.workerprocess import WorkerProcess
from logger_service.workers import WorkerPool
from logger_service.workerwire import LENGTH, LISTEN

from .memory import MemorySink


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


def refused(port: int) -> bool:
    """
    Whether a connection to 127.0.0.1:C{port} is refused right now (else it
    is made, and closed).
    """
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


class BindTests(SynchronousTestCase):
    """
    L{bindEndpoint}: the supervisor binds TCP sockets at start and makes
    them listen later.
    """

    def test_tcpListensWhenAsked(self) -> None:
        """
        A TCP endpoint is bound to one port for each worker (C{SO_REUSEPORT})
        but refuses connections until its sockets listen.
        """
        sockets = bindEndpoint(MemoryReactorClock(), "tcp:0:interface=127.0.0.1:backlog=7", 2)
        for each in sockets:
            self.addCleanup(each.stopListening)
        self.assertEqual(len(sockets), 2)
        port = sockets[0].socket.getsockname()[1]
        self.assertEqual({each.socket.getsockname()[1] for each in sockets}, {port})
        self.assertEqual([each.listening for each in sockets], [False, False])
        self.assertTrue(refused(port))
        for each in sockets:
            each.listen()
        self.assertEqual([each.listening for each in sockets], [True, True])
        self.assertFalse(refused(port))

    def test_bindFailureClosesTheOthers(self) -> None:
        """
        A port taken by another socket (without C{SO_REUSEPORT}) cannot be
        bound: the error says so.
        """
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        self.assertRaises(CannotListenError, bindEndpoint, MemoryReactorClock(), f"tcp:{port}:interface=127.0.0.1", 2)


class FakeLink:
    """
    A worker's link as the pool sees it: it counts the L{accept}s sent.
    """

    def __init__(self) -> None:
        self.accepts = 0

    def accept(self) -> None:
        self.accepts += 1


class ReadyTests(SynchronousTestCase):
    """
    L{WorkerPool.workerReady}: the sockets listen, and the workers accept,
    once every worker is ready.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.pool = WorkerPool(Recorder(MemorySink(), self.reactor), self.reactor, [], 2, [])
        self.readies: List[int] = []
        self.pool.onReady = lambda: self.readies.append(1)
        self.pool.ports = [bindEndpoint(self.reactor, "tcp:0:interface=127.0.0.1", 2)]
        for each in self.pool.ports[0]:
            self.addCleanup(each.stopListening)
        self.port = self.pool.ports[0][0].socket.getsockname()[1]

    def worker(self, slot: int, generation: int = 0) -> Tuple[WorkerProcess, FakeLink]:
        worker = WorkerProcess(self.pool, slot, generation)
        link = FakeLink()
        worker.link = link  # type: ignore[assignment]
        self.pool.workers[slot] = worker
        return worker, link

    def ready(self, worker: WorkerProcess) -> None:
        worker.ready = True
        self.pool.workerReady(worker)

    def test_listenOnceAllReady(self) -> None:
        """
        One worker ready of two: nothing listens; both ready: the sockets
        listen, each worker is told to accept, and the pool is ready.
        """
        one, oneLink = self.worker(0)
        two, twoLink = self.worker(1)
        self.ready(one)
        self.assertTrue(refused(self.port))
        self.assertEqual((oneLink.accepts, twoLink.accepts, self.readies), (0, 0, []))
        self.ready(two)
        self.assertEqual([each.listening for each in self.pool.ports[0]], [True, True])
        self.assertFalse(refused(self.port))
        self.assertEqual((oneLink.accepts, twoLink.accepts, self.readies), (1, 1, [1]))

    def test_missingWorkerIsNotReady(self) -> None:
        """
        A worker that ended before it was ready (its slot empty until it is
        replaced) keeps the others from being all ready.
        """
        one, oneLink = self.worker(0)
        self.ready(one)
        self.assertTrue(refused(self.port))
        self.assertEqual((oneLink.accepts, self.readies), (0, []))

    def test_addressTakenMeanwhile(self) -> None:
        """
        Another socket that took the address while it was bound but not
        yet listening (with C{SO_REUSEADDR} it may): the sockets cannot
        listen, which is logged in one line, and the pool stops itself
        rather than wait for connections that cannot come.
        """
        other = socket.socket()
        self.addCleanup(other.close)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", self.port))
        other.listen(5)
        stops: List[int] = []
        self.pool.stopSelf = lambda: stops.append(1)
        one, oneLink = self.worker(0)
        two, twoLink = self.worker(1)
        with capturedLogs() as logged:
            self.ready(one)
            self.ready(two)
        self.assertEqual((stops, oneLink.accepts, twoLink.accepts, self.readies), ([1], 0, 0, []))
        critical = [e for e in logged if e.get("log_level") == LogLevel.critical]
        self.assertEqual(len(critical), 1, logged)
        self.assertIn("cannot listen on", formatEvent(critical[0]))

    def test_replacementAcceptsAtOnce(self) -> None:
        """
        A worker that replaces another, once ready, is told to accept at
        once: the sockets listen already.
        """
        one, _ = self.worker(0)
        two, _ = self.worker(1)
        self.ready(one)
        self.ready(two)
        again, againLink = self.worker(1, generation=1)
        self.assertEqual(againLink.accepts, 0)
        self.ready(again)
        self.assertEqual((againLink.accepts, self.readies), (1, [1]))


class SupervisorLinkTests(SynchronousTestCase):
    """
    L{SupervisorLink}: the worker's end hears when to accept.
    """

    def test_listen(self) -> None:
        """
        A L{LISTEN} message calls C{accept}.
        """
        accepted: List[int] = []
        link = SupervisorLink(None, lambda: None, accept=lambda: accepted.append(1))
        link.makeConnection(StringTransport())
        link.dataReceived(LENGTH.pack(len(LISTEN)) + LISTEN)
        self.assertEqual(accepted, [1])


class FakePort:
    """
    A listening port for L{QueueAcceptingListener}: it records whether it
    reads, and counts the reads done to accept what is queued.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self.reading = False
        self.reads = 0
        self.stopped = False

    def startReading(self) -> None:
        self.reading = True

    def stopReading(self) -> None:
        self.reading = False

    def fileno(self) -> int:
        return self.socket.fileno()

    def doRead(self) -> None:
        self.reads += 1
        self.socket.accept()[0].close()

    def stopListening(self) -> None:
        self.stopped = True


@implementer(IStreamServerEndpoint)
class FakeEndpoint:
    """
    An endpoint that "listens" on a given L{FakePort} (reading, as
    Twisted's ports do once listening).
    """

    def __init__(self, port: FakePort) -> None:
        self.port = port

    def listen(self, factory: Any) -> Any:
        self.port.startReading()
        return succeed(self.port)


class PausedListenerTests(SynchronousTestCase):
    """
    A paused L{QueueAcceptingListener}, as a worker's are until the
    supervisor says the sockets listen.
    """

    def listener(self, sock: socket.socket) -> Tuple[QueueAcceptingListener, FakePort]:
        port = FakePort(sock)
        listener = QueueAcceptingListener(FakeEndpoint(port), Factory(), 10, paused=True)
        listener.startService()
        return listener, port

    def test_pausedUntilResumed(self) -> None:
        """
        It takes the socket but does not read it until resumed; stopped
        then, it does not try to accept on a socket that does not listen.
        """
        sock = socket.socket()
        self.addCleanup(sock.close)
        sock.bind(("127.0.0.1", 0))
        listener, port = self.listener(sock)
        self.assertFalse(port.reading)
        listener.stopService()
        self.assertEqual((port.reads, port.stopped), (0, True))
        listener.resume()
        self.assertFalse(port.reading)

    def test_resume(self) -> None:
        """
        Resumed, it reads.
        """
        sock = socket.socket()
        self.addCleanup(sock.close)
        sock.bind(("127.0.0.1", 0))
        sock.listen(5)
        listener, port = self.listener(sock)
        listener.resume()
        self.assertTrue(port.reading)

    def test_stoppedPausedAcceptsQueued(self) -> None:
        """
        Stopped while still paused but with its socket listening (the
        supervisor's word to accept not read yet), it accepts the
        connections queued there before it closes, as a running one does.
        """
        sock = socket.socket()
        self.addCleanup(sock.close)
        sock.bind(("127.0.0.1", 0))
        sock.listen(5)
        sock.setblocking(False)
        client = socket.create_connection(sock.getsockname(), timeout=5)
        self.addCleanup(client.close)
        listener, port = self.listener(sock)
        listener.stopService()
        self.assertEqual((port.reads, port.stopped), (1, True))
