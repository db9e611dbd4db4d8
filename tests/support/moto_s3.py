"""moto's S3 as a real HTTP server on a loopback port (the pipeline's S3 publisher's peer)."""

from __future__ import annotations

from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from tests.support.ports import free_port

REGION = "us-east-1"


class MotoS3:
    def __init__(self) -> None:
        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def client(self) -> Any:
        return boto3.client("s3", region_name=REGION, endpoint_url=self.endpoint)
