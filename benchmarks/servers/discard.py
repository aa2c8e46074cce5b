"""
Discard: read everything and throw it away, as fast as one process can.

The load generator is measured against this server alone, to show how fast
it can send when the server costs (almost) nothing.

    python discard.py --port PORT [--output IGNORED]
"""

import argparse
import selectors
import signal
import socket
import sys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--output", help="ignored: nothing is recorded")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(4096)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    buffer = bytearray(1 << 20)
    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            if sock is listener:
                while True:
                    try:
                        conn, _ = listener.accept()
                    except BlockingIOError:
                        break
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ)
                continue
            assert isinstance(sock, socket.socket)
            try:
                n = sock.recv_into(buffer)
            except BlockingIOError:
                continue
            except OSError:
                n = 0
            if not n:
                sel.unregister(sock)
                sock.close()


if __name__ == "__main__":
    main()
