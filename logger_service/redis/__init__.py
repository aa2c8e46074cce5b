"""
Chat rooms shared by every linelogger on one Redis (C{--redis URL}): the package, one module a job.

Every node started with the same Redis and C{--redis-prefix} serves the
same rooms: a room is a Redis stream that every node reads, nicknames and
members are Redis keys and hashes kept alive by each node's heartbeat, and
a node keeps serving its own members while Redis is out of reach.  Nothing
here blocks the reactor: txredisapi speaks to Redis from it.

The modules, each importing only those above it:

    - L{logger_service.redis.connection}: the connections, reconnecting
      with backoff, and whether Redis answers (L{RedisLink});
    - L{logger_service.redis.node}: what the parts of a node share: its
      id, link, own members (by id) and chat state (L{Node});
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
