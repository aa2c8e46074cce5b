"""
Tests for L{logger_service.metrics}: the Prometheus collector over a real
hub, recorder and chat driven with L{StringTransport} and a L{Clock}; the
C{/metrics} page over an in-memory HTTP connection; and a real C{twistd
linelogger --metrics} scraped over HTTP.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import threading
import urllib.error
import urllib.request
from typing import Dict, List, Optional, Tuple

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase
from twisted.web.server import Site

from logger_service import metrics
from logger_service.chatsession import Chat, ChatSession
from logger_service.factory import LineLoggerFactory
from logger_service.framing import LongLines
from logger_service.hub import Hub
from logger_service.limits import ConnectionLimits
from logger_service.metrics import LineLoggerCollector, makeRegistry, metricsService
from logger_service.protocol import LineLoggerProtocol
from logger_service.recorder import Recorder

from .memory import MemorySink
from .twistd_helpers import (
    LineLogger,
    assertCleanShutdown,
    canConnect,
    freePort,
    makeTempDir,
    runTwistd,
    waitFor,
)

Samples = Dict[str, float]


def sampleKey(name: str, labels: Dict[str, str]) -> str:
    """
    A sample's name with its labels, sorted: C{name{a="1",b="2"}}.
    """
    if not labels:
        return name
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def parse(text: str) -> Tuple[Samples, Dict[str, str]]:
    """
    Parse the Prometheus text format.

    @return: every sample's value by L{sampleKey}, and every family's type
        by family name.
    """
    samples: Samples = {}
    types: Dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            key = sampleKey(sample.name, sample.labels)
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = sample.value
    return samples, types


def scrape(registry: CollectorRegistry) -> Samples:
    """
    Render C{registry} as a scrape would and parse it back.
    """
    return parse(generate_latest(registry).decode("utf-8"))[0]


README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.rst")


def documentedNames() -> List[str]:
    """
    The metric names README.rst's table of metrics lists.
    """
    with open(README, encoding="utf-8") as f:
        return re.findall(r"^``(linelogger_\w+)``  ", f.read(), re.MULTILINE)


def connect(
    factory: LineLoggerFactory, host: str = "192.0.2.1", port: int = 5555
) -> Tuple[LineLoggerProtocol, StringTransport]:
    """
    Connect a new protocol from C{host:port}.
    """
    protocol = factory.buildProtocol(IPv4Address("TCP", host, port))
    transport = StringTransport(peerAddress=IPv4Address("TCP", host, port))
    with capturedLogs():
        protocol.makeConnection(transport)
    return protocol, transport


def disconnect(protocol: LineLoggerProtocol) -> None:
    """
    The client closed its connection.
    """
    with capturedLogs():
        protocol.connectionLost(Failure(ConnectionDone()))


class HubMetricsTests(SynchronousTestCase):
    """
    The collector reports what the hub and the recorder counted.
    """

    def build(self, fsync: Optional[float] = None, bufferBytes: int = 8 * 1024 * 1024, **settings: object) -> None:
        self.clock = Clock()
        self.sink = MemorySink()
        self.recorder = Recorder(self.sink, self.clock, format="text", fsync=fsync, bufferBytes=bufferBytes)
        self.hub = Hub(self.recorder, ConnectionLimits(maxConnections=0, maxPerAddress=1))
        self.factory = LineLoggerFactory(self.hub, clock=self.clock, **settings)  # type: ignore[arg-type]
        self.registry = makeRegistry(self.hub, None)

    def test_idle(self) -> None:
        """
        Before anything happens every metric is there, at 0, refusals for
        every reason included; no chat metrics outside chat mode.
        """
        self.build()
        samples = scrape(self.registry)
        expected = {
            "linelogger_connections_open": 0,
            "linelogger_connections_total": 0,
            'linelogger_connections_refused_total{reason="max-connections"}': 0,
            'linelogger_connections_refused_total{reason="max-per-ip"}': 0,
            'linelogger_connections_refused_total{reason="not-allowed"}': 0,
            'linelogger_connections_refused_total{reason="no-proxy-header"}': 0,
            "linelogger_lines_received_total": 0,
            "linelogger_received_bytes_total": 0,
            "linelogger_long_lines_total": 0,
            "linelogger_dropped_bytes_total": 0,
            "linelogger_idle_timeouts_total": 0,
            "linelogger_line_timeouts_total": 0,
            "linelogger_rate_delays_total": 0,
            "linelogger_input_paused": 0,
            "linelogger_records_written_total": 0,
            "linelogger_written_bytes_total": 0,
            "linelogger_write_errors_total": 0,
            "linelogger_output_buffer_bytes": 0,
            "linelogger_output_buffer_limit_bytes": 8 * 1024 * 1024,
            "linelogger_fsync_seconds_count": 0,
            "linelogger_fsync_seconds_sum": 0,
        }
        self.assertEqual(samples, expected)

    def test_types(self) -> None:
        """
        Counters are counters (their samples end in C{_total}), gauges are
        gauges, fsync time is a summary; README.rst lists every metric, and
        nothing else.
        """
        self.build()
        _, types = parse(generate_latest(self.registry).decode("utf-8"))
        self.assertEqual(types["linelogger_connections"], "counter")
        self.assertEqual(types["linelogger_lines_received"], "counter")
        self.assertEqual(types["linelogger_connections_open"], "gauge")
        self.assertEqual(types["linelogger_output_buffer_bytes"], "gauge")
        self.assertEqual(types["linelogger_input_paused"], "gauge")
        self.assertEqual(types["linelogger_fsync_seconds"], "summary")
        chat = Chat(self.clock)
        _, chatTypes = parse(generate_latest(makeRegistry(self.hub, chat)).decode("utf-8"))
        exposed = {name + "_total" if kind == "counter" else name for name, kind in chatTypes.items()}
        # The linelogger_redis_* metrics exist only with --redis: tests.test_redis_broker.
        documented = [name for name in documentedNames() if not name.startswith("linelogger_redis_")]
        self.assertEqual(sorted(exposed), sorted(documented))

    def test_readmeTable(self) -> None:
        """
        README.rst's table of metrics is the one L{metrics.metricsTable} makes
        from L{metrics.METRICS}: names, types and help are written once.
        """
        with open(README, encoding="utf-8") as f:
            readme = f.read()
        table = metrics.metricsTable()
        self.assertIn("\n\n" + table + "\n", readme)
        self.assertEqual(documentedNames(), [spec.name for spec in metrics.METRICS])

    def test_traffic(self) -> None:
        """
        Connections, refusals, lines, bytes, long lines and what was written
        are reported as they happened.
        """
        self.build(maxLineLength=10, longLines=LongLines.truncate)
        protocol, _ = connect(self.factory, port=1)
        _, refused = connect(self.factory, port=2)
        self.assertTrue(refused.disconnecting)
        protocol.dataReceived(b"one\ntwo\n")
        protocol.dataReceived(b"three\n" + b"x" * 25 + b"\n")
        samples = scrape(self.registry)
        self.assertEqual(samples["linelogger_connections_open"], 1)
        self.assertEqual(samples["linelogger_connections_total"], 1)
        self.assertEqual(samples['linelogger_connections_refused_total{reason="max-per-ip"}'], 1)
        self.assertEqual(samples['linelogger_connections_refused_total{reason="max-connections"}'], 0)
        self.assertEqual(samples["linelogger_lines_received_total"], 4)
        self.assertEqual(samples["linelogger_received_bytes_total"], 8 + 6 + 26)
        # The open connection's framer holds these counts.
        self.assertEqual(samples["linelogger_long_lines_total"], 1)
        self.assertEqual(samples["linelogger_dropped_bytes_total"], 15)
        # Not written yet: waiting for the flush interval.
        self.assertEqual(samples["linelogger_records_written_total"], 0)
        self.assertEqual(samples["linelogger_output_buffer_bytes"], self.recorder.pendingBytes)
        self.assertGreater(samples["linelogger_output_buffer_bytes"], 0)

        self.clock.advance(self.recorder.flushInterval)
        samples = scrape(self.registry)
        self.assertEqual(samples["linelogger_records_written_total"], 4)
        self.assertEqual(samples["linelogger_written_bytes_total"], len(self.sink.data))
        self.assertEqual(samples["linelogger_output_buffer_bytes"], 0)
        self.assertEqual(samples["linelogger_write_errors_total"], 0)

        # Closed: the counts move from the framer to the hub, and are not
        # counted twice.
        disconnect(protocol)
        samples = scrape(self.registry)
        self.assertEqual(samples["linelogger_connections_open"], 0)
        self.assertEqual(samples["linelogger_connections_total"], 1)
        self.assertEqual(samples["linelogger_long_lines_total"], 1)
        self.assertEqual(samples["linelogger_dropped_bytes_total"], 15)

    def test_longLinesOpenAndClosed(self) -> None:
        """
        Long lines of closed connections and of open ones add up.
        """
        self.build(maxLineLength=4, longLines=LongLines.split)
        one, _ = connect(self.factory, host="192.0.2.1")
        two, _ = connect(self.factory, host="192.0.2.2")
        one.dataReceived(b"abcdefgh\n")
        two.dataReceived(b"abcdefgh\nabcdefgh\n")
        disconnect(one)
        samples = scrape(self.registry)
        self.assertEqual(samples["linelogger_long_lines_total"], 3)
        self.assertEqual(samples["linelogger_dropped_bytes_total"], 0)
        self.assertEqual(samples["linelogger_lines_received_total"], 6)

    def test_idleTimeout(self) -> None:
        """
        Connections closed for idleness are counted.
        """
        self.build(idleTimeout=5)
        connect(self.factory)
        with capturedLogs():
            self.clock.advance(5)
        samples = scrape(self.registry)
        self.assertEqual(samples["linelogger_idle_timeouts_total"], 1)
        self.assertEqual(samples["linelogger_connections_open"], 0)

    def test_lineTimeout(self) -> None:
        """
        Connections closed for holding an unfinished line too long are
        counted.
        """
        self.build(lineTimeout=5)
        protocol, _ = connect(self.factory)
        protocol.dataReceived(b"no end")
        with capturedLogs():
            self.clock.advance(5)
        samples = scrape(self.registry)
        self.assertEqual(samples["linelogger_line_timeouts_total"], 1)
        self.assertEqual(samples["linelogger_connections_open"], 0)

    def test_rateDelays(self) -> None:
        """
        Pauses for C{--max-rate} are counted.
        """
        self.build(maxRate=1)
        protocol, transport = connect(self.factory)
        protocol.dataReceived(b"a\nb\nc\n")
        self.assertEqual(transport.producerState, "paused")
        self.assertEqual(scrape(self.registry)["linelogger_rate_delays_total"], 1)

    def test_writeErrorsPauseInput(self) -> None:
        """
        A failing output shows as write errors, waiting bytes and paused
        input; once it recovers, input resumes.
        """
        self.build()
        protocol, _ = connect(self.factory)
        self.sink.failWith = errno.ENOSPC
        with capturedLogs():
            protocol.dataReceived(b"hello\n")
            self.clock.advance(self.recorder.flushInterval)
        samples = scrape(self.registry)
        self.assertEqual(samples["linelogger_write_errors_total"], 1)
        self.assertEqual(samples["linelogger_input_paused"], 1)
        self.assertGreater(samples["linelogger_output_buffer_bytes"], 0)
        self.assertEqual(samples["linelogger_records_written_total"], 0)
        self.sink.failWith = None
        with capturedLogs():
            self.clock.advance(self.recorder.retryInterval)
        samples = scrape(self.registry)
        self.assertEqual(samples["linelogger_input_paused"], 0)
        self.assertEqual(samples["linelogger_output_buffer_bytes"], 0)
        self.assertEqual(samples["linelogger_records_written_total"], 1)

    def test_fsync(self) -> None:
        """
        fsyncs are counted, with the time spent in them.
        """
        self.build(fsync=0)
        protocol, _ = connect(self.factory)
        protocol.dataReceived(b"a\n")
        self.clock.advance(self.recorder.flushInterval)
        protocol.dataReceived(b"b\n")
        self.clock.advance(self.recorder.flushInterval)
        samples = scrape(self.registry)
        self.assertEqual(samples["linelogger_fsync_seconds_count"], 2)
        self.assertEqual(self.sink.syncs, 2)
        self.assertEqual(samples["linelogger_fsync_seconds_sum"], self.recorder.syncSeconds)
        self.assertGreaterEqual(samples["linelogger_fsync_seconds_sum"], 0)

    def test_freshRegistries(self) -> None:
        """
        Each registry is new, so two services (or tests) do not collide,
        and the global registry is left alone.
        """
        from prometheus_client import REGISTRY

        self.build()
        other = makeRegistry(Hub(Recorder(MemorySink(), self.clock)), None)
        self.assertIsNot(self.registry, other)
        self.assertIsNone(REGISTRY.get_sample_value("linelogger_connections_open"))
        connect(self.factory)
        self.assertEqual(self.registry.get_sample_value("linelogger_connections_open"), 1)
        self.assertEqual(other.get_sample_value("linelogger_connections_open"), 0)

    def test_processMetrics(self) -> None:
        """
        C{makeRegistry(..., process=True)} adds the C{process_*} metrics
        (where the platform has them).
        """
        self.build()
        if not os.path.exists("/proc/self/stat"):
            raise SkipTest("no /proc: no process metrics")
        samples = scrape(makeRegistry(self.hub, None, process=True))
        self.assertIn("process_cpu_seconds_total", samples)
        self.assertIn("linelogger_lines_received_total", samples)


class ChatMetricsTests(SynchronousTestCase):
    """
    In chat mode the collector also reports the chat's counters.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.sink = MemorySink()
        self.hub = Hub(Recorder(self.sink, self.clock))
        self.chat = Chat(self.clock, floodRate=1.0, floodBurst=3, sendq=1000, counters=self.hub.counters)
        self.factory = LineLoggerFactory(self.hub, clock=self.clock, sessions=self.chat.session)
        self.registry = makeRegistry(self.hub, self.chat)
        self.ports = iter(range(40000, 50000))

    def connect(self) -> Tuple[LineLoggerProtocol, StringTransport]:
        protocol, transport = connect(self.factory, "127.0.0.1", next(self.ports))
        assert protocol.session is not None
        self.clock.advance(0)
        return protocol, transport

    def test_idle(self) -> None:
        """
        The chat metrics are there from the start: no members, the lobby.
        """
        samples = scrape(self.registry)
        self.assertEqual(samples["linelogger_chat_members"], 0)
        self.assertEqual(samples["linelogger_chat_rooms"], 1)
        self.assertEqual(samples["linelogger_chat_deliveries_total"], 0)
        self.assertEqual(samples["linelogger_chat_flood_delays_total"], 0)
        self.assertEqual(samples["linelogger_chat_slow_consumers_total"], 0)

    def test_conversation(self) -> None:
        """
        Members, rooms, deliveries and flood delays, as they happened.
        """
        a, _ = self.connect()
        b, _ = self.connect()
        self.connect()
        before = self.chat.broadcast.deliveries  # type: ignore[attr-defined]
        a.dataReceived(b"hello\n")
        self.clock.advance(0)
        samples = scrape(self.registry)
        self.assertEqual(samples["linelogger_chat_members"], 3)
        self.assertEqual(samples["linelogger_chat_rooms"], 1)
        # "hello" went to the two others.
        self.assertEqual(samples["linelogger_chat_deliveries_total"], before + 2)
        self.assertEqual(samples["linelogger_connections_open"], 3)
        self.assertEqual(samples["linelogger_lines_received_total"], 1)

        b.dataReceived(b"/join #dev\n")
        self.clock.advance(0)
        self.assertEqual(scrape(self.registry)["linelogger_chat_rooms"], 2)

        # The burst is 3 (a used one): four more lines are delayed.
        a.dataReceived(b"1\n2\n3\n4\n")
        samples = scrape(self.registry)
        self.assertEqual(samples["linelogger_chat_flood_delays_total"], 1)
        self.assertEqual(samples["linelogger_lines_received_total"], 6)

        disconnect(a)
        self.clock.advance(0)
        samples = scrape(self.registry)
        self.assertEqual(samples["linelogger_chat_members"], 2)
        self.assertEqual(samples["linelogger_connections_open"], 2)

    def test_slowConsumer(self) -> None:
        """
        A client dropped for not reading is counted.
        """
        slow, _ = self.connect()
        sender, _ = self.connect()
        session = slow.session
        assert isinstance(session, ChatSession)
        session.sendQueue.pauseProducing()
        with capturedLogs():
            for i in range(30):
                sender.dataReceived(b"message number %02d to fill the queue\n" % i)
                self.clock.advance(1)
        samples = scrape(self.registry)
        self.assertEqual(samples["linelogger_chat_slow_consumers_total"], 1)
        self.assertEqual(samples["linelogger_chat_members"], 1)

    def test_otherBroadcast(self) -> None:
        """
        A broadcast that counts no deliveries leaves that metric out, and
        the rest still works.
        """
        chat = Chat(self.clock, broadcast=object())  # type: ignore[arg-type]
        samples = scrape(makeRegistry(self.hub, chat))
        self.assertNotIn("linelogger_chat_deliveries_total", samples)
        self.assertEqual(samples["linelogger_chat_members"], 0)

    def test_collectorAlone(self) -> None:
        """
        L{LineLoggerCollector} can go in any registry.
        """
        registry = CollectorRegistry()
        registry.register(LineLoggerCollector(self.hub.counters))
        self.connect()
        self.assertEqual(registry.get_sample_value("linelogger_chat_members"), 1)


class MetricsPageTests(SynchronousTestCase):
    """
    L{metricsService} serves C{/metrics} over HTTP, here on a memory reactor.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.clock = Clock()
        self.hub = Hub(Recorder(MemorySink(), self.clock))
        self.service = metricsService("tcp:9100:interface=127.0.0.1", self.hub, None, self.reactor)
        self.service.privilegedStartService()
        self.service.startService()
        self.addCleanup(self.service.stopService)

    def site(self) -> Site:
        [(port, site, backlog, interface)] = self.reactor.tcpServers
        self.assertEqual((port, interface), (9100, "127.0.0.1"))
        assert isinstance(site, Site)
        return site

    def get(self, path: bytes, headers: bytes = b"") -> Tuple[bytes, Dict[bytes, bytes], bytes]:
        """
        Send one HTTP/1.0 GET for C{path}.

        @return: the status line, the headers (lowercase names), the body.
        """
        site = self.site()
        channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
        assert channel is not None
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(b"GET " + path + b" HTTP/1.0\r\nHost: localhost\r\n" + headers + b"\r\n")
        head, _, body = transport.value().partition(b"\r\n\r\n")
        status, *lines = head.split(b"\r\n")
        fields = {}
        for line in lines:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        channel.connectionLost(Failure(ConnectionDone()))
        return status, fields, body

    def test_metrics(self) -> None:
        """
        C{GET /metrics} answers the Prometheus text format with the
        service's metrics (and the process's).
        """
        factory = LineLoggerFactory(self.hub, clock=self.clock)
        protocol, _ = connect(factory)
        protocol.dataReceived(b"a\nb\nc\n")
        status, fields, body = self.get(b"/metrics")
        self.assertEqual(status, b"HTTP/1.0 200 OK")
        self.assertTrue(fields[b"content-type"].startswith(b"text/plain; version="), fields)
        samples, _ = parse(body.decode("utf-8"))
        self.assertEqual(samples["linelogger_lines_received_total"], 3)
        self.assertEqual(samples["linelogger_connections_open"], 1)
        if os.path.exists("/proc/self/stat"):
            self.assertIn("process_resident_memory_bytes", samples)

    def test_openMetrics(self) -> None:
        """
        A scraper that asks for OpenMetrics gets it.
        """
        status, fields, body = self.get(b"/metrics", b"Accept: application/openmetrics-text; version=1.0.0\r\n")
        self.assertEqual(status, b"HTTP/1.0 200 OK")
        self.assertTrue(fields[b"content-type"].startswith(b"application/openmetrics-text"), fields)
        self.assertTrue(body.endswith(b"# EOF\n"))
        self.assertIn(b"linelogger_lines_received_total 0", body)

    def test_elsewhere(self) -> None:
        """
        Nothing else is served.
        """
        for path in (b"/", b"/metrics/x", b"/other"):
            status, _, _ = self.get(path)
            self.assertEqual(status, b"HTTP/1.0 404 Not Found", path)

    def test_noAccessLog(self) -> None:
        """
        Scrapes are not logged: one every few seconds would fill the log.
        """
        with capturedLogs() as events:
            self.get(b"/metrics")
        self.assertEqual([e for e in events if "GET" in str(e.get("log_format", "")) + str(e.get("message", ""))], [])


def fetch(port: int, path: str = "/metrics") -> Tuple[int, str, str]:
    """
    GET C{http://127.0.0.1:PORT/PATH}.

    @return: the status, the content type, the body.
    """
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode("utf-8", "replace")


class TwistdMetricsTests(SynchronousTestCase):
    """
    A real C{twistd -n linelogger --metrics tcp:M:interface=127.0.0.1},
    scraped over HTTP.
    """

    def start(self, *options: str) -> Tuple[LineLogger, int]:
        """
        Start linelogger with C{--metrics} on a free port and C{options};
        wait until the metrics answer.

        @return: the server and its metrics port.
        """
        for attempt in range(3):
            metricsPort = freePort()
            try:
                # No probing connections: the counts are the test's own.
                server = LineLogger(self, "--metrics", f"tcp:{metricsPort}:interface=127.0.0.1", *options, probe=False)
            except AssertionError as e:
                if "could not find free ports" not in str(e) or attempt == 2:
                    raise
                continue  # The metrics port was taken: try another.
            break

        def answers() -> bool:
            try:
                return fetch(metricsPort)[0] == 200
            except OSError:
                return False

        try:
            waitFor("the metrics page", answers, timeout=20)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- twistd log ---\n{server.log()}") from None
        return server, metricsPort

    def waitForSample(self, port: int, key: str, value: float) -> Samples:
        """
        Scrape until the sample C{key} has C{value}.

        @return: the samples of that scrape.
        """
        last: Samples = {}

        def check() -> Optional[Samples]:
            nonlocal last
            last = parse(fetch(port)[2])[0]
            return last if last.get(key) == value else None

        try:
            return waitFor(f"{key} == {value}", check, timeout=10, interval=0.05)
        except AssertionError as e:
            raise AssertionError(f"{e}; last scrape: {last}") from None

    def test_scrape(self) -> None:
        """
        Lines sent to linelogger show in its metrics.
        """
        server, metricsPort = self.start("--max-line-length", "10", "--long-lines", "truncate")
        client = server.connect()
        client.sendall(b"one\ntwo\nthree\n" + b"x" * 25 + b"\n")
        server.waitForRecords(4)
        samples = self.waitForSample(metricsPort, "linelogger_records_written_total", 4)
        self.assertEqual(samples["linelogger_lines_received_total"], 4)
        self.assertEqual(samples["linelogger_received_bytes_total"], 14 + 26)
        self.assertEqual(samples["linelogger_connections_open"], 1)
        self.assertEqual(samples["linelogger_connections_total"], 1)
        self.assertEqual(samples["linelogger_long_lines_total"], 1)
        self.assertEqual(samples["linelogger_dropped_bytes_total"], 15)
        self.assertEqual(samples["linelogger_written_bytes_total"], len(server.output()))
        self.assertEqual(samples['linelogger_connections_refused_total{reason="max-per-ip"}'], 0)
        self.assertEqual(samples["linelogger_input_paused"], 0)
        self.assertNotIn("linelogger_chat_members", samples)
        if os.path.exists("/proc/self/stat"):
            self.assertGreater(samples["process_resident_memory_bytes"], 0)

        status, contentType, _ = fetch(metricsPort)
        self.assertEqual(status, 200)
        self.assertTrue(contentType.startswith("text/plain; version="), contentType)
        self.assertEqual(fetch(metricsPort, "/")[0], 404)

        client.close()
        self.waitForSample(metricsPort, "linelogger_connections_open", 0)
        self.assertNotIn("GET /metrics", server.log())

    def test_chat(self) -> None:
        """
        In chat mode the chat's metrics are there too.
        """
        server, metricsPort = self.start("--chat")
        one = server.connect()
        two = server.connect()
        one.sendall(b"hello\n")
        server.waitForRecords(1)
        samples = self.waitForSample(metricsPort, "linelogger_chat_members", 2)
        self.assertEqual(samples["linelogger_chat_rooms"], 1)
        self.assertEqual(samples["linelogger_connections_open"], 2)
        self.assertGreaterEqual(samples["linelogger_chat_deliveries_total"], 1)
        two.close()
        self.waitForSample(metricsPort, "linelogger_chat_members", 1)

    def test_scrapeDuringDrain(self) -> None:
        """
        After SIGTERM, C{/metrics} keeps answering while the shutdown drains,
        and closes only when it is over.

        The drain is made to last: with C{--max-rate 1}, the first read of a
        fast client's lines puts it thousands of lines over the rate, so
        reading from it pauses with the rest of its lines unread in the
        kernel, and the drain waits for them until C{--drain-timeout}.
        """
        server, metricsPort = self.start("--max-rate", "1", "--drain-timeout", "8")
        client = server.connect()
        payload = b"".join(b"line %06d\n" % i for i in range(40000))

        def send() -> None:
            try:
                client.sendall(payload)
            except OSError:
                pass  # Closed by the server at the end of the drain.

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        self.addCleanup(sender.join, 30)
        waitFor(
            "reading to pause for --max-rate",
            lambda: parse(fetch(metricsPort)[2])[0].get("linelogger_rate_delays_total", 0) >= 1,
            timeout=20,
            interval=0.05,
        )
        server.twistd.terminate()
        server.twistd.waitForLog("Stopping: reading what 1 connections already sent", timeout=20)
        status, _, body = fetch(metricsPort)
        self.assertTrue(server.twistd.running(), "the drain is over already")
        self.assertEqual(status, 200)
        samples = parse(body)[0]
        self.assertEqual(samples["linelogger_connections_open"], 1)
        self.assertGreater(samples["linelogger_lines_received_total"], 0)
        status = server.twistd.wait(60)
        log = server.log()
        assertCleanShutdown(self, status, log)
        self.assertIn("still had unread input after 8.0s", log)
        self.assertFalse(canConnect(("127.0.0.1", metricsPort)), "the metrics port is still open")

    def test_metricsPortInUse(self) -> None:
        """
        A metrics port that cannot be listened on stops twistd like any
        other: non-zero status, one C{Couldn't listen} line, no traceback.
        """
        taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(5)
        port = taken.getsockname()[1]
        workdir = makeTempDir(self)
        args = ["-n", "--pidfile=", "linelogger", "--port", f"tcp:{freePort()}:interface=127.0.0.1"]
        args += ["--metrics", f"tcp:{port}:interface=127.0.0.1", "--output", os.path.join(workdir, "records.out")]
        status, output, _ = runTwistd(self, args, workdir=workdir)
        self.assertNotEqual(status, 0, output)
        self.assertNotIn("Traceback", output)
        messages = [line for line in output.splitlines() if "Couldn't listen" in line]
        self.assertEqual(len(messages), 1, output)
        self.assertIn(str(port), messages[0])
