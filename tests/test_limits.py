"""
Tests for L{logger_service.limits}: the token bucket behind flood control.
"""

from __future__ import annotations

from typing import List, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from logger_service.limits import ConnectionLimits, TokenBucket, parseNetwork

PROPERTY = settings(max_examples=200, deadline=None)

RATES = st.floats(min_value=0.01, max_value=100, allow_nan=False, allow_infinity=False)
BURSTS = st.integers(min_value=1, max_value=50)
STARTS = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
STEPS = st.lists(
    st.tuples(st.floats(min_value=0, max_value=10, allow_nan=False), st.integers(min_value=0, max_value=60)),
    max_size=40,
)


class ConstructionTests(SynchronousTestCase):
    """
    Creating a L{TokenBucket}.
    """

    def test_attributes(self) -> None:
        """
        C{rate} and C{burst} are kept.
        """
        bucket = TokenBucket(2.5, 7, now=100.0)
        self.assertEqual((bucket.rate, bucket.burst), (2.5, 7))

    def test_startsFull(self) -> None:
        """
        A new bucket holds C{burst} tokens.
        """
        self.assertEqual(TokenBucket(1, 5, now=0).tokens(0), 5)
        self.assertEqual(TokenBucket(1, 5, now=1000.0).tokens(1000.0), 5)

    def test_smallestBurst(self) -> None:
        """
        A burst of 1 is allowed.
        """
        self.assertEqual(TokenBucket(0.5, 1, now=0).take(3, 0), 1)

    def test_badRate(self) -> None:
        """
        A rate that is not positive is refused.
        """
        for rate in [0, 0.0, -1, -0.001]:
            self.assertRaises(ValueError, TokenBucket, rate, 5, 0)

    def test_badBurst(self) -> None:
        """
        A burst below 1 is refused.
        """
        for burst in [0, 0.5, 0.999, -3]:
            self.assertRaises(ValueError, TokenBucket, 1, burst, 0)

    def test_nanRate(self) -> None:
        """
        NaN is not a positive rate, and is refused.
        """
        self.assertRaises(ValueError, TokenBucket, float("nan"), 5, 0)

    def test_nanBurst(self) -> None:
        """
        NaN is not a burst of at least 1, and is refused.
        """
        self.assertRaises(ValueError, TokenBucket, 1, float("nan"), 0)


class TakeTests(SynchronousTestCase):
    """
    L{TokenBucket.take} grants whole tokens.
    """

    def test_burst(self) -> None:
        """
        A full bucket grants up to C{burst} at once.
        """
        bucket = TokenBucket(1, 5, now=0)
        self.assertEqual(bucket.take(3, 0), 3)
        self.assertEqual(bucket.take(3, 0), 2)
        self.assertEqual(bucket.take(3, 0), 0)

    def test_moreThanBurst(self) -> None:
        """
        Asking for more than the bucket holds grants what it holds.
        """
        self.assertEqual(TokenBucket(1, 4, now=0).take(100, 0), 4)

    def test_takeNothing(self) -> None:
        """
        Taking 0 grants 0 and leaves the tokens.
        """
        bucket = TokenBucket(1, 4, now=0)
        self.assertEqual(bucket.take(0, 0), 0)
        self.assertEqual(bucket.tokens(0), 4)

    def test_takeRemoves(self) -> None:
        """
        Tokens taken are gone.
        """
        bucket = TokenBucket(1, 4, now=0)
        bucket.take(3, 0)
        self.assertEqual(bucket.tokens(0), 1)

    def test_wholeTokensOnly(self) -> None:
        """
        A fraction of a token grants nothing; the fraction is kept.
        """
        bucket = TokenBucket(1, 3, now=0)
        bucket.take(3, 0)
        self.assertEqual(bucket.take(1, 0.5), 0)
        self.assertEqual(bucket.tokens(0.5), 0.5)
        self.assertEqual(bucket.take(5, 2.5), 2)
        self.assertEqual(bucket.tokens(2.5), 0.5)


class RefillTests(SynchronousTestCase):
    """
    Tokens come back at C{rate} per second, up to C{burst}.
    """

    def test_rate(self) -> None:
        """
        After C{t} seconds, C{rate * t} tokens are back.
        """
        bucket = TokenBucket(2, 10, now=0)
        bucket.take(10, 0)
        self.assertEqual(bucket.tokens(1.5), 3)
        self.assertEqual(bucket.take(5, 1.5), 3)

    def test_fractionalRate(self) -> None:
        """
        With half a token per second, one comes back every two seconds.
        """
        bucket = TokenBucket(0.5, 3, now=10)
        bucket.take(3, 10)
        self.assertEqual(bucket.take(1, 11), 0)
        self.assertEqual(bucket.take(1, 12), 1)
        self.assertEqual(bucket.take(1, 13), 0)
        self.assertEqual(bucket.take(1, 14), 1)

    def test_upToBurst(self) -> None:
        """
        A long rest fills the bucket to C{burst} and no more.
        """
        bucket = TokenBucket(5, 4, now=0)
        bucket.take(4, 0)
        self.assertEqual(bucket.tokens(1000), 4)
        self.assertEqual(bucket.take(10, 1000), 4)

    def test_fullBucketSavesNothing(self) -> None:
        """
        Time spent full is not saved up for later.
        """
        bucket = TokenBucket(1, 2, now=0)
        self.assertEqual(bucket.take(10, 100), 2)
        self.assertEqual(bucket.take(10, 100.5), 0)

    def test_clockBackwards(self) -> None:
        """
        A time before the last one adds no tokens.
        """
        bucket = TokenBucket(1, 5, now=100)
        bucket.take(5, 100)
        self.assertEqual(bucket.take(5, 50), 0)
        self.assertEqual(bucket.take(5, 101), 1)

    def test_manySmallRefills(self) -> None:
        """
        Looking at the bucket often does not lose tokens: at 0.1 tokens per
        second, a token is back after 10 seconds however many times the
        tokens were counted in between.
        """
        bucket = TokenBucket(0.1, 1, now=0)
        bucket.take(1, 0)
        for second in range(1, 10):
            bucket.tokens(second)
        self.assertEqual(bucket.take(1, 10), 1)


class DelayTests(SynchronousTestCase):
    """
    L{TokenBucket.delay} is the wait until a whole token is available.
    """

    def test_available(self) -> None:
        """
        With a whole token available, there is no wait.
        """
        bucket = TokenBucket(1, 3, now=0)
        self.assertEqual(bucket.delay(0), 0)
        bucket.take(2, 0)
        self.assertEqual(bucket.delay(0), 0)

    def test_empty(self) -> None:
        """
        An empty bucket waits C{1 / rate}.
        """
        bucket = TokenBucket(4, 2, now=0)
        bucket.take(2, 0)
        self.assertEqual(bucket.delay(0), 0.25)

    def test_partial(self) -> None:
        """
        With part of a token, the wait is for the rest of it.
        """
        bucket = TokenBucket(2, 2, now=0)
        bucket.take(2, 0)
        self.assertEqual(bucket.delay(0.125), 0.375)

    def test_delayDoesNotTake(self) -> None:
        """
        Asking for the delay takes nothing.
        """
        bucket = TokenBucket(1, 2, now=0)
        bucket.delay(0)
        self.assertEqual(bucket.take(5, 0), 2)

    def test_waitingTheDelayGivesAToken(self) -> None:
        """
        After waiting the delay there is a token: with 3 tokens per second at
        time 1.0, the delay is a third of a second, and a token is then
        available.
        """
        bucket = TokenBucket(3, 1, now=1.0)
        bucket.take(1, 1.0)
        delay = bucket.delay(1.0)
        self.assertAlmostEqual(delay, 1 / 3)
        self.assertEqual(bucket.take(1, 1.0 + delay), 1)


class BucketPropertyTests(SynchronousTestCase):
    """
    Properties over any sequence of waits and requests.
    """

    @PROPERTY
    @given(RATES, BURSTS, STARTS, STEPS)
    def test_neverMoreThanAllowed(self, rate: float, burst: int, start: float, steps: List[Tuple[float, int]]) -> None:
        """
        The total granted never exceeds C{burst + rate * elapsed}, and each
        request gets between 0 and what it wanted.
        """
        bucket = TokenBucket(rate, burst, now=start)
        now = start
        total = 0
        for advance, wanted in steps:
            now += advance
            granted = bucket.take(wanted, now)
            self.assertTrue(0 <= granted <= wanted, (granted, wanted))
            total += granted
            self.assertLessEqual(total, burst + rate * (now - start) + 1e-6)

    @PROPERTY
    @given(RATES, BURSTS, STARTS, STEPS)
    def test_grantsWhatIsAvailable(self, rate: float, burst: int, start: float, steps: List[Tuple[float, int]]) -> None:
        """
        Each request gets the whole tokens available, up to what it wanted,
        and the tokens stay between 0 and C{burst}; a fraction within a
        billionth of a whole token counts as whole.
        """
        bucket = TokenBucket(rate, burst, now=start)
        now = start
        for advance, wanted in steps:
            now += advance
            available = bucket.tokens(now)
            self.assertTrue(0 <= available <= burst, available)
            # Within a billionth of a whole token counts as whole (float time).
            self.assertEqual(bucket.take(wanted, now), min(wanted, int(available + 1e-9)))

    @PROPERTY
    @given(RATES, BURSTS, STARTS, STEPS)
    def test_restRefills(self, rate: float, burst: int, start: float, steps: List[Tuple[float, int]]) -> None:
        """
        After any history, resting C{burst / rate} seconds fills the bucket.
        """
        bucket = TokenBucket(rate, burst, now=start)
        now = start
        for advance, wanted in steps:
            now += advance
            bucket.take(wanted, now)
        now += burst / rate + 1
        self.assertEqual(bucket.take(burst + 1, now), burst)

    @PROPERTY
    @given(RATES, BURSTS, STARTS, STEPS)
    def test_delayZeroIffToken(self, rate: float, burst: int, start: float, steps: List[Tuple[float, int]]) -> None:
        """
        The delay is 0 exactly when a token can be taken, and otherwise at
        most C{1 / rate}.
        """
        bucket = TokenBucket(rate, burst, now=start)
        now = start
        for advance, wanted in steps:
            now += advance
            bucket.take(wanted, now)
            delay = bucket.delay(now)
            if bucket.tokens(now) >= 1:
                self.assertEqual(delay, 0)
            else:
                self.assertTrue(0 < delay <= 1 / rate, (delay, rate))


class ChargeTests(SynchronousTestCase):
    """
    L{TokenBucket.charge}: spending lines that already arrived.
    """

    def test_debt(self) -> None:
        """
        Within the tokens there is no wait; beyond them the wait is the
        debt at the rate, and the debt is paid by time.
        """
        bucket = TokenBucket(10, 5, now=0)
        self.assertEqual(bucket.charge(5, 0), 0)
        self.assertAlmostEqual(bucket.charge(10, 0), 1.0)
        self.assertEqual(bucket.take(1, 0.5), 0)
        self.assertEqual(bucket.charge(0, 1.0), 0)
        self.assertEqual(bucket.take(1, 1.1), 1)


class ConnectionLimitsTests(SynchronousTestCase):
    """
    L{ConnectionLimits}: who may connect.
    """

    def test_noLimits(self) -> None:
        """
        By default everyone may connect, however many.
        """
        self.assertIsNone(ConnectionLimits().refusal("203.0.113.1", 10**6, 10**6))

    def test_order(self) -> None:
        """
        The allow list is checked first, then the total, then per address;
        UNIX clients (no host) pass the allow list and per-address limit.
        """
        limits = ConnectionLimits(2, 1, [parseNetwork("10.0.0.0/8"), parseNetwork("::1")])
        self.assertEqual(limits.refusal("192.0.2.1", 5, 5)[0], "not-allowed")  # type: ignore[index]
        self.assertEqual(limits.refusal("10.1.2.3", 2, 0)[0], "max-connections")  # type: ignore[index]
        self.assertEqual(limits.refusal("10.1.2.3", 1, 1)[0], "max-per-ip")  # type: ignore[index]
        self.assertIsNone(limits.refusal("10.1.2.3", 1, 0))
        self.assertIsNone(limits.refusal("::1", 0, 0))
        self.assertIsNone(limits.refusal(None, 1, 1))
        self.assertIsNone(limits.refusal("::ffff:10.0.0.1", 0, 0), "IPv4-mapped addresses match IPv4 networks")
        self.assertEqual(limits.refusal("not an address", 0, 0)[0], "not-allowed")  # type: ignore[index]

    def test_parseNetwork(self) -> None:
        """
        Networks and single addresses parse; garbage does not.
        """
        self.assertEqual(str(parseNetwork("10.1.2.3/8")), "10.0.0.0/8")
        self.assertEqual(str(parseNetwork("::1")), "::1/128")
        with self.assertRaises(ValueError):
            parseNetwork("ten.0.0.0/8")
