"""The agent status hub (CONTRACT §2): sessions' events, live and resumable, over any transport.

- :mod:`.events`     what an agent status event is, validated
- :mod:`.protocol`   client frames parsed and server messages built, no I/O
- :mod:`.bus`        the EventBus Protocol (history, snapshot, live fan-in)
- :mod:`.memory_bus` one process, in memory (the embedded default)
- :mod:`.redis_bus`  a fleet sharing Redis: atomic seq, capped streams, pub/sub
- :mod:`.connection` one client: a bounded send queue and per-room cursors
- :mod:`.hub`        rooms, joins, resume; the members this process holds
- :mod:`.frames`     one client frame on any transport: parse, dispatch, answer
- :mod:`.messaging`  broadcast and sendMessage to every member, remote ones included
- :mod:`.sessions`   pipeline session records and their owners
- :mod:`.factory`    builds the bus, the hub and the sessions from HubSettings
"""
