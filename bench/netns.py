"""Benchmarks that make WebRTC calls re-run themselves in a network namespace of their own.

It holds only ``lo`` and a veth pair (10.77.0.1 and 10.77.0.2) that connects only to
itself, so aiortc has host candidates to use and nothing leaves the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys

INSIDE = "PIPELINE_BENCH_NETNS"


def inside() -> bool:
    return os.environ.get(INSIDE) == "1"


def reexec_in_namespace(module: str) -> None:
    """Run ``python -m module`` with this process's arguments inside the namespace."""
    setup = (
        "ip link set lo up && ip link add bench0 type veth peer name bench1 && "
        "ip addr add 10.77.0.1/24 dev bench0 && ip addr add 10.77.0.2/24 dev bench1 && "
        "ip link set bench0 up && ip link set bench1 up && "
        f'exec env {INSIDE}=1 "$0" -m {module} "$@"'
    )
    command = ["unshare", "-n", "--", "sh", "-c", setup, sys.executable, *sys.argv[1:]]
    if os.geteuid() != 0:
        command.insert(1, "-r")
    raise SystemExit(subprocess.call(command))
