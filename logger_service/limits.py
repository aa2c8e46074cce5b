"""
Limits: a token bucket for rates, and the rules for who may connect.

Pure: times and counts are passed in; nothing here does I/O.
"""

from __future__ import annotations

import ipaddress
from typing import Optional, Sequence, Tuple, Union

_EPSILON = 1e-9
"""Token fractions this close to a whole token count as one: float time
arithmetic would otherwise leave 0.9999999999999998 after exactly the delay
that L{TokenBucket.delay} asked for."""


class TokenBucket:
    """
    A token bucket: C{burst} tokens at most, refilled at C{rate} per second.

    Time is passed in by the caller (C{reactor.seconds()} in the service,
    a L{twisted.internet.task.Clock} in tests), so this class does no I/O.

    @ivar rate: tokens added per second.
    @ivar burst: the most tokens the bucket holds.
    """

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if not (0 < rate < float("inf")) or not (1 <= burst < float("inf")):
            raise ValueError("rate must be positive and burst at least 1, both finite")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last = now

    def _refill(self, now: float) -> None:
        if now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now

    def tokens(self, now: float) -> float:
        """
        The tokens available at C{now}.
        """
        self._refill(now)
        return self._tokens

    def take(self, wanted: int, now: float) -> int:
        """
        Take up to C{wanted} whole tokens.

        @return: how many were taken (0 to C{wanted}).
        """
        self._refill(now)
        granted = max(0, min(wanted, int(self._tokens + _EPSILON)))
        self._tokens = max(0.0, self._tokens - granted)
        return granted

    def charge(self, count: int, now: float) -> float:
        """
        Spend C{count} tokens, going into debt if there are not enough: for
        lines that have already arrived.

        @return: seconds until the debt is paid, so that the caller can stop
            the flow that long (0 if there was no debt).
        """
        self._refill(now)
        self._tokens -= count
        if self._tokens >= -_EPSILON:
            return 0.0
        return -self._tokens / self.rate

    def delay(self, now: float) -> float:
        """
        Seconds from C{now} until at least one whole token is available.
        """
        self._refill(now)
        if self._tokens + _EPSILON >= 1:
            return 0.0
        return (1 - self._tokens) / self.rate


class ConnectionLimits:
    """
    Who may connect: an allow list, a total, and a number per address.

    Pure: the caller says how many connections are open in all and from the
    address in question.

    @ivar maxConnections: the most open connections in all (0: no limit).
    @ivar maxPerAddress: the most open connections from one address (0: no
        limit).
    @ivar allow: networks clients may come from (empty: everyone).
    """

    def __init__(
        self,
        maxConnections: int = 0,
        maxPerAddress: int = 0,
        allow: Sequence[Union[ipaddress.IPv4Network, ipaddress.IPv6Network]] = (),
    ) -> None:
        self.maxConnections = maxConnections
        self.maxPerAddress = maxPerAddress
        self.allow = list(allow)

    def allowed(self, host: Optional[str]) -> bool:
        """
        Whether C{host} (an IP address, or C{None} for a UNIX socket) is in
        the allow list.  UNIX-socket clients are always allowed: file
        permissions guard them.
        """
        if not self.allow or host is None:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.allow)

    def refusal(self, host: Optional[str], openInAll: int, openFromHost: int) -> Optional[Tuple[str, str]]:
        """
        Why a new connection from C{host} must be refused, if it must.

        @param openInAll: connections open now, not counting the new one.
        @param openFromHost: of those, how many come from C{host}.
        @return: C{None}, or C{(reason, message)}: a short reason for
            counters and a sentence for the client.
        """
        if not self.allowed(host):
            return "not-allowed", "your address is not allowed to connect"
        if self.maxConnections and openInAll >= self.maxConnections:
            return "max-connections", f"too many connections (limit {self.maxConnections}); try again later"
        if host is not None and self.maxPerAddress and openFromHost >= self.maxPerAddress:
            return "max-per-ip", f"too many connections from {host} (limit {self.maxPerAddress})"
        return None


def parseNetwork(text: str) -> Union[ipaddress.IPv4Network, ipaddress.IPv6Network]:
    """
    Parse a CIDR network (C{10.0.0.0/8}, C{::1/128}) or a single address.

    @raise ValueError: if it is neither.
    """
    return ipaddress.ip_network(text.strip(), strict=False)
