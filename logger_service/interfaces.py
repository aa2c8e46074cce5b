"""
The small interfaces through which the parts of the service know each other.

Data flows one way: a connection (L{IConnection}) hands its lines to the
hub (L{IHub}), which hands them to a recorder (L{IRecorder}); what comes
back up the chain, pressure and acknowledgements, goes through a listener
(L{IRecordListener}) the recorder was given, and through the
L{IConnection} methods the hub calls.  The hub, the protocol and the
recorder know each other only through these, so that another class can
take one's place: in a worker process, the recorder that forwards records
to the supervisor; with C{--workers}, the supervisor's pool as the
recorder's listener.

A connection that does more with its input than record it (a chat
member's) hands it to a session (L{ISession}), which records it through
the connection (L{ISessionConnection}).  The chat knows its members'
clients only as L{IChatMember}s: a session of a TCP or WebSocket
connection here, or a member connected elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

from twisted.internet.interfaces import IPushProducer, ISystemHandle, ITCPTransport
from zope.interface import Attribute, Interface, implementer

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred
    from twisted.python.failure import Failure

    from .records import RecordContext


class IStreamTransport(ITCPTransport, IPushProducer, ISystemHandle):
    """
    What a stream transport offers: TCP, UNIX and TLS transports all do.
    """


class IConnection(Interface):
    """
    What the hub, and the shutdown drain, know of an open connection.
    """

    transport = Attribute("The connection's transport: the drain finds the socket below it.")

    closing = Attribute(
        "None, or why this side is closing the connection: nothing it sends from then on is read, "
        "so a shutdown does not wait for it."
    )

    def pauseReading(reason: str) -> None:
        """
        Stop reading from the client for C{reason}; reading resumes once
        every reason is gone.
        """

    def resumeReading(reason: str) -> None:
        """
        C{reason} to stop reading is gone.
        """

    def acknowledge(count: int) -> None:
        """
        C{count} more of the client's lines are written (and synced).
        """

    def drain(done: Callable[[], None]) -> None:
        """
        A shutdown is reading what the client sent before it: call
        C{done()} once, when the connection is finished or lost.
        """

    def finish(reason: str) -> None:
        """
        Record what is left, leave the hub, and close.
        """

    def closeUnstarted() -> None:
        """
        At shutdown, close a connection that never started (no PROXY
        header came yet, so it sent no lines).
        """

    def lineCounts() -> Tuple[int, int]:
        """
        What this open connection counted that the shared counters do not
        hold yet: C{(oversizeLines, droppedBytes)}.
        """


class IRecordListener(Interface):
    """
    Who hears what a recorder says back: pressure and durable lines.
    """

    def pressure(paused: bool) -> None:
        """
        The output is full or failing (C{True}) or has recovered (C{False}).
        """

    def durable(counts: Dict[int, int]) -> None:
        """
        These lines, a dict of counts by connection id, are written (and
        synced, with C{--fsync}).
        """


class IRecorder(Interface):
    """
    Where the hub records lines: the recorder writing the output, or, in a
    worker process, the one forwarding records to the supervisor.
    """

    clock = Attribute("The clock records are timed by.")
    bufferBytes = Attribute("Bytes of records that may wait before input pauses (--buffer).")
    pendingBytes = Attribute("Bytes of records waiting for the output now.")
    recordsWritten = Attribute("Records written so far.")
    bytesWritten = Attribute("Bytes written so far.")
    writeErrors = Attribute("Failed writes (and syncs) so far.")
    syncs = Attribute("Completed fsyncs so far.")
    syncSeconds = Attribute("Seconds spent in fsync so far.")

    def listen(listener: IRecordListener) -> None:
        """
        Tell C{listener} of pressure and of durable lines from now on.
        """

    def record(context: RecordContext, lines: Sequence[bytes]) -> None:
        """
        Record C{lines}, a sequence of bytes received just now on the
        connection of C{context} (a L{logger_service.records.RecordContext}).
        """

    def reopen() -> None:
        """
        Reopen the output (log rotation).
        """

    def close(timeout: float) -> Deferred[bool]:
        """
        Write what waits and close the output; the L{Deferred} fires once
        done (or after C{timeout} seconds), with whether all was written.
        """


class IHub(Interface):
    """
    What a connection knows of the hub: admission, registration and where
    its lines go.
    """

    clock = Attribute("The clock connections time their timeouts and rates by.")
    counters = Attribute("The L{logger_service.counters.Counters} every part adds to.")

    def admit(address: object) -> Optional[str]:
        """
        C{None} if a new connection from C{address} may stay, else the
        message to send the client before closing (the refusal is counted).
        """

    def refuse(reason: str, address: object, message: str) -> None:
        """
        Count and log a connection from C{address} refused for C{reason}.
        """

    def awaitHeader(connection: IConnection) -> None:
        """
        C{connection} waits for its PROXY header: it is not registered yet,
        but a shutdown drains it too.
        """

    def headerDone(connection: IConnection) -> None:
        """
        C{connection} no longer waits for its PROXY header.
        """

    def connected(connection: IConnection) -> RecordContext:
        """
        Register C{connection}; return the record context its records carry.
        """

    def received(context: RecordContext, lines: Sequence[bytes]) -> None:
        """
        Record C{lines}, just received on the connection of C{context}.
        """

    def disconnected(context: RecordContext) -> None:
        """
        Forget the connection of C{context}.
        """


@implementer(IRecordListener)
class NoListener:
    """
    The listener of a recorder nobody listens to yet: it hears and does
    nothing.
    """

    def pressure(self, paused: bool) -> None:
        """
        Nothing to pause.
        """

    def durable(self, counts: Dict[int, int]) -> None:
        """
        Nobody to tell.
        """


class ISessionConnection(IConnection):
    """
    What a session (L{ISession}) knows of its connection.
    """

    context = Attribute("The connection's L{logger_service.records.RecordContext}: its id and peer.")

    def frame(data: bytes) -> None:
        """
        Frame C{data}, input of the client's, into lines, and hand them to
        the session's L{ISession.lines}.
        """

    def record(lines: Sequence[bytes]) -> None:
        """
        Record C{lines} as received on this connection now (counted, and
        within C{--max-rate}).
        """

    def label(fields: Dict[str, str]) -> None:
        """
        The connection's records carry C{fields} from now on (a chat
        member's nickname and room).
        """


class ISession(Interface):
    """
    What a connection hands its input to when it does more with it than
    record it: a chat member's session.  The factory's C{sessions} makes
    one for each connection as it starts (once admitted).  A connection
    without one records its lines itself.
    """

    def dataReceived(data: bytes) -> None:
        """
        A chunk of the client's input: take out what is not lines (Telnet
        commands) and hand the rest to the connection's
        L{ISessionConnection.frame}.
        """

    def lines(lines: Sequence[bytes]) -> None:
        """
        Lines received: record every one (L{ISessionConnection.record}),
        when and in what batches the session decides.
        """

    def drain() -> None:
        """
        A shutdown is reading what the client sent: stop holding its input.
        """

    def finishing(reason: str) -> None:
        """
        The connection is finishing for C{reason}: what is held is framed
        now; lines that come from now on are only recorded.
        """

    def lost(reason: Failure) -> None:
        """
        The connection is gone, for C{reason}.
        """


class IChatMember(Interface):
    """
    A chat member's client, to which the chat sends text: the session of a
    TCP or WebSocket connection here, or a member connected elsewhere.
    """

    encoder = Attribute(
        "How the client encodes a turn's messages (a L{logger_service.broadcast.Encoder}), or None: "
        "then it gets plain bytes only."
    )

    def deliver(data: bytes) -> None:
        """
        Send C{data}, CRLF-ended lines, to the client.
        """

    def deliverEncoded(data: bytes, encoded: bytes) -> None:
        """
        Send C{data}, CRLF-ended lines, whose encoding by C{encoder} is
        C{encoded}.
        """

    def quit(reason: str) -> None:
        """
        The member left (C{/quit}): close once what it was sent is out.
        """

    def changed() -> None:
        """
        The member's nickname or room changed: its records carry the new
        ones from now on.
        """


class IMessageTransport(Interface):
    """
    A transport that sends each line as one message of its own (a
    WebSocket's text frames): a turn's messages are encoded once for all
    the clients on such transports.
    """

    def encodeMessages(block: bytes, messages: Sequence[bytes]) -> Optional[Tuple[bytes, List[int]]]:
        """
        A turn's messages encoded (a L{logger_service.broadcast.Encoder}).
        """

    def encoded(data: bytes, encoded: bytes) -> None:
        """
        C{data}, about to be written, is C{encoded}: the write need not
        encode it again.
        """
