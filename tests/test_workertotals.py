"""
Tests for L{logger_service.workertotals}: the workers' counters, reported
and totalled for C{/metrics}; and the supervisor's side of those reports.
"""

from __future__ import annotations

from typing import List

from prometheus_client import CollectorRegistry
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from logger_service.counters import Counters
from logger_service.forwarding import ForwardingRecorder, SupervisorLink
from logger_service.metrics import METRICS
from logger_service.recorder import Recorder
from logger_service.workerprocess import WorkerLink, WorkerProcess
from logger_service.workers import PoolNotifyService, WorkerPool
from logger_service.workertotals import (
    LAST_REPORT_TIMEOUT,
    CountersReporter,
    TotalsCollector,
    Values,
    WorkerTotals,
    readValues,
    total,
)
from logger_service.workerwire import COUNTED, COUNTERS, decodeCounters, encodeCounters

from .memory import MemorySink
from .test_metrics import scrape
from .test_workerwire import Collector


def workerCounters(lines: int, connections: int, open: int) -> Counters:
    """
    A worker's counters, with C{open} connections open.
    """
    counters = Counters()
    counters.linesReceived = lines
    counters.connectionsTotal = connections
    counters.refused["max-per-ip"] = 1
    counters.register("connectionsOpen", lambda: open)
    counters.register("inputPaused", lambda: 0)
    return counters


class TotalTests(SynchronousTestCase):
    """
    L{total}: each metric totalled as its C{across} says.
    """

    def test_acrossIsKnown(self) -> None:
        """
        Every metric says how it is totalled, in a way L{total} knows.
        """
        for spec in METRICS:
            self.assertIn(spec.across, ("sum", "max", "min", "output"), spec.name)

    def test_countsAndGaugesSummed(self) -> None:
        """
        Counts, counts by label and open connections are summed; the
        output's metrics are the supervisor's own, not the workers'.
        """
        one = readValues(workerCounters(10, 3, 2))
        two = readValues(workerCounters(5, 4, 1))
        own: Values = {"linelogger_records_written_total": 15.0}
        totals = total([one, two], own)
        self.assertEqual(totals["linelogger_lines_received_total"], 15)
        self.assertEqual(totals["linelogger_connections_total"], 7)
        self.assertEqual(totals["linelogger_connections_open"], 3)
        refused = totals["linelogger_connections_refused_total"]
        assert isinstance(refused, dict)
        self.assertEqual(refused["max-per-ip"], 2)
        self.assertEqual(refused["max-connections"], 0)
        self.assertEqual(totals["linelogger_records_written_total"], 15)
        self.assertNotIn("linelogger_written_bytes_total", totals)

    def test_maxAndMin(self) -> None:
        """
        Input is paused while any worker's is; Redis is up while every
        worker's answers.
        """
        one: Values = {"linelogger_input_paused": 0, "linelogger_redis_up": 1, "linelogger_chat_rooms": 3}
        two: Values = {"linelogger_input_paused": 1, "linelogger_redis_up": 0, "linelogger_chat_rooms": 5}
        totals = total([one, two], {})
        self.assertEqual(totals["linelogger_input_paused"], 1)
        self.assertEqual(totals["linelogger_redis_up"], 0)
        self.assertEqual(totals["linelogger_chat_rooms"], 5)

    def test_noValueNoMetric(self) -> None:
        """
        A metric no worker has (chat without C{--chat}) is left out.
        """
        totals = total([readValues(workerCounters(1, 1, 1))], {})
        self.assertNotIn("linelogger_chat_members", totals)

    def test_wire(self) -> None:
        """
        A report survives the trip from worker to supervisor.
        """
        values = readValues(workerCounters(10, 3, 2))
        values["linelogger_fsync_seconds"] = (2, 0.5)
        message = b"".join(encodeCounters(values, last=True))
        self.assertEqual(message[:1], COUNTERS)
        self.assertEqual(decodeCounters(message), (values, True))
        self.assertEqual(decodeCounters(b"".join(encodeCounters({}, last=False))), ({}, False))

    def test_workersWriteTheOutput(self) -> None:
        """
        Where the workers write the output themselves, its metrics are the
        sum of theirs, and an ended worker's writes stay counted.
        """
        one = readValues(workerCounters(10, 3, 2))
        two = readValues(workerCounters(5, 4, 1))
        one["linelogger_records_written_total"] = 10
        two["linelogger_records_written_total"] = 5
        one["linelogger_fsync_seconds"] = (2, 0.5)
        two["linelogger_fsync_seconds"] = (1, 0.25)
        own: Values = {"linelogger_records_written_total": 0}
        totals = total([one, two], own, workersWrite=True)
        self.assertEqual(totals["linelogger_records_written_total"], 15)
        self.assertEqual(totals["linelogger_fsync_seconds"], (3, 0.75))
        supervisor = Counters()
        supervisor.register("recordsWritten", lambda: 0)
        workers = WorkerTotals(supervisor, workersWrite=True)
        workers.update((0, 0), one)
        workers.update((1, 0), two)
        workers.workerEnded((0, 0))
        self.assertEqual(workers.values()["linelogger_records_written_total"], 15)


class WorkerTotalsTests(SynchronousTestCase):
    """
    The supervisor's totals.
    """

    def test_endedWorkerCountsStay(self) -> None:
        """
        A worker that ended leaves its counts in the totals, not its
        gauges; its replacement's counts add to them.
        """
        own = Counters()
        own.register("recordsWritten", lambda: 42)
        totals = WorkerTotals(own)
        totals.update((0, 0), readValues(workerCounters(10, 3, 2)))
        totals.update((1, 0), readValues(workerCounters(5, 4, 1)))
        self.assertEqual(totals.values()["linelogger_lines_received_total"], 15)
        totals.workerEnded((0, 0))
        values = totals.values()
        self.assertEqual(values["linelogger_lines_received_total"], 15)
        self.assertEqual(values["linelogger_connections_open"], 1)
        totals.update((0, 1), readValues(workerCounters(2, 1, 1)))
        values = totals.values()
        self.assertEqual(values["linelogger_lines_received_total"], 17)
        self.assertEqual(values["linelogger_connections_total"], 8)
        self.assertEqual(values["linelogger_connections_open"], 2)
        self.assertEqual(values["linelogger_records_written_total"], 42)

    def test_scrape(self) -> None:
        """
        L{TotalsCollector} serves the totals as the metrics of L{METRICS}.
        """
        totals = WorkerTotals(Counters())
        totals.update((0, 0), readValues(workerCounters(10, 3, 2)))
        totals.update((1, 0), readValues(workerCounters(5, 4, 1)))
        registry = CollectorRegistry()
        registry.register(TotalsCollector(totals))
        samples = scrape(registry)
        self.assertEqual(samples["linelogger_lines_received_total"], 15)
        self.assertEqual(samples["linelogger_connections_total"], 7)
        self.assertEqual(samples["linelogger_connections_open"], 3)
        self.assertEqual(samples['linelogger_connections_refused_total{reason="max-per-ip"}'], 2)


class CountersReporterTests(SynchronousTestCase):
    """
    A worker's reports.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.counters = workerCounters(0, 0, 0)
        self.reporter = CountersReporter(self.counters, self.clock, interval=1.0)
        self.link = SupervisorLink(ForwardingRecorder(self.clock), lambda: None, self.reporter.counted)
        self.transport = StringTransport()
        self.link.makeConnection(self.transport)
        self.reporter.link = self.link
        self.supervisor = Collector()
        self.supervisor.makeConnection(StringTransport())

    def reports(self) -> List[tuple]:
        self.supervisor.dataReceived(self.transport.value())
        self.transport.clear()
        messages, self.supervisor.messages = self.supervisor.messages, []
        return [decodeCounters(m) for m in messages]

    def test_everyInterval(self) -> None:
        """
        A report at start, then one every interval, with the counts then.
        """
        self.reporter.start()
        [(values, last)] = self.reports()
        self.assertEqual((values["linelogger_lines_received_total"], last), (0, False))
        self.counters.linesReceived = 7
        self.clock.advance(1.0)
        [(values, last)] = self.reports()
        self.assertEqual((values["linelogger_lines_received_total"], last), (7, False))

    def test_lastReportAnswered(self) -> None:
        """
        C{stop} sends a last report and fires once the supervisor answers
        it; no report follows.
        """
        self.reporter.start()
        self.reports()
        self.counters.linesReceived = 3
        stopped = self.reporter.stop()
        [(values, last)] = self.reports()
        self.assertEqual((values["linelogger_lines_received_total"], last), (3, True))
        self.assertNoResult(stopped)
        self.link.dataReceived(b"\x00\x00\x00\x01" + COUNTED)
        self.successResultOf(stopped)
        self.clock.advance(10)
        self.assertEqual(self.reports(), [])

    def test_lastReportUnanswered(self) -> None:
        """
        Without an answer, C{stop} fires after L{LAST_REPORT_TIMEOUT}.
        """
        stopped = self.reporter.stop()
        self.clock.advance(LAST_REPORT_TIMEOUT - 0.1)
        self.assertNoResult(stopped)
        self.clock.advance(0.1)
        self.successResultOf(stopped)


class SupervisorSideTests(SynchronousTestCase):
    """
    The pool takes its workers' reports, and reads its counters for the
    status.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.recorder = Recorder(MemorySink(), self.reactor)
        self.pool = WorkerPool(self.recorder, self.reactor, [], 2, [])
        self.counters = Counters()
        self.pool.register(self.counters)
        self.pool.totals = WorkerTotals(self.counters)

    def link(self, slot: int) -> WorkerLink:
        worker = WorkerProcess(self.pool, slot, 0)
        link = WorkerLink(self.pool, worker)
        link.makeConnection(StringTransport())
        return link

    def test_reportsTotalled(self) -> None:
        """
        Reports from two workers are totalled; the last one is answered;
        a link lost keeps its counts.
        """
        one, two = self.link(0), self.link(1)
        report = encodeCounters(readValues(workerCounters(10, 3, 2)), last=False)
        one.dataReceived(b"".join([len(b"".join(report)).to_bytes(4, "big"), *report]))
        report = encodeCounters(readValues(workerCounters(5, 4, 1)), last=True)
        two.dataReceived(b"".join([len(b"".join(report)).to_bytes(4, "big"), *report]))
        assert isinstance(one.transport, StringTransport) and isinstance(two.transport, StringTransport)
        self.assertEqual(one.transport.value(), b"")
        self.assertEqual(two.transport.value(), b"\x00\x00\x00\x01" + COUNTED)
        self.assertEqual(self.pool.totals.values()["linelogger_lines_received_total"], 15)
        one.connectionLost(None)
        values = self.pool.totals.values()
        self.assertEqual(values["linelogger_lines_received_total"], 15)
        self.assertEqual(values["linelogger_connections_open"], 1)

    def test_outputReadings(self) -> None:
        """
        The pool registers its output's counts; the status reads them from
        the counters.
        """
        self.recorder.recordsWritten = 12
        self.recorder.bytesWritten = 345
        self.assertEqual(self.counters.read("recordsWritten"), 12)
        self.assertEqual(self.pool.totals.values()["linelogger_written_bytes_total"], 345)  # type: ignore[union-attr]
        notify = PoolNotifyService(self.pool, self.counters, self.reactor)
        self.assertEqual(notify.status(), "0 workers, 12 records written")
