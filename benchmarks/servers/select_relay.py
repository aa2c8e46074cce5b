"""
A select() chat relay: the seed's select() loop, relaying instead of printing.

Each chunk received is cut at its last LF; the complete lines are sent on to
every other client (not back to the sender).  Sockets are non-blocking and
each client has an output buffer, so a slow reader delays no one else;
C{select()} watches for writability only while a buffer is not empty.  Like
the seed it uses C{select.select()}, with its limit of 1024 descriptors; unlike
it, C{listen(128)}: with the seed's backlog of 5, a hundred clients arriving
at once are not all accepted (see the ingest-many results).

    python select_relay.py --port PORT [--output IGNORED]
"""

import argparse
import select
import socket
from typing import Dict


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--output", help="ignored: lines are relayed, not recorded")
    args = parser.parse_args()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", args.port))
    s.listen(128)
    clients: Dict[socket.socket, bytearray] = {}
    partial: Dict[socket.socket, bytes] = {}

    def drop(c: socket.socket) -> None:
        clients.pop(c, None)
        partial.pop(c, None)
        c.close()

    while True:
        waiting = [c for c, buf in clients.items() if buf]
        rs, ws, _ = select.select([s, *clients], waiting, [])
        for w in ws:
            buf = clients.get(w)
            if not buf:
                continue
            try:
                n = w.send(buf)
            except BlockingIOError:
                continue
            except OSError:
                drop(w)
                continue
            del buf[:n]
        for r in rs:
            if r is s:
                c, addr = s.accept()
                print("Got connection from", addr, flush=True)
                c.setblocking(False)
                clients[c] = bytearray()
                partial[c] = b""
                continue
            if r not in clients:
                continue
            try:
                data = r.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                drop(r)
                continue
            data = partial[r] + data
            end = data.rfind(b"\n") + 1
            partial[r] = data[end:]
            if end:
                lines = data[:end]
                for c, buf in clients.items():
                    if c is not r:
                        buf += lines


if __name__ == "__main__":
    main()
