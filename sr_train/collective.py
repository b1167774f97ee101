"""What the data-parallel processes of one training run do together (one process: nothing).
All of them call these at the same points of the loop in `sr_train.fit`."""

from __future__ import annotations

import time

import paddle

from srdata.stopping import StopRequest


def agreed_stop(request: StopRequest, world: int) -> int | None:
    """The signal that makes this step the last one, the same in every data-parallel process (each may
    have got it at a different step, or not at all); None: carry on."""
    if world == 1:
        return request.signum
    flag = paddle.to_tensor([request.signum or 0], dtype="int64")
    paddle.distributed.all_reduce(flag, op=paddle.distributed.ReduceOp.MAX)
    return int(flag.item()) or None


def mean_over_processes(loss, world: int) -> float:
    """The loss as a float, averaged over data-parallel processes (all stop together on NaN)."""
    if world == 1:
        return float(loss)
    total = loss.detach().clone()
    paddle.distributed.all_reduce(total)
    return float(total) / world


def barrier(world: int, name: str) -> None:
    """Every process waits here until all have arrived (rank 0 validates and writes meanwhile).

    It polls the launcher's key-value store rather than calling paddle.distributed.barrier: on CPU
    that is a gloo collective with a fixed timeout of about 30 s, which a validation on large images
    exceeds (the other ranks then died with a gloo TIMEOUT). If a process dies instead of arriving,
    its launcher stops the others (sr_train.launch, paddle.distributed.launch).
    """
    if world == 1:
        return
    store = paddle.base.core.create_or_get_global_tcp_store()
    key = f"srkit/barrier/{name}"
    store.add(key, 1)
    while store.add(key, 0) < world:
        time.sleep(0.02)
