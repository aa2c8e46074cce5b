"""
Chat rooms shared by every linelogger on one Redis (C{--redis URL}): the package, one module a job.

Each room is a Redis stream (C{PREFIX:room:#name}, trimmed to about
C{max(20000, 10 * --history)} entries): a node publishes what its members
say with one script call per room per reactor turn, and every node
delivers a room to its own members by reading the stream (C{XREAD BLOCK}
on a connection of its own), so every node shows a room in the stream's
order.  A node remembers the last entry it delivered per room and resumes
from there after Redis comes back.  History is the stream's tail, read
when a node's first member joins a room.

Nicknames are keys (C{PREFIX:nick:NAME}, C{SET NX}) that live 15 seconds
unless their node's heartbeat (every 3 seconds) renews them.  A node that
misses its heartbeats for 9 seconds is reaped by the next heartbeat of any
other node: its members leave their rooms (with a "left" line) and their
nicknames are freed, at most 15 seconds after the node died.

If Redis cannot be reached (at start or later), the node keeps serving its
own members, logs one line per episode and reconnects (after 0.5 seconds,
then e times longer each try, at most every 5 seconds); lines said
meanwhile wait in a bounded queue and are published on reconnection;
beyond it the sender is told that its line was not relayed.

Nothing here blocks the reactor: txredisapi speaks to Redis from it.

The modules, each importing only those above it:

    - L{logger_service.redis.connection}: the connections, reconnecting
      with backoff, and whether Redis answers (L{RedisLink});
    - L{logger_service.redis.members}: this node's own members, by id;
    - L{logger_service.redis.streams}: room streams: publishing, reading
      from the last delivered entry, history (L{RoomStreams});
    - L{logger_service.redis.presence}: nicknames, heartbeats, and the
      members of dead nodes leaving (L{Presence});
    - L{logger_service.redis.state}: the chat state of a node
      (L{ClusterChatState});
    - L{logger_service.redis.broker}: L{RedisBroker}, the L{IBroker}
      composing them.

Importing this package imports nothing else: txredisapi is needed only by
the modules.
"""
