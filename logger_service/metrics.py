"""
C{--metrics DESC}: the service's counters as Prometheus metrics, over HTTP.

Nothing is counted for metrics on the hot path: the parts add to the plain
integer counters of L{logger_service.counters.Counters} anyway, and
L{LineLoggerCollector} reads them when Prometheus scrapes C{/metrics}.  The page is rendered in
the reactor thread (not in a thread pool, as
C{prometheus_client.twisted.MetricsResource} would), so the counters are
read between two events, never while one is being changed.  Its registry is
a fresh L{CollectorRegistry}, not C{prometheus_client}'s global one.

The metrics are listed once, in L{METRICS}: name, type, help, how to read
the value from L{logger_service.counters.Counters}, and how the supervisor
of C{--workers} totals the workers' values (L{logger_service.workertotals}).  README.rst's
table of them is made from that list (L{metricsTable}; a test checks that
the two agree).  A metric whose value is not registered (the chat ones
without C{--chat}, the Redis ones without C{--redis}) is left out; the
C{process_*} metrics of C{prometheus_client}'s process collector come too,
on Linux.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any, Callable, Dict, Iterator, NamedTuple, Optional, Tuple, Union

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from twisted.application import strports
from twisted.application.service import IService
from twisted.web.http import Request
from twisted.web.pages import notFound
from twisted.web.resource import IResource, Resource
from twisted.web.server import Site

from .chatsession import Chat
from .counters import Counters
from .hub import Hub

REFUSAL_REASONS = ("max-connections", "max-per-ip", "not-allowed", "no-proxy-header")
"""
The reasons L{logger_service.limits.ConnectionLimits.refusal} gives, shown
with 0 before the first refusal so that C{rate()} and alerts see the series
from the start.  Any other reason the hub counts is shown as well.
"""

Value = Union[None, float, Dict[str, int], Tuple[float, float]]
"""
A metric's value: C{None} (not registered: the metric is left out), a
number, counts by label (C{reason}), or a summary's C{(count, sum)}.
"""


class MetricSpec(NamedTuple):
    """
    One metric: its name, its type (C{counter}, C{gauge} or C{summary}), its
    help text, how to read its value from the counters, and how the
    supervisor of C{--workers} totals it (L{logger_service.workertotals}):
    C{sum}, C{max} or C{min} of the workers' values, or C{output}: the
    supervisor's own where it alone writes the output, else (the workers
    write it: C{--worker-output direct}) their sum.
    """

    name: str
    type: str
    help: str
    read: Callable[[Counters], Value]
    across: str = "sum"


def _refused(counters: Counters) -> Dict[str, int]:
    counts = dict.fromkeys(REFUSAL_REASONS, 0)
    counts.update(counters.refused)
    return counts


def _sum(counters: Counters, count: int, reading: str) -> Optional[float]:
    more = counters.read(reading)
    return count + more if more is not None else count


def _fsyncs(counters: Counters) -> Optional[Tuple[float, float]]:
    count, seconds = counters.read("syncs"), counters.read("syncSeconds")
    return (count, seconds) if count is not None and seconds is not None else None


METRICS: Tuple[MetricSpec, ...] = (
    MetricSpec("linelogger_connections_open", "gauge", "Connections open now.", lambda c: c.read("connectionsOpen")),
    MetricSpec(
        "linelogger_connections_total", "counter", "Connections accepted since start.", lambda c: c.connectionsTotal
    ),
    MetricSpec(
        "linelogger_connections_refused_total",
        "counter",
        "Connections refused since start, by reason (label reason: " + ", ".join(REFUSAL_REASONS) + ").",
        _refused,
    ),
    MetricSpec(
        "linelogger_lines_received_total",
        "counter",
        "Lines received since start (each piece of a split line counts).",
        lambda c: c.linesReceived,
    ),
    MetricSpec(
        "linelogger_received_bytes_total",
        "counter",
        "Bytes received from clients since start.",
        lambda c: c.bytesReceived,
    ),
    MetricSpec(
        "linelogger_long_lines_total",
        "counter",
        "Lines longer than --max-line-length (split, truncated or closed on, per --long-lines).",
        lambda c: _sum(c, c.oversizeLines, "openOversizeLines"),
    ),
    MetricSpec(
        "linelogger_dropped_bytes_total",
        "counter",
        "Bytes of long lines that --long-lines truncate or close dropped.",
        lambda c: _sum(c, c.droppedBytes, "openDroppedBytes"),
    ),
    MetricSpec(
        "linelogger_idle_timeouts_total", "counter", "Connections closed by --idle-timeout.", lambda c: c.idleTimeouts
    ),
    MetricSpec(
        "linelogger_line_timeouts_total", "counter", "Connections closed by --line-timeout.", lambda c: c.lineTimeouts
    ),
    MetricSpec(
        "linelogger_rate_delays_total",
        "counter",
        "Times --max-rate paused reading a connection.",
        lambda c: c.rateDelays,
    ),
    MetricSpec(
        "linelogger_input_paused",
        "gauge",
        "1 while reading from clients is paused because the output is behind or failing, else 0.",
        lambda c: c.read("inputPaused"),
        across="max",
    ),
    MetricSpec(
        "linelogger_records_written_total",
        "counter",
        "Records written to the output.",
        lambda c: c.read("recordsWritten"),
        across="output",
    ),
    MetricSpec(
        "linelogger_written_bytes_total",
        "counter",
        "Bytes written to the output.",
        lambda c: c.read("bytesWritten"),
        across="output",
    ),
    MetricSpec(
        "linelogger_write_errors_total",
        "counter",
        "Failed writes and fsyncs of the output (each retry counts).",
        lambda c: c.read("writeErrors"),
        across="output",
    ),
    MetricSpec(
        "linelogger_output_buffer_bytes",
        "gauge",
        "Bytes of records waiting for the output.",
        lambda c: c.read("outputBufferBytes"),
        across="output",
    ),
    MetricSpec(
        "linelogger_output_buffer_limit_bytes",
        "gauge",
        "Bytes of records that may wait for the output before input pauses (--buffer).",
        lambda c: c.read("outputBufferLimitBytes"),
        across="output",
    ),
    MetricSpec(
        "linelogger_fsync_seconds",
        "summary",
        "Time spent in fsync of the output (_count: fsyncs done, _sum: seconds in them).",
        _fsyncs,
        across="output",
    ),
    MetricSpec("linelogger_chat_members", "gauge", "Chat members connected.", lambda c: c.read("chatMembers")),
    MetricSpec(
        "linelogger_chat_rooms",
        "gauge",
        "Chat rooms that exist (#lobby always does).",
        lambda c: c.read("chatRooms"),
        across="max",
    ),
    MetricSpec(
        "linelogger_chat_deliveries_total",
        "counter",
        "Chat messages delivered to members.",
        lambda c: c.read("chatDeliveries"),
    ),
    MetricSpec(
        "linelogger_chat_flood_delays_total",
        "counter",
        "Times chat flood control paused a client.",
        lambda c: c.floodDelays if c.read("chatMembers") is not None else None,
    ),
    MetricSpec(
        "linelogger_chat_slow_consumers_total",
        "counter",
        "Chat clients disconnected for not reading (--sendq).",
        lambda c: c.slowConsumers if c.read("chatMembers") is not None else None,
    ),
    MetricSpec(
        "linelogger_redis_up",
        "gauge",
        "1 while Redis answers (--redis), else 0.",
        lambda c: c.read("redisUp"),
        across="min",
    ),
    MetricSpec(
        "linelogger_redis_reconnects_total",
        "counter",
        "Times Redis answered again after being lost.",
        lambda c: c.read("redisReconnects"),
    ),
    MetricSpec(
        "linelogger_redis_not_relayed_total",
        "counter",
        "Chat lines not relayed: too many waited for Redis.",
        lambda c: c.read("redisNotRelayed"),
    ),
)
"""Every metric, in the order they are shown."""


def family(spec: MetricSpec, value: Value) -> Metric:
    """
    The metric family of C{spec} with C{value}.
    """
    if isinstance(value, tuple):
        return SummaryMetricFamily(spec.name, spec.help, count_value=int(value[0]), sum_value=value[1])
    if isinstance(value, dict):
        labelled = CounterMetricFamily(spec.name, spec.help, labels=["reason"])
        for label, count in sorted(value.items()):
            labelled.add_metric([label], count)
        return labelled
    assert value is not None
    if spec.type == "gauge":
        return GaugeMetricFamily(spec.name, spec.help, value=value)
    return CounterMetricFamily(spec.name, spec.help, value=value)


def metricsTable() -> str:
    """
    L{METRICS} as the reStructuredText table of README.rst: options and
    names in literals, the help text wrapped.
    """
    width = (40, 7, 46)
    rule = "  ".join("=" * w for w in width)
    rows = [rule]
    for spec in METRICS:
        text = re.sub(r"(?<![\w`])((?:--|#|_)[a-z][\w-]*)", r"``\1``", spec.help)
        lines = textwrap.wrap(text, width[2], break_long_words=False, break_on_hyphens=False)
        first = f"``{spec.name}``".ljust(width[0]) + "  " + spec.type.ljust(width[1]) + "  " + lines[0]
        rows.append(first)
        rows.extend(" " * (width[0] + width[1] + 4) + line for line in lines[1:])
    rows.append(rule)
    return "\n".join(rows) + "\n"


class LineLoggerCollector:
    """
    A Prometheus collector that reads L{METRICS} from the service's
    counters when it is scraped.

    It provides C{prometheus_client}'s C{Collector} protocol (C{collect}).
    """

    def __init__(self, counters: Counters) -> None:
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        """
        Yield every registered metric's current value.
        """
        counters = self.counters
        for spec in METRICS:
            value = spec.read(counters)
            if value is not None:
                yield family(spec, value)


def makeRegistry(hub: Hub, chat: Optional[Chat] = None, process: bool = False) -> CollectorRegistry:
    """
    A fresh registry holding a L{LineLoggerCollector} for the counters of
    C{hub} (and of C{chat}, whose readings it registers there).

    @param process: also collect C{process_*} metrics (CPU, memory, open
        files) of this process.
    """
    counters = hub.counters
    if chat is not None:
        chat.register(counters)
    registry = CollectorRegistry()
    registry.register(LineLoggerCollector(counters))
    if process:
        ProcessCollector(registry=registry)
    return registry


class NotFound(Resource):
    """
    A resource with no children: any path below it is 404.
    """

    def getChild(self, path: bytes, request: Request) -> IResource:
        """
        Not found.
        """
        return notFound()


class MetricsPage(NotFound):
    """
    C{/metrics}: a registry in the Prometheus text format (or OpenMetrics,
    if the scraper asks for it), rendered in the reactor thread.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        NotFound.__init__(self)
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:
        """
        Render the current metrics.
        """
        accept = request.getHeader(b"accept")
        encoder, contentType = choose_encoder(accept.decode("latin-1") if accept is not None else "")
        body: bytes = encoder(self.registry)
        request.setHeader(b"Content-Type", contentType.encode("ascii"))
        return body


class MetricsSite(Site):
    """
    A L{Site} that keeps no access log: a scrape every few seconds would
    fill twistd's log.
    """

    noisy = False

    def log(self, request: Request) -> None:
        """
        Log nothing.
        """


def metricsSite(registry: CollectorRegistry, reactor: Any = None) -> MetricsSite:
    """
    The web site: C{/metrics} and nothing else (404).
    """
    root = NotFound()
    root.putChild(b"metrics", MetricsPage(registry))
    return MetricsSite(root, reactor=reactor)


def metricsService(description: str, hub: Hub, chat: Optional[Chat], reactor: Any) -> IService:
    """
    The service that serves C{hub}'s (and C{chat}'s) metrics at
    C{/metrics} on the endpoint C{description}, e.g.
    C{tcp:9100:interface=127.0.0.1}.  Like the other listeners, it listens
    in C{privilegedStartService}, so a port that cannot be bound stops
    twistd with C{Couldn't listen on ...}.  L{logger_service.tap.makeService}
    stops it only once the hub has drained, so that a shutdown can be
    watched.
    """
    site = metricsSite(makeRegistry(hub, chat, process=True), reactor)
    service: IService = strports.service(description, site, reactor=reactor)
    return service
