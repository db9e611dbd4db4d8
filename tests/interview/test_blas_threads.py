"""The process that holds the calls runs numpy's matrix products on one thread."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from backend.app.settings import load_settings
from interview_service.voice.factory import build_stack


@pytest.fixture
def blas_threads_restored() -> Iterator[None]:
    limits = threadpool_limits(limits=None)  # remembers the threads of every library
    try:
        yield
    finally:
        limits.restore_original_limits()


def test_building_the_voice_stack_leaves_blas_on_one_thread(blas_threads_restored: None) -> None:
    np.ones((2, 2)) @ np.ones((2, 2))  # numpy's BLAS is loaded
    threadpool_limits(limits=2, user_api="blas")  # what a 2-core machine starts with
    build_stack(load_settings(openai_api_key="sk-test"))
    blas = [library for library in threadpool_info() if library["user_api"] == "blas"]
    assert blas, "numpy links a BLAS"
    assert all(library["num_threads"] == 1 for library in blas)
