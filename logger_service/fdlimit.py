"""
File descriptors: raise the soft C{RLIMIT_NOFILE}, and fit the connection limit to it.

Every connection costs a descriptor, and one accepted past the limit costs
one too until its C{error:} line is written and it is closed.  A process
that runs out cannot even accept a client to refuse it: Twisted then
closes what it accepts at once (its C{EMFILE} recovery), and clients see
C{Connection reset by peer}.  So at start linelogger raises its soft limit
to the hard limit, as servers commonly do, and if that is still too few
for C{--max-connections}, admits only as many connections as the
descriptors allow, saying so in one log line.  Descriptors are kept for the
clients being refused as well: the listen backlog is lowered, and each
listener accepts at most C{backlog + 1} connections per turn of the reactor
(L{AcceptPacer}), so that those refused in one turn, whose descriptors are
freed in the next, stay within what is kept for them.

L{plan} is pure: the limits and the descriptors open are passed in.
"""

from __future__ import annotations

import os
import resource
from typing import Any, Dict, NamedTuple, Optional, Tuple

from .drain import socketLayer

RESERVE = 16
"""
Descriptors kept for everything but clients and listeners: twistd's log and
its rotation, the output's rotation or reopen, Twisted's reserved C{EMFILE}
descriptor, metrics scrapes, systemd notifications.
"""

UNLIMITED_CAP = 1 << 20
"""The soft limit asked for when the hard limit is unlimited."""


class Plan(NamedTuple):
    """
    What the descriptors allow.

    @ivar maxConnections: the most connections to admit (0: no limit).
    @ivar backlog: the listen backlog to use.
    @ivar message: a warning to log when the limit is too low for
        C{--max-connections}, else C{None}.
    @ivar acceptsPerTurn: the most connections a listener may accept per
        turn of the reactor (L{AcceptPacer}); 0 to leave Twisted's own
        pacing alone.
    """

    maxConnections: int
    backlog: int
    message: Optional[str]
    acceptsPerTurn: int = 0


def plan(maxConnections: int, backlog: int, listeners: int, soft: int, hard: int, openNow: int) -> Plan:
    """
    Fit C{--max-connections} and C{--backlog} to a soft limit of C{soft}
    descriptors, C{openNow} of which are open already.

    Connections admitted plus connections being refused must stay below
    the limit.  A listener accepts at most C{backlog + 1} connections per
    turn of the reactor (see L{AcceptPacer}), and the connections refused
    in one turn are closed (their C{error:} line written) in the next, so
    C{2 * (backlog + 1)} descriptors are kept for refusals.

    @param maxConnections: C{--max-connections} (0: no limit but the
        descriptors', which is then applied without a message).
    @param listeners: listening sockets still to be opened.
    @param hard: the hard limit, only to be named in the message.
    @raise ValueError: if the limit leaves no room for a single connection.
    """
    free = soft - openNow - listeners - RESERVE
    if maxConnections and maxConnections + 2 * (backlog + 1) <= free:
        return Plan(maxConnections, backlog, None)
    # Too few: a backlog of about an eighth of what is free, at most as
    # asked for, leaves most of the descriptors for admitted clients.
    smallBacklog = max(1, min(backlog, free // 8))
    admit = free - 2 * (smallBacklog + 1)
    if maxConnections:
        admit = min(admit, maxConnections)
    if admit < 1:
        raise ValueError(
            f"the open-file limit (ulimit -n) of {soft} descriptors leaves no room for a connection: "
            f"raise it (hard limit: {describe(hard)})"
        )
    if not maxConnections:
        # No limit asked for: the descriptors' is the only one.
        return Plan(admit, smallBacklog, None, smallBacklog + 1)
    message = (
        f"The open-file limit (ulimit -n) is {soft} descriptors (hard limit {describe(hard)}), too few for "
        f"--max-connections {maxConnections}: admitting at most {admit} connections at once (the rest are "
        f"refused with an error: line), listen backlog {smallBacklog}; raise the limit (LimitNOFILE= in a "
        f"systemd unit) to admit more"
    )
    return Plan(admit, smallBacklog, message, smallBacklog + 1)


def describe(limit: int) -> str:
    """
    A limit as a number, or C{unlimited}.
    """
    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)


def raiseSoftLimit() -> Tuple[int, int]:
    """
    Raise this process's soft C{RLIMIT_NOFILE} to its hard limit (or to
    L{UNLIMITED_CAP} if that is unlimited), as far as the system lets it.

    @return: the soft and hard limits now.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_CAP if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            # E.g. the hard limit is above the kernel's nr_open: keep the
            # soft limit as it was.
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, hard


def openDescriptors() -> int:
    """
    How many descriptors this process has open.
    """
    for directory in ("/proc/self/fd", "/dev/fd"):
        try:
            # Minus the one listing the directory took.
            return len(os.listdir(directory)) - 1
        except OSError:
            continue
    return 3


def fit(maxConnections: int, backlog: int, listeners: int) -> Plan:
    """
    Raise the soft limit (L{raiseSoftLimit}), then L{plan} for it with the
    descriptors open now.

    @raise ValueError: if the limit leaves no room for a single connection.
    """
    soft, hard = raiseSoftLimit()
    if soft == resource.RLIM_INFINITY:
        soft = UNLIMITED_CAP
    return plan(maxConnections, backlog, listeners, soft, hard, openDescriptors())


class AcceptPacer:
    """
    Keep each listener to at most C{most} accepts per turn of the reactor.

    Twisted's TCP and UNIX listeners accept in a loop of up to
    C{numberAccepts} connections each time they are readable, and grow
    that number by 20 after each loop that reached it; a loop does not
    stop for anything else but an empty queue.  Clients connecting as fast
    as they are accepted could so take any number of descriptors in one
    turn.  L{watch} shadows the C{doRead} of a connection's listener (on
    that instance, once) with one that first brings C{numberAccepts} back
    to C{most}.  Listeners it cannot recognise are left alone.

    @ivar most: the most accepts per turn.
    """

    def __init__(self, most: int) -> None:
        self.most = most
        self._paced: Dict[int, Any] = {}

    def watch(self, transport: Any) -> None:
        """
        Pace the listener that accepted the connection of C{transport}
        (under any TLS or PROXY-protocol layer), if not yet done.
        """
        port = getattr(socketLayer(transport), "server", None)
        if port is None or id(port) in self._paced or not isinstance(getattr(port, "numberAccepts", None), int):
            return
        self._paced[id(port)] = port
        port.numberAccepts = min(port.numberAccepts, self.most)
        accept = port.doRead
        most = self.most

        def doRead() -> Any:
            if port.numberAccepts > most:
                port.numberAccepts = most
            return accept()

        port.doRead = doRead
