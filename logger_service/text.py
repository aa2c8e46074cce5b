"""
Text helpers for messages: pure functions, no I/O, shared by the modules
that speak to people (logs, chat).
"""

from __future__ import annotations


def plural(count: int, noun: str) -> str:
    """
    C{count} and C{noun}, in the plural unless C{count} is 1: C{1 line},
    C{0 lines}, C{2 lines}.
    """
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
