"""
The shutdown drain: read what the open connections sent before the signal,
record it, close them, then close the output.

At shutdown L{HubService} keeps reading each open connection until it has
everything the kernel had received for it when the shutdown began, then
has any partial lines recorded, closes the connections and has the hub
close its recorder.

The drain counts bytes where the kernel counts them: on the socket, below
any TLS or PROXY-protocol layer (see L{InputDrain}).  What TLS clients send
is counted as ciphertext there, and every complete TLS record among those
bytes is decrypted and handed on before the count is reached, so nothing a
client of any transport sent before the signal is left unread.

Connections the kernel has completed but nobody accepted yet when the
shutdown begins (they wait in a listening socket's queue, their lines in
the kernel already) would be reset when the listener closes: each listener
first accepts them (L{acceptQueued}), so that they are drained as the
others are.
"""

from __future__ import annotations

import fcntl
import select
import termios
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from .interfaces import IConnection
from .twistedprivate import acceptedCount

if TYPE_CHECKING:
    from .connlog import ConnectionLog
    from .hub import Hub

log = Logger()


def socketLayer(transport: Any) -> Any:
    """
    The transport at the bottom of C{transport}'s stack: the one that reads
    the socket.  A TLS or PROXY-protocol layer is a protocol wrapper that
    is the transport of the protocol above it and keeps the transport below
    it as its own C{transport}.
    """
    for _ in range(8):
        # From the instance itself: a protocol wrapper would pass a missing
        # attribute on to the transport below it.
        below = vars(transport).get("transport") if hasattr(transport, "__dict__") else None
        if below is None:
            break
        transport = below
    return transport


def pendingInput(protocol: IConnection) -> int:
    """
    How many bytes the kernel holds, not yet read, for C{protocol}'s socket
    (below any TLS or PROXY-protocol layer).

    @return: the count, or 0 where the transport has no socket to ask.
    """
    try:
        fileno = socketLayer(protocol.transport).getHandle().fileno()
        buf = fcntl.ioctl(fileno, termios.FIONREAD, b"\0\0\0\0")
    except (AttributeError, OSError, ValueError, TypeError):
        return 0
    return int.from_bytes(buf, "little", signed=True)


def acceptQueued(port: Any, most: int) -> int:
    """
    Accept the connections the kernel has already queued on the listening
    C{port}, at most C{most} of them, before it stops listening.

    The listening socket is readable as long as its queue holds a
    connection; C{port.doRead()} accepts what is queued (as many at a time
    as the port accepts per turn of the reactor, and no more than are left
    to accept) and hands each connection to the port's factory, as when
    running.  A queue holds at most the listen backlog and one more, so
    C{backlog + 1} covers every connection queued when the shutdown begins,
    while clients that go on connecting cannot keep it going.

    @param port: a listening port that is an C{IReadDescriptor} (TCP, UNIX,
        adopted; under TLS and PROXY-protocol factories too).
    @return: how many connections it accepted (where the port cannot
        tell, how many times it was read).
    """
    try:
        poller = select.poll()
        poller.register(port.fileno(), select.POLLIN)
    except (AttributeError, OSError, ValueError, TypeError):
        return 0
    before = acceptedCount(port)
    reads = accepted = 0
    while reads < most and accepted < most and poller.poll(0):
        if isinstance(getattr(port, "numberAccepts", None), int):
            # Twisted's TCP and UNIX ports accept up to this many per read
            # (and raise it after a read that reached it): no more than
            # are left to accept.
            port.numberAccepts = min(port.numberAccepts, most - accepted)
        port.doRead()
        reads += 1
        now = acceptedCount(port)
        accepted = reads if now is None or before is None else now - before
    return accepted


class InputDrain:
    """
    Count the bytes one connection's socket delivers from now on, and say
    when C{pending} of them have come.

    The count is taken where the socket's transport hands its bytes to the
    protocol above it: to the line protocol itself on plain TCP, UNIX or an
    adopted socket; to Twisted's TLS or PROXY-protocol wrapper otherwise.
    That protocol's C{dataReceived} is shadowed, on that instance and only
    while the drain lasts, by L{dataReceived}.  The wrapper has done with
    the bytes when its C{dataReceived} returns: Twisted's TLS layer
    decrypts every complete record they hold (reading until OpenSSL has
    nothing more to give) and hands the plaintext on at once, and the PROXY
    layer hands on whatever follows the header, so when the count is
    reached the line protocol has had all that the client sent before.

    @ivar protocol: the line protocol being drained.
    @ivar receiver: the protocol the socket's transport delivers to.
    @ivar left: bytes still to come.
    """

    def __init__(self, protocol: IConnection, pending: int, done: Callable[[], None]) -> None:
        self.protocol = protocol
        bottom = socketLayer(protocol.transport)
        receiver = getattr(bottom, "protocol", None)
        self.receiver: Any = protocol
        if receiver is not None:
            self.receiver = receiver
        self.left = pending
        self._done: Optional[Callable[[], None]] = done
        self._original = self.receiver.dataReceived
        self.receiver.dataReceived = self.dataReceived

    def dataReceived(self, data: bytes) -> None:
        """
        Count C{data}, hand it on, and end the drain once all has come.
        """
        self.left -= len(data)
        self._original(data)
        if self.left <= 0:
            self.stop()

    def stop(self) -> None:
        """
        Stop counting (the count was reached, or the connection is gone),
        and say so, once.
        """
        if vars(self.receiver).get("dataReceived") == self.dataReceived:
            del self.receiver.dataReceived
        done, self._done = self._done, None
        if done is not None:
            done()


class HubService(Service):
    """
    Stops the hub cleanly: drain, record, close.

    Put it in the service tree before the listeners, so that a
    L{MultiService} stops the listeners first.

    @ivar drainTimeout: the longest a shutdown waits for input to drain, and
        then again for the output to take the last records.
    @ivar connectionLog: the connection log whose pending summary is logged
        once the last connections are closed, or C{None}.
    """

    def __init__(
        self,
        hub: Hub,
        clock: IReactorTime,
        drainTimeout: float = 30.0,
        connectionLog: Optional[ConnectionLog] = None,
    ) -> None:
        self.hub = hub
        self.clock = clock
        self.drainTimeout = drainTimeout
        self.connectionLog = connectionLog
        self._stopped: Optional[Deferred[None]] = None
        self._waiting: Dict[int, InputDrain] = {}
        self._timeout: Optional[IDelayedCall] = None

    def stopService(self) -> Deferred[None]:
        """
        Read what the open connections already sent, record it, close the
        connections, and wait until the records are written.
        """
        Service.stopService(self)
        stopped: Deferred[None] = Deferred()
        self._stopped = stopped
        # Connections still waiting for their PROXY header too: what they
        # sent is as much before the signal as what the others sent.
        for protocol in list(self.hub.connections.values()) + list(self.hub.awaitingHeader.values()):
            pending = pendingInput(protocol)
            if protocol.closing is not None:
                # This side is closing it, and reads nothing more from it.
                continue
            if pending > 0:
                key = id(protocol)
                progress = lambda key=key: self._progress(key)  # noqa: E731
                self._waiting[key] = InputDrain(protocol, pending, progress)
                protocol.drain(progress)
            else:
                # What it sends from now on was sent after the signal.
                protocol.pauseReading("stopping")
        if self._waiting:
            log.info("Stopping: reading what {count} connections already sent", count=len(self._waiting))
            self._timeout = self.clock.callLater(self.drainTimeout, self._finish)
        else:
            self._finish()
        return stopped

    def _progress(self, key: int) -> None:
        """
        The connection whose C{id()} is C{key} has delivered all it had, or
        closed: stop reading it, so that the connections still draining get
        the time.
        """
        drain = self._waiting.pop(key, None)
        if drain is None:
            return
        drain.stop()
        drain.protocol.pauseReading("stopping")
        if not self._waiting and self._timeout is not None:
            self._finish()

    def _finish(self) -> None:
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self._timeout = None
        if self._waiting:
            log.warn(
                "Stopping: {count} connections still had unread input after {timeout}s",
                count=len(self._waiting),
                timeout=self.drainTimeout,
            )
            for drain in list(self._waiting.values()):
                drain.stop()
            self._waiting.clear()
        for protocol in list(self.hub.connections.values()):
            protocol.finish("server shutting down")
        for protocol in list(self.hub.awaitingHeader.values()):
            # No header yet, so no lines either.
            protocol.closeUnstarted()
        if self.connectionLog is not None:
            # Those disconnections may be waiting for a summary that the
            # reactor would not live to run.
            self.connectionLog.stop()
        stopped, self._stopped = self._stopped, None
        assert stopped is not None
        self.hub.closeOutput(self.drainTimeout).addBoth(lambda _: stopped.callback(None))
