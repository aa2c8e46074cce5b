"""
C{--metrics DESC}: the service's counters as Prometheus metrics, over HTTP.

Nothing is counted for metrics on the hot path: the hub, the recorder and
the chat keep plain integer counters anyway, and L{LineLoggerCollector}
reads them when Prometheus scrapes C{/metrics}.  The page is rendered in
the reactor thread (not in a thread pool, as
C{prometheus_client.twisted.MetricsResource} would), so the counters are
read between two events, never while one is being changed.  Its registry is
a fresh L{CollectorRegistry}, not C{prometheus_client}'s global one.

The metrics (counters end in C{_total}; the C{process_*} metrics of
C{prometheus_client}'s process collector come too, on Linux)::

    linelogger_connections_open                 gauge    connections open now
    linelogger_connections_total                counter  connections accepted
    linelogger_connections_refused_total        counter  connections refused, by reason (label reason:
                                                         max-connections, max-per-ip, not-allowed,
                                                         no-proxy-header)
    linelogger_lines_received_total             counter  lines received (each piece of a split line counts)
    linelogger_received_bytes_total             counter  bytes received from clients
    linelogger_long_lines_total                 counter  lines longer than --max-line-length (split,
                                                         truncated or closed on, per --long-lines)
    linelogger_dropped_bytes_total              counter  bytes --long-lines truncate or close dropped
    linelogger_idle_timeouts_total              counter  connections closed by --idle-timeout
    linelogger_line_timeouts_total              counter  connections closed by --line-timeout
    linelogger_rate_delays_total                counter  times --max-rate paused reading a connection
    linelogger_input_paused                     gauge    1 while reading from every client is paused
                                                         because the output is behind or failing, else 0
    linelogger_records_written_total            counter  records written to the output
    linelogger_written_bytes_total              counter  bytes written to the output
    linelogger_write_errors_total               counter  failed writes and fsyncs (each retry counts)
    linelogger_output_buffer_bytes              gauge    bytes of records waiting for the output
    linelogger_output_buffer_limit_bytes        gauge    --buffer: input pauses above it
    linelogger_fsync_seconds                    summary  fsyncs: _count how many, _sum seconds spent in them

In chat mode (C{--chat}) also::

    linelogger_chat_members                     gauge    members connected
    linelogger_chat_rooms                       gauge    rooms that exist (#lobby always does)
    linelogger_chat_deliveries_total            counter  messages delivered to members
    linelogger_chat_flood_delays_total          counter  times flood control paused a client
    linelogger_chat_slow_consumers_total        counter  clients disconnected for not reading (--sendq)

With C{--redis} also::

    linelogger_redis_up                         gauge    1 while Redis answers, else 0
    linelogger_redis_reconnects_total           counter  times Redis answered again after being lost
    linelogger_redis_not_relayed_total          counter  chat lines not relayed (too many waited for Redis)
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

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

from .chatservice import ChatService
from .hub import Hub

REFUSAL_REASONS = ("max-connections", "max-per-ip", "not-allowed", "no-proxy-header")
"""
The reasons L{logger_service.limits.ConnectionLimits.refusal} gives, shown
with 0 before the first refusal so that C{rate()} and alerts see the series
from the start.  Any other reason the hub counts is shown as well.
"""


class LineLoggerCollector:
    """
    A Prometheus collector that reads the counters of a hub, its recorder
    and, in chat mode, the chat, when it is scraped.

    It provides C{prometheus_client}'s C{Collector} protocol (C{collect}).
    """

    def __init__(self, hub: Hub, chat: Optional[ChatService] = None) -> None:
        self.hub = hub
        self.chat = chat

    def collect(self) -> Iterator[Metric]:
        """
        Yield every metric's current value.
        """
        hub = self.hub
        recorder = hub.recorder
        connections = list(hub.connections.values())

        yield GaugeMetricFamily("linelogger_connections_open", "Connections open now.", value=len(connections))
        yield CounterMetricFamily(
            "linelogger_connections_total", "Connections accepted since start.", value=hub.connectionsTotal
        )
        refused = CounterMetricFamily(
            "linelogger_connections_refused_total",
            "Connections refused since start, by reason.",
            labels=["reason"],
        )
        counts = dict.fromkeys(REFUSAL_REASONS, 0)
        counts.update(hub.refused)
        for reason, count in sorted(counts.items()):
            refused.add_metric([reason], count)
        yield refused
        yield CounterMetricFamily(
            "linelogger_lines_received_total", "Lines received since start.", value=hub.linesReceived
        )
        yield CounterMetricFamily(
            "linelogger_received_bytes_total", "Bytes received from clients since start.", value=hub.bytesReceived
        )
        # Closed connections' counts are in the hub, open ones' in their framers
        # (a connection without a framer has counted nothing).
        framers = [p.framer for p in connections if p.framer is not None]
        yield CounterMetricFamily(
            "linelogger_long_lines_total",
            "Lines longer than --max-line-length (split, truncated or closed on, per --long-lines).",
            value=hub.oversizeLines + sum(f.oversizeLines for f in framers),
        )
        yield CounterMetricFamily(
            "linelogger_dropped_bytes_total",
            "Bytes of long lines that --long-lines truncate or close dropped.",
            value=hub.droppedBytes + sum(f.droppedBytes for f in framers),
        )
        yield CounterMetricFamily(
            "linelogger_idle_timeouts_total", "Connections closed by --idle-timeout.", value=hub.idleTimeouts
        )
        yield CounterMetricFamily(
            "linelogger_line_timeouts_total", "Connections closed by --line-timeout.", value=hub.lineTimeouts
        )
        yield CounterMetricFamily(
            "linelogger_rate_delays_total", "Times --max-rate paused reading a connection.", value=hub.rateDelays
        )
        yield GaugeMetricFamily(
            "linelogger_input_paused",
            "1 while reading from clients is paused because the output is behind or failing, else 0.",
            value=1 if hub.inputPaused else 0,
        )

        yield CounterMetricFamily(
            "linelogger_records_written_total", "Records written to the output.", value=recorder.recordsWritten
        )
        yield CounterMetricFamily(
            "linelogger_written_bytes_total", "Bytes written to the output.", value=recorder.bytesWritten
        )
        yield CounterMetricFamily(
            "linelogger_write_errors_total", "Failed writes and fsyncs of the output.", value=recorder.writeErrors
        )
        yield GaugeMetricFamily(
            "linelogger_output_buffer_bytes", "Bytes of records waiting for the output.", value=recorder.pendingBytes
        )
        yield GaugeMetricFamily(
            "linelogger_output_buffer_limit_bytes",
            "Bytes of records that may wait for the output before input pauses (--buffer).",
            value=recorder.bufferBytes,
        )
        yield SummaryMetricFamily(
            "linelogger_fsync_seconds",
            "Time spent in fsync of the output (_count: fsyncs done).",
            count_value=recorder.syncs,
            sum_value=recorder.syncSeconds,
        )

        chat = self.chat
        if chat is None:
            return
        yield GaugeMetricFamily("linelogger_chat_members", "Chat members connected.", value=len(chat.state.members))
        yield GaugeMetricFamily("linelogger_chat_rooms", "Chat rooms that exist.", value=len(chat.state.rooms))
        deliveries = getattr(chat.broadcast, "deliveries", None)
        if deliveries is not None:
            yield CounterMetricFamily(
                "linelogger_chat_deliveries_total", "Chat messages delivered to members.", value=deliveries
            )
        yield CounterMetricFamily(
            "linelogger_chat_flood_delays_total", "Times chat flood control paused a client.", value=chat.floodDelays
        )
        yield CounterMetricFamily(
            "linelogger_chat_slow_consumers_total",
            "Chat clients disconnected for not reading (--sendq).",
            value=chat.slowConsumers,
        )
        redisUp = getattr(chat.broadcast, "redisUp", None)
        if redisUp is not None:
            yield GaugeMetricFamily("linelogger_redis_up", "Whether Redis answers (--redis).", value=int(redisUp))
            yield CounterMetricFamily(
                "linelogger_redis_reconnects_total",
                "Times Redis answered again after being lost.",
                value=chat.broadcast.reconnects,  # type: ignore[attr-defined]
            )
            yield CounterMetricFamily(
                "linelogger_redis_not_relayed_total",
                "Chat lines not relayed: too many waited for Redis.",
                value=chat.broadcast.notRelayed,  # type: ignore[attr-defined]
            )


def makeRegistry(hub: Hub, chat: Optional[ChatService] = None, process: bool = False) -> CollectorRegistry:
    """
    A fresh registry holding a L{LineLoggerCollector} for C{hub} and C{chat}.

    @param process: also collect C{process_*} metrics (CPU, memory, open
        files) of this process.
    """
    registry = CollectorRegistry()
    registry.register(LineLoggerCollector(hub, chat))
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


def metricsService(description: str, hub: Hub, chat: Optional[ChatService], reactor: Any) -> IService:
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
