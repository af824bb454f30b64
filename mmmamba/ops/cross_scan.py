"""Scan orders for 2-D maps (VMamba) and 1-D sequences (Vim), pure PyTorch.

``cross_scan`` unrolls a map into four sequences and ``cross_merge`` sums four
sequences back into raster order. Each is the adjoint (transpose) of the
other, so each one's backward is the other one; both run on any device and
support double backward. Each is one ``prim::PythonOp`` node in a ``torch.jit``
trace, which :mod:`mmmamba.ops.flops` counts as zero FLOPs: they move data and
add element-wise, which mmengine's counter leaves out for every op.
"""
from typing import Optional

import torch
from torch import Tensor

from ._tracing import traced_outputs, untraced

__all__ = ['cross_scan', 'cross_merge', 'bidirectional_scan', 'bidirectional_merge']


def _cross_scan(x: Tensor) -> Tensor:
    B, C, H, W = x.shape
    if x.is_contiguous(memory_format=torch.channels_last) and C > 1:
        # channels-last x: keep channels innermost, (B, H*W, 4, C) memory (sequence-major, the
        # order the scan cuts its blocks in)
        out = x.new_empty(B, H * W, 4, C).permute(0, 2, 3, 1)
    else:
        out = x.new_empty(B, 4, C, H * W)
    out[:, 0] = x.flatten(2)  # row-major: (B, C, H, W) -> (B, C, H*W)
    out[:, 1] = x.transpose(2, 3).flatten(2)  # column-major: (B, C, W, H) -> (B, C, W*H)
    out[:, 2:] = out[:, :2].flip(-1)  # both reversed
    return out


def _cross_merge(y: Tensor, H: int, W: int) -> Tensor:
    B, _, C, L = y.shape
    rows = y[:, 0] + y[:, 2].flip(-1)  # (B, C, H*W), raster order
    cols = y[:, 1] + y[:, 3].flip(-1)  # (B, C, W*H), column-major order
    # column-major back to raster: (B, C, W, H) -> (B, C, H, W)
    rows.view(B, C, H, W).add_(cols.view(B, C, W, H).transpose(2, 3))
    return rows


def _bidirectional_scan(x: Tensor) -> Tensor:
    B, C, L = x.shape
    if x.stride(1) == 1 and C > 1:
        # sequence-major x (a transposed (B, L, C) view): keep that order, (B, L, 2, C) memory
        out = x.new_empty(B, L, 2, C).permute(0, 2, 3, 1)
    else:
        out = x.new_empty(B, 2, C, L)
    out[:, 0] = x
    out[:, 1] = x.flip(-1)
    return out


class _CrossScan(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.hw = x.shape[-2:]
        with untraced():  # one node in a torch.jit trace (see ._tracing)
            out = _cross_scan(x)
        return traced_outputs(x, out)[0]

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        H, W = ctx.hw
        return _CrossMerge.apply(grad, H, W).unflatten(-1, (H, W))


class _CrossMerge(torch.autograd.Function):

    @staticmethod
    def forward(ctx, y: Tensor, H: int, W: int) -> Tensor:
        ctx.hw = (H, W)
        with untraced():
            out = _cross_merge(y, H, W)
        return traced_outputs(y, out)[0]

    @staticmethod
    def backward(ctx, grad: Tensor):
        H, W = ctx.hw
        return _CrossScan.apply(grad.unflatten(-1, (H, W))), None, None


class _BidirectionalScan(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        with untraced():
            out = _bidirectional_scan(x)
        return traced_outputs(x, out)[0]

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return _BidirectionalMerge.apply(grad)


class _BidirectionalMerge(torch.autograd.Function):

    @staticmethod
    def forward(ctx, y: Tensor) -> Tensor:
        with untraced():
            out = y[:, 0] + y[:, 1].flip(-1)  # (B, 2, C, L) -> (B, C, L)
        return traced_outputs(y, out)[0]

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return _BidirectionalScan.apply(grad)


def cross_scan(x: Tensor) -> Tensor:
    """Unroll a map in VMamba's four scan orders.

    Args:
        x (Tensor): ``(B, C, H, W)``.

    Returns:
        Tensor: ``(B, 4, C, H*W)``; along dim 1: row-major (raster),
        column-major, reversed row-major, reversed column-major. For a channels-last ``x``
        it is sequence-major (``(B, H*W, 4, C)`` in memory), otherwise contiguous.
    """
    if x.dim() != 4:
        raise ValueError(f'cross_scan expects (B, C, H, W), got {tuple(x.shape)}')
    return _CrossScan.apply(x)


def cross_merge(y: Tensor, H: Optional[int] = None, W: Optional[int] = None) -> Tensor:
    """Sum four scan-order sequences back into raster order (adjoint of :func:`cross_scan`).

    Args:
        y (Tensor): ``(B, 4, C, H, W)``, or ``(B, 4, C, L)`` with ``H`` and
            ``W`` given (``L = H * W``). Sequence ``k`` is in the ``k``-th order
            of :func:`cross_scan`; a 5-D ``y`` is only that sequence reshaped.
        H (int, optional): map height, needed for a 4-D ``y``.
        W (int, optional): map width, needed for a 4-D ``y``.

    Returns:
        Tensor: ``(B, C, H*W)`` in raster order; ``cross_merge(cross_scan(x))``
        is ``4 * x.flatten(2)``.
    """
    if y.dim() == 5:
        if H is not None and (H, W) != tuple(y.shape[-2:]):
            raise ValueError(f'H, W = {H, W} disagree with y of shape {tuple(y.shape)}')
        H, W = y.shape[-2:]
        y = y.flatten(3)  # (B, 4, C, H, W) -> (B, 4, C, H*W)
    elif y.dim() != 4 or H is None or W is None or H * W != y.shape[-1]:
        raise ValueError(f'cross_merge expects (B, 4, C, H, W), or (B, 4, C, L) with H * W = L; '
                         f'got {tuple(y.shape)} with H={H}, W={W}')
    if y.shape[1] != 4:
        raise ValueError(f'cross_merge expects 4 directions in dim 1, got {y.shape[1]}')
    return _CrossMerge.apply(y, int(H), int(W))


def bidirectional_scan(x: Tensor) -> Tensor:
    """Vim's forward and backward orders of a sequence.

    Args:
        x (Tensor): ``(B, C, L)``.

    Returns:
        Tensor: ``(B, 2, C, L)``: ``x`` and ``x`` reversed along ``L``, in ``x``'s memory
        order (sequence-major, ``(B, L, 2, C)`` in memory, for a sequence-major ``x``).
    """
    if x.dim() != 3:
        raise ValueError(f'bidirectional_scan expects (B, C, L), got {tuple(x.shape)}')
    return _BidirectionalScan.apply(x)


def bidirectional_merge(y: Tensor) -> Tensor:
    """Sum the two directions back into forward order (adjoint of :func:`bidirectional_scan`).

    Args:
        y (Tensor): ``(B, 2, C, L)``; ``y[:, 1]`` is in reversed order.

    Returns:
        Tensor: ``(B, C, L)``, ``y[:, 0] + y[:, 1].flip(-1)``.
    """
    if y.dim() != 4 or y.shape[1] != 2:
        raise ValueError(f'bidirectional_merge expects (B, 2, C, L), got {tuple(y.shape)}')
    return _BidirectionalMerge.apply(y)
