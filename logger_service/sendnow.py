"""
Writing to a TCP client now, rather than on the reactor's next turn.

C{transport.write} never sends: it buffers the data, registers the socket
for writability (an C{epoll_ctl}), and the reactor sends on a later turn,
then unregisters it (another C{epoll_ctl}).  For a chat room, where each
message goes out to every member as soon as it is said, that is three
system calls and a reactor pass per member per message where one C{send}
would do: under steady traffic it was about half of the server's CPU.

L{sendNow} returns a writer that sends directly on the socket whenever the
transport has nothing buffered (so order is kept), and hands whatever the
kernel did not take, and everything after it until the transport's buffer
is empty again, to C{transport.write} as usual.  Errors are left for the
transport to find on its own.  It relies on the buffer attributes of
Twisted's C{FileDescriptor} (L{twistedprivate.bufferedBytes}); for any
other transport (TLS, PROXY-protocol wrappers, test doubles) or if those
attributes are missing, it is plain C{transport.write}.
"""

from __future__ import annotations

import socket
from typing import Callable

from twisted.internet import tcp
from twisted.internet.interfaces import ITransport

from .twistedprivate import bufferedBytes, hasWriteBuffers


def canSendNow(transport: ITransport) -> bool:
    """
    Whether L{sendNow} can send directly on C{transport}'s socket.
    """
    return (
        isinstance(transport, tcp.Connection)
        and hasWriteBuffers(transport)
        and isinstance(getattr(transport, "socket", None), socket.socket)
    )


def sendNow(transport: ITransport) -> Callable[[bytes], None]:
    """
    A function that writes its argument to C{transport}: at once on the
    socket while the transport's own buffer is empty, else through
    C{transport.write}.
    """
    if not canSendNow(transport):
        return transport.write
    connection: tcp.Connection = transport  # type: ignore[assignment]
    send = connection.socket.send
    write = connection.write

    def writeNow(data: bytes) -> None:
        if bufferedBytes(connection) or connection.disconnecting or not connection.connected:
            write(data)
            return
        try:
            sent = send(data)
        except OSError:
            # EAGAIN: the kernel is full; anything else: the transport will
            # meet the same error when it sends, and close as it should.
            sent = 0
        if sent < len(data):
            write(data[sent:])

    return writeNow
