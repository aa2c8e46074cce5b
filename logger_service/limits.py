"""
Rate limits: a token bucket, pure arithmetic over times passed in.
"""

from __future__ import annotations

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
        granted = min(wanted, int(self._tokens + _EPSILON))
        self._tokens = max(0.0, self._tokens - granted)
        return granted

    def delay(self, now: float) -> float:
        """
        Seconds from C{now} until at least one whole token is available.
        """
        self._refill(now)
        if self._tokens + _EPSILON >= 1:
            return 0.0
        return (1 - self._tokens) / self.rate
