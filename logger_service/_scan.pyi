"""
Whole-batch checks of received bytes in one pass, in C (see L{logger_service.scan}).
"""

from typing import Tuple

from typing_extensions import Buffer

WAYS: Tuple[str, ...]

def scan(data: Buffer, /) -> Tuple[int, int]: ...
def scanWith(data: Buffer, way: str, /) -> Tuple[int, int]: ...
