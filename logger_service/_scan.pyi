"""
Whole-batch checks of received bytes in one pass, in C (see L{logger_service.scan}).
"""

from typing import Tuple

from typing_extensions import Buffer

SIMD: int

def scan(data: Buffer, /) -> Tuple[int, int]: ...
def scanBytewise(data: Buffer, /) -> Tuple[int, int]: ...
