#!/bin/sh
# Runs a command inside a network namespace of its own (clients/typescript/README.md):
# only `lo` and a veth pair (pb0 10.77.1.1/24, its peer pb1 with no address) that
# connects only to itself, so the service's aiortc peer and Chromium gather a host
# candidate (10.77.1.1) that never leaves the namespace, and nothing can reach another
# machine, nor this machine's own services (no Redis on 6379: the tests start their own).
# Needs root, or unprivileged user namespaces (then `unshare -r -n`).
# Usage: scripts/netns.sh COMMAND [ARGS...]
set -eu
if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi
flags="-n"
[ "$(id -u)" -eq 0 ] || flags="-r -n"
# shellcheck disable=SC2016,SC2086 # the inner script expands its own; flags are two words
exec unshare $flags -- sh -c '
  set -e
  ip link set lo up
  ip link add pb0 type veth peer name pb1
  # no IPv6 link-local addresses: one candidate address (10.77.1.1) is enough
  for link in pb0 pb1; do
    echo 1 >"/proc/sys/net/ipv6/conf/$link/disable_ipv6" 2>/dev/null || true
  done
  ip addr add 10.77.1.1/24 dev pb0
  ip link set pb0 up
  ip link set pb1 up
  export PIPELINE_NETNS=1
  exec "$@"
' netns "$@"
