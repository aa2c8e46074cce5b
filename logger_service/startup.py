"""
Start-up checks: every endpoint description tried before anything starts, so that a mistake is one line.

Twisted parses an endpoint description only when the service is built, and
reports a mistake in it (C{tcp:abc}, an unknown type, a missing
certificate, TLS without pyOpenSSL, a socket systemd did not pass) with a
traceback; a bad port number or a missing directory comes out of the
listening itself, again with a traceback; and a daemon (twistd without
C{-n}) can only report a port it cannot bind through twistd's start-up
pipe, cut to 100 bytes.  L{checkEndpoint} parses each description the same
way, without listening, while the options are checked, checks the port
number and the UNIX socket's directory, and binds each TCP address once
(before twistd forks, and closes it again): each of those mistakes then
stops twistd with one line saying what is wrong.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Any, Optional

from twisted.internet.endpoints import (
    SSL4ServerEndpoint,
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    UNIXServerEndpoint,
    serverFromString,
)
from twisted.internet.error import CannotListenError
from twisted.python import usage

from .systemd import socketActivationProblem
from .twistedprivate import tcpEndpointAddress, unixEndpointPath, wrappedEndpoint

TLS_EXTRA = "pip install 'linelogger[tls]'"
"""How to install what C{ssl:} endpoints need."""

ENDPOINT_TYPES = "tcp, tcp6, unix, ssl, systemd, haproxy"
"""The endpoint types linelogger documents."""


class StartupError(usage.UsageError):
    """
    An option names something that cannot be used (a file, a module, a
    socket, an address): one line says what, with no pointer to C{--help}.
    """


def endpointType(description: str) -> str:
    """
    The type of the endpoint that C{description} listens on: C{tcp} for
    C{haproxy:tcp:1234}.
    """
    kind, _, rest = description.partition(":")
    if kind == "haproxy":
        return endpointType(rest)
    return kind


def _parse(option: str, description: str, reactor: Any) -> Any:
    """
    Parse C{description} as Twisted does, turning each error into one line.
    """
    where = f"{option} {description}"
    kind = endpointType(description)
    try:
        return serverFromString(reactor, description)
    except ImportError as e:
        if kind == "ssl":
            raise StartupError(f"{where}: ssl endpoints need pyOpenSSL ({e}): {TLS_EXTRA}") from None
        raise StartupError(f"{where}: {e}") from None
    except OSError as e:
        raise StartupError(f"{where}: cannot read {e.filename}: {e.strerror}") from None
    except (IndexError, KeyError):
        if kind == "systemd":
            raise StartupError(f"{where}: {socketActivationProblem(description)}") from None
        raise
    except ValueError as e:
        text = str(e)
        if text.startswith("Unknown endpoint type"):
            raise usage.UsageError(
                f"{where}: unknown endpoint type {kind!r} (linelogger listens on {ENDPOINT_TYPES})"
            ) from None
        if "invalid literal for int()" in text:
            raise usage.UsageError(f"{where}: not a number: {text.rpartition(': ')[2]}") from None
        if kind == "ssl":
            raise StartupError(f"{where}: {text}") from None
        raise usage.UsageError(f"{where}: {text}") from None
    except TypeError as e:
        unknown = re.search(r"unexpected keyword argument '([^']*)'", str(e))
        if unknown is not None:
            raise usage.UsageError(f"{where}: {kind} endpoints take no {unknown.group(1)}=") from None
        raise usage.UsageError(f"{where}: {e}") from None
    except Exception as e:
        # pyOpenSSL's errors, for a key or certificate that is not PEM.
        raise StartupError(f"{where}: {type(e).__name__}: {e}") from None


def _tryBind(family: int, interface: str, port: int) -> None:
    """
    Bind a TCP socket to C{(interface, port)} and listen on it, as Twisted
    would, and close it.

    @raise StartupError: if the bind fails, with Twisted's own words for it
        (C{Couldn't listen on ...}).
    """
    try:
        addresses = socket.getaddrinfo(interface or None, port, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except (OSError, UnicodeError):
        return  # Left to the listening itself to report.
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addresses[0][4])
            # Two sockets with SO_REUSEADDR may both bind one address; only
            # the second listen() fails.
            s.listen(1)
        except OSError as e:
            raise StartupError(str(CannotListenError(interface, port, e))) from None


def checkEndpoint(
    option: str,
    description: str,
    reactor: Any,
    bind: bool = False,
    rundir: Optional[str] = None,
) -> None:
    """
    Check an endpoint description before anything listens.

    @param option: the option that gave it, e.g. C{--port}, for messages.
    @param reactor: the reactor the endpoint is for.
    @param bind: whether to bind each TCP address once (and close it
        again), so that an address in use or not allowed is reported here,
        before twistd daemonizes and while it can still print a line.
    @param rundir: where twistd will run (C{--rundir}), for a relative UNIX
        socket path; C{None}: do not check the socket's directory.
    @raise usage.UsageError: the description is wrong.
    @raise StartupError: it names something that cannot be used.
    """
    where = f"{option} {description}"
    endpoint = _parse(option, description, reactor)
    inner = wrappedEndpoint(endpoint)
    if isinstance(inner, (TCP4ServerEndpoint, TCP6ServerEndpoint, SSL4ServerEndpoint)):
        port, interface = tcpEndpointAddress(inner)
        if not isinstance(port, int):
            return
        if not 0 <= port <= 65535:
            raise usage.UsageError(f"{where}: {port} is not a TCP port (0 to 65535)")
        if bind and port:
            family = socket.AF_INET6 if isinstance(inner, TCP6ServerEndpoint) else socket.AF_INET
            _tryBind(family, interface, port)
    elif isinstance(inner, UNIXServerEndpoint) and rundir is not None:
        path = unixEndpointPath(inner)
        if not isinstance(path, str) or path.startswith("\0"):
            return
        directory = os.path.dirname(os.path.join(rundir, path)) or "."
        if not os.path.isdir(directory):
            raise StartupError(f"{where}: no such directory: {directory}")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise StartupError(f"{where}: cannot create a socket in {directory}: permission denied")
