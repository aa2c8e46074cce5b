"""
The metrics of C{--workers N} totalled: each worker reports its counters to
the supervisor, which serves their totals at C{/metrics}.

With C{--metrics}, each worker reads the values of L{METRICS} from its own
counters, as one process would for a scrape, and sends them to the
supervisor (L{CountersReporter}) every second and once more, answered, as
it stops.  The supervisor keeps each worker's last report
(L{WorkerTotals}) and totals them for a scrape as each metric's C{across}
says: the counts and most gauges summed, L{METRICS}' C{max} and C{min} ones
the largest or smallest of the workers' values, and the output's metrics
(C{across="output"}) read from the supervisor's own counters, since it
alone writes the output.  The counts of a worker that ended stay in the
totals, so that they never go down when a worker is replaced.
"""

from __future__ import annotations

from functools import reduce
from typing import Any, Dict, Hashable, Iterable, Iterator, Optional

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.metrics_core import Metric
from twisted.application import strports
from twisted.application.service import IService
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall

from .counters import Counters
from .metrics import METRICS, Value, family, metricsSite
from .workerwire import MessageProtocol, encodeCounters

Values = Dict[str, Value]
"""Metrics' values by metric name (those without a value left out)."""

REPORT_INTERVAL = 1.0
"""Seconds between a worker's reports of its counters."""

LAST_REPORT_TIMEOUT = 5.0
"""Seconds a stopping worker waits for the supervisor to take its last report."""


def readValues(counters: Counters) -> Values:
    """
    The value of every metric of L{METRICS} that C{counters} have.
    """
    values: Values = {}
    for spec in METRICS:
        value = spec.read(counters)
        if value is not None:
            values[spec.name] = value
    return values


def add(a: Value, b: Value) -> Value:
    """
    The sum of two values of one metric: numbers, counts by label (label by
    label), or summaries (count and sum each).
    """
    if isinstance(a, dict) and isinstance(b, dict):
        summed = dict(a)
        for label, count in b.items():
            summed[label] = summed.get(label, 0) + count
        return summed
    if isinstance(a, tuple) and isinstance(b, tuple):
        return (a[0] + b[0], a[1] + b[1])
    assert isinstance(a, (int, float)) and isinstance(b, (int, float)), (a, b)
    return a + b


def total(reports: Iterable[Values], own: Values, workersWrite: bool = False) -> Values:
    """
    The totals of the workers' C{reports}, each metric as its C{across}
    says; the output's metrics are taken from C{own}, the supervisor's,
    unless the workers write the output themselves (C{workersWrite}): then
    they are summed like the others.
    """
    reports = list(reports)
    totals: Values = {}
    for spec in METRICS:
        if spec.across == "output" and not workersWrite:
            value = own.get(spec.name)
        else:
            values = [report[spec.name] for report in reports if report.get(spec.name) is not None]
            if not values:
                continue
            if spec.across == "max":
                value = max(values)  # type: ignore[type-var]
            elif spec.across == "min":
                value = min(values)  # type: ignore[type-var]
            else:
                value = reduce(add, values)
        if value is not None:
            totals[spec.name] = value
    return totals


class CountersReporter:
    """
    A worker's reports of its counters to the supervisor: every
    C{interval} seconds from L{start}, and a last one at L{stop}.

    @ivar link: the worker's end of its socket to the supervisor, once
        connected.
    """

    def __init__(self, counters: Counters, clock: IReactorTime, interval: float = REPORT_INTERVAL) -> None:
        self.counters = counters
        self.clock = clock
        self.interval = interval
        self.link: Optional[MessageProtocol] = None
        self._loop = LoopingCall(self.report)
        self._loop.clock = clock
        self._last: Optional[Deferred[None]] = None
        self._timeout: Optional[IDelayedCall] = None

    def start(self) -> None:
        """
        Report now, then every C{interval} seconds.
        """
        self._loop.start(self.interval, now=True)

    def report(self, last: bool = False) -> None:
        """
        Send the counters' values to the supervisor.
        """
        link = self.link
        if link is not None and link.transport is not None:
            link.sendMessage(encodeCounters(readValues(self.counters), last))

    def stop(self) -> Deferred[None]:
        """
        Stop reporting every C{interval}, and send a last report.

        @return: a L{Deferred} that fires once the supervisor has taken it
            (L{counted}), or after L{LAST_REPORT_TIMEOUT} seconds.
        """
        if self._loop.running:
            self._loop.stop()
        if self._last is None:
            self._last = Deferred()
            self.report(last=True)
            self._timeout = self.clock.callLater(LAST_REPORT_TIMEOUT, self.counted)
        return self._last

    def counted(self) -> None:
        """
        The supervisor has taken the last report.
        """
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        if self._last is not None and not self._last.called:
            self._last.callback(None)


class WorkerTotals:
    """
    The supervisor's totals of its workers' counters.

    @ivar counters: the supervisor's own counters, where its output's
        readings are registered.
    @ivar reports: each live worker's last report, by worker.
    @ivar ended: the counts of the workers that ended, summed.
    @ivar workersWrite: whether the workers write the output themselves
        (C{--worker-output direct}), so that its metrics are theirs.
    """

    def __init__(self, counters: Counters, workersWrite: bool = False) -> None:
        self.counters = counters
        self.workersWrite = workersWrite
        self.reports: Dict[Hashable, Values] = {}
        self.ended: Values = {}

    def update(self, worker: Hashable, values: Values) -> None:
        """
        C{worker} reported C{values}.
        """
        self.reports[worker] = values

    def workerEnded(self, worker: Hashable) -> None:
        """
        C{worker} will report no more: keep its counts (not its gauges) in
        the totals.
        """
        last = self.reports.pop(worker, None)
        if last is not None:
            counts = {
                spec.name: last[spec.name]
                for spec in METRICS
                if spec.type != "gauge"
                and (spec.across == "sum" or (spec.across == "output" and self.workersWrite))
                and last.get(spec.name) is not None
            }
            self.ended = total([self.ended, counts], {}, self.workersWrite)

    def values(self) -> Values:
        """
        The totals now.
        """
        return total([self.ended, *self.reports.values()], readValues(self.counters), self.workersWrite)


class TotalsCollector:
    """
    A Prometheus collector of L{WorkerTotals}: the metrics of L{METRICS},
    in their order, totalled across the workers.
    """

    def __init__(self, totals: WorkerTotals) -> None:
        self.totals = totals

    def collect(self) -> Iterator[Metric]:
        """
        Yield every metric that has a total.
        """
        values = self.totals.values()
        for spec in METRICS:
            value = values.get(spec.name)
            if value is not None:
                yield family(spec, value)


def totalsService(description: str, totals: WorkerTotals, reactor: Any) -> IService:
    """
    The service that serves C{totals} (and the supervisor's C{process_*}
    metrics) at C{/metrics} on the endpoint C{description}, as
    L{logger_service.metrics.metricsService} serves one process's.
    """
    registry = CollectorRegistry()
    registry.register(TotalsCollector(totals))
    ProcessCollector(registry=registry)
    service: IService = strports.service(description, metricsSite(registry, reactor), reactor=reactor)
    return service
