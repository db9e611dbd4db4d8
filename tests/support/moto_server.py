"""A moto server in a process of its own, for tests that drive AWS APIs over HTTP.

Unlike :mod:`tests.support.moto_apigw` (a thread in the test process, reading moto's
backends directly), this keeps moto's own warnings and state out of the test process:
CloudFormation stacks are created through boto3 exactly as against AWS.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import boto3
import httpx

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


class MotoServer:
    def __init__(
        self, log: IO[bytes] | None = None, *, cloudformation_novalue: bool = True
    ) -> None:
        # True: tests.support.moto_launch gives moto CloudFormation's AWS::NoValue
        # semantics in lists (see there); False: moto exactly as released.
        self.cloudformation_novalue = cloudformation_novalue
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log = log if log is not None else subprocess.DEVNULL

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        module = "tests.support.moto_launch" if self.cloudformation_novalue else "moto.server"
        args = [sys.executable, "-m", module, "-H", "127.0.0.1", "-p", str(self.port)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self._log, cwd=ROOT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}")
            try:
                httpx.get(f"{self.endpoint}/moto-api/", timeout=1)
            except httpx.TransportError:
                time.sleep(0.1)
            else:
                return
        raise RuntimeError(f"moto server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
