"""Headless Chromium driven over the DevTools protocol (no extra dependency).

Launched with a fake microphone that plays a WAV file, so a page's getUserMedia gets
real speech; tests read page state with :meth:`Chromium.evaluate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import websockets


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("Chromium is not installed: apt-get install chromium")


class Chromium:
    def __init__(self, workdir: Path, *, fake_audio: Path) -> None:
        self.workdir = workdir
        self.fake_audio = fake_audio
        self.process: subprocess.Popen[bytes] | None = None
        self._socket: Any = None
        self._ids = itertools.count(1)

    async def open(self, url: str) -> None:
        profile = self.workdir / "profile"
        profile.mkdir(parents=True, exist_ok=True)
        args = [
            chromium_binary(),
            "--headless=new",
            "--no-sandbox",
            "--disable-background-networking",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-audio-capture={self.fake_audio}",
            "--allow-loopback-in-peer-connection",
            "--autoplay-policy=no-user-gesture-required",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            url,
        ]
        log = open(self.workdir / "chromium.log", "wb")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Chromium did not start: {self.log_tail()}")
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with httpx.AsyncClient() as http:
            while True:
                targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("Chromium opened no page")
                await asyncio.sleep(0.1)
        self._socket = await websockets.connect(pages[0]["webSocketDebuggerUrl"], max_size=None)

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        message_id = next(self._ids)
        await self._socket.send(
            json.dumps(
                {
                    "id": message_id,
                    "method": "Runtime.evaluate",
                    "params": {"expression": expression, "returnByValue": True},
                }
            )
        )
        while True:
            reply = json.loads(await self._socket.recv())
            if reply.get("id") == message_id:
                result = reply.get("result", {}).get("result", {})
                return result.get("value")

    def log_tail(self, lines: int = 40) -> str:
        path = self.workdir / "chromium.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    async def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
