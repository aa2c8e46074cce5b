"""
The seed's Twisted C{SimpleLogger}, the C{LineReceiver} one, in Python 3.

A C{LineReceiver} with delimiter C{b"\\n"} whose C{lineReceived} writes the
line to the output file (unbuffered: one write per line) where the seed
printed it; C{reactor.listenTCP} with its default backlog of 50.

    python twisted_simplelogger.py --port PORT --output FILE
"""

import argparse

from twisted.internet import reactor
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver


class SimpleLogger(LineReceiver):
    delimiter = b"\n"

    def connectionMade(self) -> None:
        print("Got connection from", self.transport.client)

    def connectionLost(self, reason: object = None) -> None:
        print(self.transport.client, "disconnected")

    def lineReceived(self, line: bytes) -> None:
        self.factory.output.write(line + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    factory = Factory()
    factory.protocol = SimpleLogger
    factory.output = open(args.output, "ab", buffering=0)  # noqa: SIM115 - open for the server's life
    reactor.listenTCP(args.port, factory, interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main()
