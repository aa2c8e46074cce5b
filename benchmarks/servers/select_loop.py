"""
The seed's select() server, ported to Python 3.

One loop, C{select.select()} over the listening socket and every client,
C{recv(1024)} from each readable one and C{listen(5)}, as in the seed.  Where
the seed printed each chunk, this one keeps each connection's unfinished
line and appends the complete lines of each chunk to the output file, one
write per chunk.  Like the seed it knows nothing of the C{select()} limit:
a descriptor numbered 1024 or more makes C{select.select()} raise.

    python select_loop.py --port PORT --output FILE
"""

import argparse
import select
import socket
from typing import Dict


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    out = open(args.output, "ab", buffering=0)  # noqa: SIM115 - open for the server's life
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", args.port))
    s.listen(5)
    inputs = [s]
    partial: Dict[socket.socket, bytes] = {}
    while True:
        rs, ws, es = select.select(inputs, [], [])
        for r in rs:
            if r is s:
                c, addr = s.accept()
                print("Got connection from", addr, flush=True)
                inputs.append(c)
                partial[c] = b""
                continue
            try:
                data = r.recv(1024)
                disconnected = not data
            except OSError:
                disconnected = True
            if disconnected:
                print(r.getpeername(), "disconnected", flush=True)
                rest = partial.pop(r)
                if rest:
                    out.write(rest + b"\n")
                inputs.remove(r)
                r.close()
            else:
                data = partial[r] + data
                end = data.rfind(b"\n") + 1
                if end:
                    out.write(data[:end])
                partial[r] = data[end:]


if __name__ == "__main__":
    main()
