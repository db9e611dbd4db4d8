"""A real coturn (Debian's ``turnserver``) for tests, with the TURN REST API secret.

Started with ``allow-loopback-peers`` so calls inside a loopback-only namespace can relay
to each other; everything else as in production (``use-auth-secret``).
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

from tests.support.ports import free_port

SECRET = "coturn-test-secret-0123456789abcdef"
REALM = "pipeline.test"


def free_udp_port() -> int:
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


class Coturn:
    def __init__(
        self,
        workdir: Path,
        *,
        secret: str = SECRET,
        config: Path | None = None,
        relay_ports: int = 20,
    ) -> None:
        binary = shutil.which("turnserver")
        if binary is None:
            raise RuntimeError(
                "coturn is not installed: apt-get install coturn (scripts/test does)"
            )
        self.binary = binary
        self.workdir = workdir
        self.secret = secret
        self.config = config  # a turnserver.conf to load under the test's own overrides
        self.port = free_udp_port()
        # A window of relay ports of its own; every allocation holds one until it expires,
        # so a module whose calls die without releasing theirs needs a wider one.
        self.relay_ports = relay_ports
        self.min_port = 50_000 + (self.port % (10_000 // relay_ports)) * relay_ports
        self.log = workdir / "coturn.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            *(["-c", str(self.config)] if self.config else ["-n"]),
            "--listening-ip=127.0.0.1",
            f"--listening-port={self.port}",
            "--relay-ip=127.0.0.1",
            f"--min-port={self.min_port}",
            f"--max-port={self.min_port + self.relay_ports - 1}",
            "--use-auth-secret",
            f"--static-auth-secret={self.secret}",
            f"--realm={REALM}",
            "--allow-loopback-peers",
            "--fingerprint",
            "--no-cli",
            *([] if self.config else ["--no-tls", "--no-dtls"]),
            f"--tls-listening-port={free_port()}",
            f"--alt-tls-listening-port={free_port()}",
            "--no-multicast-peers",
            f"--pidfile={self.workdir / 'turnserver.pid'}",
            f"--log-file={self.log}",
            "--simple-log",
            "--verbose",
        ]
        with open(self.workdir / "coturn.stdout", "wb") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"coturn exited: {self.tail()}")
            if self._answers_stun_over_udp():
                return
            time.sleep(0.05)
        raise RuntimeError(f"coturn did not start: {self.tail()}")

    def _answers_stun_over_udp(self) -> bool:
        """A STUN Binding request over UDP: coturn's TCP listener comes up before its UDP one,
        and an allocation sent too early is refused by ICMP and gathers nothing."""
        request = struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, os.urandom(12))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.settimeout(0.2)
            try:
                probe.sendto(request, ("127.0.0.1", self.port))
                reply, _ = probe.recvfrom(2048)
            except OSError:  # refused (not bound yet) or timed out
                return False
        return reply[:2] == b"\x01\x01" and reply[8:20] == request[8:20]

    def tail(self, lines: int = 30) -> str:
        text = ""
        for path in (self.log, self.workdir / "coturn.stdout"):
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return text

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
