"""
A batch of received lines made into records, escaped, in one pass, in C (see L{logger_service.records}).
"""

from typing import Tuple

from typing_extensions import Buffer

WAYS: Tuple[str, ...]

def textRecords(data: Buffer, prefix: Buffer, /) -> bytes: ...
def jsonRecords(data: Buffer, start: Buffer, /) -> bytes: ...
def recordsWith(data: Buffer, prefix: Buffer, format: str, way: str, /) -> bytes: ...
