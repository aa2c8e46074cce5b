"""
The seed's forking server, ported to Python 3: C{socketserver.ForkingMixIn}.

Each connection is handled in a child process that reads lines and appends
each one to the output file with one write (the file is opened with
O_APPEND, so lines from different children never interleave).  As in the
seed, C{TCPServer}'s defaults stand: a listen backlog of 5 and, from
C{ForkingMixIn}, at most 40 children at once (the 41st connection waits
until a child exits).  The seed's "Thank you for connecting" greeting is left
out: this one records instead.

    python socketserver_forking.py --port PORT --output FILE
"""

import argparse
import socketserver

OUTPUT = ""


class Server(socketserver.ForkingMixIn, socketserver.TCPServer):
    allow_reuse_address = True


class Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        addr = self.request.getpeername()
        print("Got connection from", addr, flush=True)
        with open(OUTPUT, "ab", buffering=0) as out:
            for line in self.rfile:
                out.write(line)


def main() -> None:
    global OUTPUT
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    OUTPUT = args.output
    open(OUTPUT, "ab").close()
    server = Server(("127.0.0.1", args.port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
