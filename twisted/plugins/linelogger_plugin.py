"""
The twistd plugin: C{twistd linelogger}.
"""

from twisted.application.service import ServiceMaker

linelogger = ServiceMaker(
    "linelogger",
    "logger_service.tap",
    "Record newline-delimited text from many TCP clients at once.",
    "linelogger",
)
