"""
The seed's threading server, ported to Python 3: C{socketserver.ThreadingMixIn}.

One thread per connection reads lines and appends each one to the shared
output file with one unbuffered write (so lines never interleave).  As in the
seed, C{TCPServer}'s listen backlog of 5 stands.  The seed's "Thank you for
connecting" greeting is left out: this one records instead.

    python socketserver_threading.py --port PORT --output FILE
"""

import argparse
import socketserver
from typing import BinaryIO, Optional

OUTPUT: Optional[BinaryIO] = None


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True


class Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        addr = self.request.getpeername()
        print("Got connection from", addr, flush=True)
        out = OUTPUT
        assert out is not None
        for line in self.rfile:
            out.write(line)


def main() -> None:
    global OUTPUT
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    OUTPUT = open(args.output, "ab", buffering=0)  # noqa: SIM115 - open for the server's life
    server = Server(("127.0.0.1", args.port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
