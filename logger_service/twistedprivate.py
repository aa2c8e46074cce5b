"""
Every use of a name Twisted keeps private, each behind a small named function, so a new Twisted breaks one place.

A new Twisted release may rename or remove these names without notice.
C{tests/test_twistedprivate.py} checks each one against the installed
Twisted and fails loudly if it changed.  At run time each function keeps
the fallback its caller always had, said in its docstring, so that a
changed Twisted loses a refinement rather than the service.
"""

from __future__ import annotations

from typing import Any, BinaryIO, Optional, Tuple

from twisted.internet import tcp
from twisted.python.logfile import LogFile

try:
    # Twisted exports only proxyEndpoint; the wrapper class is how a
    # protocol can tell that the client's address comes later, in a header.
    from twisted.protocols.haproxy._wrapper import HAProxyProtocolWrapper as _ProxyWrapper

    PROXY_WRAPPERS: tuple = (_ProxyWrapper,)
except ImportError:  # pragma: no cover
    PROXY_WRAPPERS = ()
"""
The class of the transport Twisted gives a protocol behind a C{haproxy:}
endpoint (C{twisted.protocols.haproxy._wrapper.HAProxyProtocolWrapper}),
or nothing if it cannot be imported.
"""


def isProxyWrapper(transport: object) -> bool:
    """
    Whether C{transport} is Twisted's PROXY-protocol wrapper, which learns
    the client's address from a header that has yet to come.

    @return: false where the wrapper class cannot be imported.
    """
    return isinstance(transport, PROXY_WRAPPERS)


def wrappedEndpoint(endpoint: Any) -> Any:
    """
    The endpoint inside a wrapping endpoint such as C{haproxy:}'s (Twisted's
    C{_WrapperServerEndpoint._wrappedEndpoint}).

    @return: C{endpoint} itself where it wraps nothing, or where the
        attribute is missing.
    """
    return getattr(endpoint, "_wrappedEndpoint", endpoint)


def tcpEndpointAddress(endpoint: Any) -> Tuple[Any, Any]:
    """
    The port and interface a C{TCP4ServerEndpoint}, C{TCP6ServerEndpoint}
    or C{SSL4ServerEndpoint} will listen on (its C{_port} and
    C{_interface}).

    @return: C{(port, interface)}; C{None} for a missing port, C{""} for a
        missing interface.
    """
    return getattr(endpoint, "_port", None), getattr(endpoint, "_interface", "")


def unixEndpointPath(endpoint: Any) -> Any:
    """
    The socket path a C{UNIXServerEndpoint} will listen on (its
    C{_address}).

    @return: the path, or C{None} where the attribute is missing.
    """
    return getattr(endpoint, "_address", None)


def hasWriteBuffers(transport: object) -> bool:
    """
    Whether C{transport} keeps Twisted's C{FileDescriptor} write buffers as
    L{bufferedBytes} reads them: C{dataBuffer} (L{bytes}) and
    C{_tempDataLen} (L{int}).

    @return: false for any other transport, or if those attributes are
        missing.
    """
    return isinstance(getattr(transport, "dataBuffer", None), bytes) and isinstance(
        getattr(transport, "_tempDataLen", None), int
    )


def bufferedBytes(connection: tcp.Connection) -> int:
    """
    How many bytes C{connection} holds that it has not yet handed to the
    kernel: its C{dataBuffer} and its C{_tempDataLen}.  Call it only where
    L{hasWriteBuffers} is true.
    """
    return len(connection.dataBuffer) + connection._tempDataLen


def webSocketTCP(wire: Any) -> Any:
    """
    The transport under the WebSocket transport that
    C{twisted.web.websocket} hands to C{negotiationStarted} (its private
    class's C{transport}: the HTTP channel's TCP or TLS transport).
    """
    return wire.transport


class OpenableLogFile(LogFile):
    """
    A L{LogFile} whose file and whose opening of it have public names.

    L{LogFile} opens its file in the private C{_openFile} (from
    C{__init__}, C{rotate} and C{reopen}) and keeps it in the private
    C{_file} (which C{write}, C{flush} and C{close} use).  A subclass
    overrides L{openFile} to open the file its own way, sets L{file}, and
    calls L{openFile} where it opens the file again.
    """

    def _openFile(self) -> None:
        self.openFile()

    def openFile(self) -> None:
        """
        Open the file at C{self.path}: by default as L{LogFile} does.
        """
        LogFile._openFile(self)

    @property
    def file(self) -> BinaryIO:
        """
        The open file L{LogFile} writes to.
        """
        opened: BinaryIO = self._file
        return opened

    @file.setter
    def file(self, opened: BinaryIO) -> None:
        self._file = opened


def acceptedCount(port: object) -> Optional[int]:
    """
    How many connections a TCP or UNIX listening port (C{tcp.Port},
    C{unix.Port}) has accepted and handed to a protocol so far: its
    C{sessionno}, which its C{doRead} counts up by one per connection.

    @return: the count, or C{None} for any other port, or if the attribute
        is missing.
    """
    count = getattr(port, "sessionno", None)
    return count if isinstance(count, int) else None


def raiseListenErrorsAtOnce(service: Any) -> None:
    """
    Have a C{StreamServerEndpointService} raise a listening error from its
    C{privilegedStartService} (its C{_raiseSynchronously}, which
    C{strports.service} sets too), instead of logging it later.
    """
    service._raiseSynchronously = True
