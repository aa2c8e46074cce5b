"""
Every count the service keeps, in one place: the parts add, metrics and the
systemd status read.

The hot paths add to plain integer attributes (C{counters.linesReceived +=
len(lines)}), which costs what adding to a protocol's or the hub's own
attribute did.  Values that are not counts but the state of a part (open
connections, bytes waiting for the output, chat members...), and counts a
part keeps for itself, are read through small callables that part
registers (L{Counters.register}); L{logger_service.metrics} lists which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, Optional

if TYPE_CHECKING:
    from .interfaces import IRecorder

Reading = Callable[[], Optional[float]]
"""A registered reading: returns the current value, or C{None} for none."""


class Counters:
    """
    The service's counters, all set in C{__init__}.

    @ivar connectionsTotal: connections accepted since start.
    @ivar refused: connections refused, by reason.
    @ivar linesReceived: lines received since start.
    @ivar bytesReceived: bytes received since start.
    @ivar oversizeLines: lines longer than C{--max-line-length}, on closed
        connections (an open one keeps its own count in its framer until it
        closes: see the C{openOversizeLines} reading).
    @ivar droppedBytes: bytes C{--long-lines truncate} or C{close} dropped,
        on closed connections (see C{openDroppedBytes}).
    @ivar idleTimeouts: connections closed for being idle.
    @ivar lineTimeouts: connections closed for holding an unfinished line
        too long (C{--line-timeout}).
    @ivar framingErrors: connections whose octet-counted framing broke.
    @ivar inputPauses: times input was paused because the output was behind.
    @ivar rateDelays: times a connection was paused by C{--max-rate}.
    @ivar floodDelays: times a chat client was paused for flooding.
    @ivar slowConsumers: chat clients disconnected for not reading.
    """

    def __init__(self) -> None:
        self.connectionsTotal = 0
        self.refused: Dict[str, int] = {}
        self.linesReceived = 0
        self.bytesReceived = 0
        self.oversizeLines = 0
        self.droppedBytes = 0
        self.idleTimeouts = 0
        self.lineTimeouts = 0
        self.framingErrors = 0
        self.inputPauses = 0
        self.rateDelays = 0
        self.floodDelays = 0
        self.slowConsumers = 0
        self._readings: Dict[str, Reading] = {}

    def register(self, name: str, reading: Reading) -> None:
        """
        From now on, the value called C{name} is what C{reading()} returns
        (the last part to register a name wins).
        """
        self._readings[name] = reading

    def read(self, name: str) -> Optional[float]:
        """
        The current value of the reading C{name}, or C{None} if no part
        registered it (chat readings without C{--chat}, say) or it has no
        value.
        """
        reading = self._readings.get(name)
        return reading() if reading is not None else None

    def registerOutput(self, recorder: IRecorder) -> None:
        """
        From now on, the output's readings are those of C{recorder}: the one
        recorder of this process that writes the output.
        """
        self.register("recordsWritten", lambda: recorder.recordsWritten)
        self.register("bytesWritten", lambda: recorder.bytesWritten)
        self.register("writeErrors", lambda: recorder.writeErrors)
        self.register("outputBufferBytes", lambda: recorder.pendingBytes)
        self.register("outputBufferLimitBytes", lambda: recorder.bufferBytes)
        self.register("syncs", lambda: recorder.syncs)
        self.register("syncSeconds", lambda: recorder.syncSeconds)
