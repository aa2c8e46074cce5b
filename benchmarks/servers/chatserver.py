"""
Twisted's classic chat example, docs/core/examples/chatserver.py, as it is.

"The most basic chat protocol possible": a C{LineReceiver} (default
delimiter, CRLF) that keeps every client in a list and writes each line it
receives, followed by LF, to every client in that list, the sender included.
It prints a line for each client and each line received, which under twistd
go to twistd's log.  Two changes only: the port (the example's is 1025) comes
from the environment variable C{CHATSERVER_PORT}, and it listens on 127.0.0.1
instead of every interface.

    CHATSERVER_PORT=PORT twistd -n -y chatserver.py
"""

import os

from twisted.application import internet, service
from twisted.internet import protocol
from twisted.protocols import basic


class MyChat(basic.LineReceiver):
    def connectionMade(self):
        print("Got new client!")
        self.factory.clients.append(self)

    def connectionLost(self, reason):
        print("Lost a client!")
        self.factory.clients.remove(self)

    def lineReceived(self, line):
        print("received", repr(line))
        for c in self.factory.clients:
            c.message(line)

    def message(self, message):
        self.transport.write(message + b"\n")


factory = protocol.ServerFactory()
factory.protocol = MyChat
factory.clients = []

application = service.Application("chatserver")
internet.TCPServer(int(os.environ["CHATSERVER_PORT"]), factory, interface="127.0.0.1").setServiceParent(application)
