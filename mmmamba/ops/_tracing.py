"""Make each call of our autograd Functions one node of a ``torch.jit`` trace.

A traced call of an ``autograd.Function`` is recorded as a node
``prim::PythonOp.<Name>``, but the tracer stays on while its ``forward`` runs,
so the aten ops of that forward are recorded too, and those that write in
place survive dead-code elimination. A FLOP counter walking the graph
(mmengine's ``FlopAnalyzer``) would count them, or warn about them, next to
the node's own handle (:mod:`mmmamba.ops.flops`).

So a forward computes under :func:`untraced` and returns its results through
:func:`traced_outputs`: the tracer names each output of a Function by the op
that made it, and one made untraced has none (the tracer would embed it as a
constant, which it refuses once autograd has attached the output to the
graph). Under tracing, each result is copied into a tensor made by a traced
``new_empty`` (which FLOP counters ignore); without a tracer nothing is copied.
"""
from contextlib import contextmanager
from typing import Iterator, Tuple

import torch
from torch import Tensor

__all__ = ['untraced', 'traced_outputs']


@contextmanager
def untraced() -> Iterator[None]:
    """Pause the ``torch.jit`` tracer, if one is running, for the enclosed code."""
    state = torch._C._get_tracing_state()
    if state is None:
        yield
        return
    torch._C._set_tracing_state(None)
    try:
        yield
    finally:
        torch._C._set_tracing_state(state)


def traced_outputs(anchor: Tensor, *results: Tensor) -> Tuple[Tensor, ...]:
    """``results`` (computed :func:`untraced`) as tensors the tracer knows.

    Args:
        anchor (Tensor): an input of the Function (traced), to allocate from.
        *results (Tensor): the Function's outputs.

    Returns:
        tuple[Tensor, ...]: ``results`` themselves when not tracing; else copies.
    """
    if not torch._C._is_tracing():
        return results
    copies = []
    for result in results:
        # (recorded as aten::new_empty on the traced anchor)
        copy = anchor.new_empty(result.shape, dtype=result.dtype)
        with untraced():
            copy.copy_(result)
        copies.append(copy)
    return tuple(copies)
