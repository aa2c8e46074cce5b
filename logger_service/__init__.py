"""
linelogger: record newline-delimited text from many clients at once.

Run it with C{twistd -n linelogger}; see L{logger_service.tap}.
"""

import os as _os

from .systemd import nameInheritedSockets as _nameInheritedSockets

__version__ = "0.1.0"

# Before anything imports twisted.internet.endpoints, which reads the
# sockets systemd passed only once (see logger_service.systemd).
_nameInheritedSockets(_os.environ, _os.getpid())
