"""
The framers alone, in-process: nanoseconds per record of C{feed} for each framing, on the same lines.

Usage (from the root of the checkout)::

    python -m benchmarks.framing                      # 1,000,000 lines of each text
    python -m benchmarks.framing --records 100000 --texts zh,latin --chunk 16384

Each framing gets the same lines (200 bytes, made of a text of
L{benchmarks.loadgen.TEXTS}: C{ascii}, C{zh}, C{latin}, C{bom}), framed as
its senders frame them: C{lf} with a LF after each line, C{nul} with a NUL,
C{octet} and C{auto} as RFC 6587 octet-counted frames.  The stream is cut
into chunks of C{--chunk} bytes, as the transport would deliver it, and fed
to a new framer; the best of C{--repeat} passes is reported, with each
framing's time over C{lf}'s.  No sockets, no files.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Dict, List, Optional

from benchmarks.loadgen import TEXTS, lineFor
from logger_service.framing import FRAMERS, LongLines

KINDS = {"lf": "lf", "nul": "nul", "octet": "octet", "auto": "octet"}
"""Each framing, and how its stream is framed (C{auto} reads octet frames)."""


def stream(kind: str, lines: List[bytes]) -> bytes:
    """
    C{lines} framed as C{kind}: C{lf}, C{nul} or C{octet}.
    """
    if kind == "lf":
        return b"".join(line + b"\n" for line in lines)
    if kind == "nul":
        return b"".join(line + b"\x00" for line in lines)
    return b"".join(b"%d %s" % (len(line), line) for line in lines)


def measure(text: str, records: int, chunk: int, repeat: int) -> Dict[str, float]:
    """
    Nanoseconds per record of each framing's C{feed} on C{records} lines of
    C{text}: the best of C{repeat} passes.
    """
    distinct = [lineFor(i % 10, i % 1000, 200, b"", text) for i in range(min(records, 1000))]
    best: Dict[str, float] = {}
    chunks: Dict[str, List[bytes]] = {}
    for kind in set(KINDS.values()):
        one = stream(kind, distinct)
        data = one * (records // len(distinct))
        chunks[kind] = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    expected = len(distinct) * (records // len(distinct))
    for _ in range(repeat):
        for name, kind in KINDS.items():
            framer = FRAMERS[name](65536, LongLines.split)
            feed = framer.feed
            count = 0
            started = time.perf_counter()
            for piece in chunks[kind]:
                count += len(feed(piece))
            took = time.perf_counter() - started
            if count != expected:
                raise AssertionError(f"{name}: {count} records, not {expected}")
            best[name] = min(best.get(name, took), took)
    return {name: took / expected * 1e9 for name, took in best.items()}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.framing", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--records", type=int, default=1000000, help="lines of each text (default: 1,000,000)")
    parser.add_argument("--texts", default=",".join(TEXTS), help="comma-separated: " + ", ".join(TEXTS))
    parser.add_argument("--chunk", type=int, default=65536, help="bytes a chunk (default: 65536)")
    parser.add_argument("--repeat", type=int, default=3, help="passes; the best is reported (default: 3)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    texts = [t for t in args.texts.split(",") if t]
    unknown = [t for t in texts if t not in TEXTS]
    if unknown:
        parser.error(f"unknown texts: {', '.join(unknown)}")
    print(f"{args.records:,} lines of 200 bytes, chunks of {args.chunk:,} bytes, best of {args.repeat}")
    print(
        "| Text | "
        + " | ".join(f"{name} (ns/record)" for name in KINDS)
        + " | "
        + " | ".join(f"{name} ÷ lf" for name in KINDS if name != "lf")
        + " |"
    )
    print("|---|" + "--:|" * (2 * len(KINDS) - 1))
    for text in texts:
        ns = measure(text, args.records, args.chunk, args.repeat)
        cells = [f"{ns[name]:.0f}" for name in KINDS] + [f"{ns[name] / ns['lf']:.2f}" for name in KINDS if name != "lf"]
        print(f"| {text} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
