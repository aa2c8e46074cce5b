"""
linelogger: record newline-delimited text from many clients at once.

Run it with C{twistd -n linelogger}; see L{logger_service.tap}.
"""

__version__ = "0.1.0"
