"""AWS API Gateway in front of the status hub (CONTRACT 2.3): one protocol, two transports.

- :mod:`.apigw_sender`  the only module that talks to ``@connections`` (boto3)
- :mod:`.registry`      connections, their rooms and cursors, in the shared store
- :mod:`.bridge`        ``POST /ws`` events: secret, CONNECT, MESSAGE, DISCONNECT
- :mod:`.transport`     an API Gateway client as a hub transport (``send_text``/``close``)
- :mod:`.fanout`        each room's events to its API Gateway members, once, fleet-wide
- :mod:`.keepalive`     posts before API Gateway's 10-minute idle timeout
- :mod:`.factory`       builds all of it for the lifespan (off without a secret)
- :mod:`.settings`      GatewaySettings (APIGW_*, AWS_REGION)

- :mod:`.hub_frames`    API Gateway connections as hub members (the hub's one dispatch)
- :mod:`.hub_feed`      the hub's bus as each room's event feed for the fan-out

The status hub (:mod:`backend.hub`) owns the protocol, sessions and history; this
package is its second transport.
"""
