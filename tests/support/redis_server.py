"""A private redis-server on a free port, for tests that stop and restart Redis.

The shared Redis on 6379 is never stopped by a test; tests that need an outage run
their own server here, and only here: SHUTDOWN, kill -9, CLIENT KILL, DEBUG SLEEP,
CONFIG SET and SIGSTOP are methods of this class.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from tests.support.ports import free_port


class RedisServer:
    def __init__(self, workdir: Path, *, persistent: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (scripts/test installs it)")
        self.binary = binary
        self.workdir = workdir
        self.persistent = persistent
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.workdir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.persistent else "no",
            "--appendfsync",
            "always",
            "--enable-debug-command",
            "local",  # DEBUG SLEEP: the stalled-Redis fault
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            while time.monotonic() < deadline:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    # -- faults --------------------------------------------------------------------------
    def command(self, *args: Any, timeout_s: float = 5.0) -> Any:
        """One command on a fresh connection of its own."""
        client = redis.Redis(port=self.port, socket_timeout=timeout_s)
        try:
            return client.execute_command(*args)
        finally:
            client.close()

    def shutdown(self, *, save: bool = True) -> None:
        """``redis-cli SHUTDOWN`` (the AOF is flushed when persistent), or ``SHUTDOWN
        NOSAVE``: without persistence, the data is gone."""
        assert self.process is not None
        with contextlib.suppress(redis.ConnectionError):  # it closes as it exits
            self.command(*(("SHUTDOWN",) if save else ("SHUTDOWN", "NOSAVE")))
        self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        """``kill -9``: no shutdown, no goodbye to the clients."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill_clients(self, kind: str) -> int:
        """``CLIENT KILL TYPE normal|pubsub``: how many connections went."""
        return int(self.command("CLIENT", "KILL", "TYPE", kind))
