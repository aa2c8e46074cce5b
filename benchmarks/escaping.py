"""
The record formats alone, in-process: nanoseconds per line of batches that need escaping beside clean ones.

Usage (from the root of the checkout)::

    python -m benchmarks.escaping                 # 200-byte and 64 KiB lines
    python -m benchmarks.escaping --sizes 200 --texts zh,latin

For each text of L{benchmarks.loadgen.TEXTS} (C{ascii}, C{zh}, C{latin},
C{bom}) and each line size, a batch of lines of that text (as many as a
64 KiB read holds, at least 2) is formatted as text and as JSON records,
clean, and then with one byte or character to escape at the end of every
line: a control character, a backslash, a double quote, a byte that is not
UTF-8 (0xFF), a C1 control (U+0085).  The time per line is the best of
C{--repeat} passes; each bad case is shown as its time over the clean
one's.  The service's allocator settings
(L{logger_service.allocator.keepLargeBuffers}) are applied first, as the
service applies them.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Dict, List, Optional

from benchmarks.loadgen import TEXTS
from logger_service.allocator import keepLargeBuffers
from logger_service.records import FORMATTERS, RecordContext

BAD = {"control": b"\x01", "backslash": b"\\", "quote": b'"', "0xFF": b"\xff", "C1": "\x85".encode()}
"""What each bad line ends with, by name."""

CONTEXT = RecordContext("127.0.0.1:40000", 1)
TIMESTAMP = "2026-12-03T15:00:00.000000Z"


def line(text: str, size: int) -> bytes:
    """
    C{size} bytes of C{text}: its header, if it has one (C{bom}), then its
    filler repeated, cut at a character.
    """
    header, filler = TEXTS[text]
    encoded = header + (filler * (size // len(filler.encode()) + 2)).encode()
    return encoded[:size].decode("utf-8", "ignore").encode().ljust(size, b".")


def measure(text: str, size: int, repeat: int) -> Dict[str, Dict[str, float]]:
    """
    Nanoseconds per line for each format: clean, and each of L{BAD}.
    """
    count = max(2, 65536 // size)
    cases = {"clean": [line(text, size)] * count}
    for name, bad in BAD.items():
        cases[name] = [line(text, size - len(bad)) + bad] * count
    passes = max(1, 2_000_000 // (size * count))
    result: Dict[str, Dict[str, float]] = {}
    for format, formatter in FORMATTERS.items():
        times: Dict[str, float] = {}
        for _ in range(repeat):
            for name, lines in cases.items():
                started = time.perf_counter()
                for _ in range(passes):
                    formatter(TIMESTAMP, CONTEXT, lines)
                took = (time.perf_counter() - started) / passes / count * 1e9
                times[name] = min(times.get(name, took), took)
        result[format] = times
    return result


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.escaping", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--texts", default=",".join(TEXTS), help="comma-separated: " + ", ".join(TEXTS))
    parser.add_argument("--sizes", default="200,65536", help="line sizes in bytes (default: 200,65536)")
    parser.add_argument("--repeat", type=int, default=5, help="passes; the best is reported (default: 5)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    texts = [t for t in args.texts.split(",") if t]
    unknown = [t for t in texts if t not in TEXTS]
    if unknown:
        parser.error(f"unknown texts: {', '.join(unknown)}")
    keepLargeBuffers()
    print(f"best of {args.repeat}; each bad line's time over the clean line's")
    print("| Text | Line | Format | clean (ns/line) | " + " | ".join(f"{name} ÷ clean" for name in BAD) + " |")
    print("|---|--:|---|--:|" + "--:|" * len(BAD))
    worst = 0.0
    for size in (int(s) for s in args.sizes.split(",")):
        for text in texts:
            for format, times in measure(text, size, args.repeat).items():
                ratios = [times[name] / times["clean"] for name in BAD]
                worst = max(worst, *ratios)
                cells = [f"{times['clean']:,.0f}"] + [f"{r:.2f}" for r in ratios]
                print(f"| {text} | {size:,} | {format} | " + " | ".join(cells) + " |", flush=True)
    print(f"worst: {worst:.2f}x a clean line")
    return 0


if __name__ == "__main__":
    sys.exit(main())
