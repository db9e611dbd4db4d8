"""numpy's BLAS on one thread, in the process that holds the calls.

numpy's OpenBLAS starts a thread per core and, after each matrix product, keeps them
spinning for a while in case another one follows. The voice loop's products are small
(the smart-turn features' 800 x 201 by 201 x 80 mel projection: 0.2 ms on one thread),
so the spinning is nearly all their cost: measured on this 2-core machine, the features
took 7 to 19 ms of CPU with the default threads and 4 ms with one, and a whole
smart-turn decision 110 to 155 ms against 53 to 73 ms (docs/benchmarks.md, round 4).
The spinning threads are native, so py-spy does not show them without ``--native``.
Concurrency here comes from the calls, not from splitting one product across cores;
onnxruntime and CTranslate2 (whisper) keep their own thread settings.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits


def one_blas_thread() -> None:
    """Limit every BLAS library loaded so far (numpy's OpenBLAS) to one thread, for the
    rest of the process."""
    threadpool_limits(limits=1, user_api="blas")
