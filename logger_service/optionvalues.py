"""
The values of single options, parsed and checked: numbers, C{--fsync},
C{--workers}, and endpoint descriptions.

Each parser raises L{usage.UsageError} (or C{ValueError}, for
L{workerCount}) with a message naming the option, which
L{logger_service.tap.Options} turns into one line and a non-zero exit.
"""

from __future__ import annotations

import os
from typing import Optional

from twisted.python import usage


def portDescription(value: str) -> str:
    """
    Turn a C{--port} value into an endpoint description: C{N} means C{tcp:N}.
    """
    return f"tcp:{value}" if value.isdigit() else value


BACKLOG_TYPES = frozenset({"tcp", "tcp6", "unix", "ssl"})
"""Endpoint types that take a C{backlog} argument."""


def withBacklog(description: str, backlog: int) -> str:
    """
    Add C{backlog=N} to a listening endpoint description that takes one and
    does not name its own (also inside C{haproxy:}).
    """
    kind, _, rest = description.partition(":")
    if kind == "haproxy":
        kind = rest.partition(":")[0]
    if kind in BACKLOG_TYPES and "backlog=" not in description:
        return f"{description}:backlog={backlog}"
    return description


def wholeNumber(option: str, value: object, minimum: int = 1) -> int:
    """
    Parse the value of C{--option} as a whole number of at least C{minimum}.

    @raise usage.UsageError: naming the option, if it is not one.
    """
    try:
        number = int(str(value))
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise usage.UsageError(f"--{option} takes a whole number of at least {minimum}, not {value!r}")
    return number


def fsyncSetting(value: str) -> Optional[float]:
    """
    Parse C{--fsync}: C{never} (C{None}), C{always} (0), or milliseconds
    between syncs (in seconds).
    """
    if value == "never":
        return None
    if value == "always":
        return 0.0
    return positiveNumber("fsync", value, "never, always, or a number of milliseconds") / 1000


def positiveNumber(option: str, value: object, expected: str = "a number greater than 0") -> float:
    """
    Parse the value of C{--option} as a number greater than 0.

    @raise usage.UsageError: naming the option, if it is not one.
    """
    try:
        number = float(str(value))
    except ValueError:
        number = 0.0
    if not 0 < number < float("inf"):
        raise usage.UsageError(f"--{option} takes {expected}, not {value!r}")
    return number


def nonNegativeNumber(option: str, value: object) -> float:
    """
    Parse the value of C{--option} as a number of at least 0 (0: off).
    """
    return 0.0 if str(value).strip() in ("0", "0.0") else positiveNumber(option, value, "0 or a positive number")


def usableCores() -> int:
    """
    The number of cores this process may run on.
    """
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def workerCount(value: str) -> int:
    """
    Parse C{--workers}: a whole number of at least 1, or C{auto}.

    @raise ValueError: if it is neither.
    """
    if value == "auto":
        return usableCores()
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number
