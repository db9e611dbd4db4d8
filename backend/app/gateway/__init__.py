"""AWS API Gateway in front of the status hub (CONTRACT 2.3): one protocol, two transports.

- :mod:`.apigw_sender`  the only module that talks to ``@connections`` (boto3)
- :mod:`.registry`      connections, their rooms and cursors, in the shared store
- :mod:`.bridge`        ``POST /ws`` events: secret, CONNECT, MESSAGE, DISCONNECT
- :mod:`.transport`     an API Gateway client as a hub transport (``send_text``/``close``)
- :mod:`.fanout`        each room's events to its API Gateway members, once, fleet-wide
- :mod:`.keepalive`     posts before API Gateway's 10-minute idle timeout
- :mod:`.component`     builds all of it for the lifespan (off without a secret)
- :mod:`.interim_protocol` stands in for the hub's protocol core until it is merged

Wiring the hub in: pass ``open_gateway`` the hub's frame handler (a
:class:`.bridge.FrameHandler`: ``greet`` posts ``connected`` and the snapshot of the
session named at CONNECT; ``handle_frame`` runs one client frame and, on ``joinRoom`` or
``resume``, posts the snapshot/replay and then calls ``client.join(room, last_seq)`` so
the fan-out continues after it), a :class:`.fanout.RoomFeed` over the hub's bus and
history, and the pipeline's :class:`.bridge.RoomAccess`.
"""
