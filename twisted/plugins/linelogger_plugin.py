"""
The twistd plugin: C{twistd linelogger}.
"""

from typing import Type

from twisted.application.service import ServiceMaker
from twisted.python import usage


class LineLoggerMaker(ServiceMaker):
    """
    Makes the service from L{logger_service.tap}, with the options that
    stop twistd with a short message on a mistake
    (L{logger_service.tap.TwistdOptions}).
    """

    @property
    def options(self) -> Type[usage.Options]:
        """
        The options class twistd parses the command line with.
        """
        from logger_service.tap import TwistdOptions

        return TwistdOptions


linelogger = LineLoggerMaker(
    "linelogger",
    "logger_service.tap",
    "Record newline-delimited text from many TCP clients at once.",
    "linelogger",
)
