"""Numerical rank of token-mixing matrices and of their blocks (the chunked layout of Yang et
al.'s Figure 2: the matrix cut into ``c x c`` blocks, the blocks on the diagonal and the blocks
below them)."""
from typing import Dict

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['numerical_rank', 'block_ranks', 'rank_summary']


def numerical_rank(matrix: Tensor, rtol: float = 1e-3) -> Tensor:
    """Number of singular values above ``rtol`` times the largest one.

    Args:
        matrix (Tensor): ``(..., m, n)``.
        rtol (float): Relative tolerance, ``0 <= rtol < 1``. Defaults to 1e-3.

    Returns:
        Tensor: ``(...)`` int64 ranks; an all-zero matrix has rank 0.
    """
    if matrix.dim() < 2:
        raise ValueError(f'matrix must be (..., m, n), got shape {tuple(matrix.shape)}')
    if not 0 <= rtol < 1:
        raise ValueError(f'rtol must be in [0, 1), got {rtol}')
    sv = torch.linalg.svdvals(matrix.double())  # (..., min(m, n)), descending
    top = sv[..., :1]
    return ((sv > rtol * top) & (top > 0)).sum(-1)


def block_ranks(matrix: Tensor, chunk_size: int, rtol: float = 1e-3) -> Dict[str, Tensor]:
    """Ranks of the ``chunk_size x chunk_size`` blocks of ``(..., L, L)`` matrices.

    The last block row/column is shorter when ``chunk_size`` does not divide ``L`` (zero
    padding, which leaves ranks unchanged).

    Args:
        matrix (Tensor): ``(..., L, L)``.
        chunk_size (int): Block side c.
        rtol (float): See :func:`numerical_rank`. Defaults to 1e-3.

    Returns:
        dict[str, Tensor]: ``'diagonal'``: ``(..., nb)`` ranks of the blocks ``(i, i)``;
        ``'below'``: ``(..., nb * (nb - 1) / 2)`` ranks of the blocks ``(i, j)``, ``i > j``,
        in row-major order of ``(i, j)``.
    """
    if matrix.dim() < 2 or matrix.shape[-1] != matrix.shape[-2]:
        raise ValueError(f'matrix must be square (..., L, L), got shape {tuple(matrix.shape)}')
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f'chunk_size must be a positive int, got {chunk_size!r}')
    L = matrix.shape[-1]
    nb = -(-L // chunk_size)
    pad = nb * chunk_size - L
    blocks = F.pad(matrix, (0, pad, 0, pad)).reshape(*matrix.shape[:-2], nb, chunk_size, nb,
                                                     chunk_size).transpose(-3, -2)
    rows, cols = torch.tril_indices(nb, nb, offset=-1)
    diag = torch.arange(nb)
    return dict(
        diagonal=numerical_rank(blocks[..., diag, diag, :, :], rtol),
        below=numerical_rank(blocks[..., rows, cols, :, :], rtol))


def rank_summary(matrix: Tensor, chunk_size: int, rtol: float = 1e-3) -> Dict[str, float]:
    """Mean full rank, mean diagonal-block rank and mean / max below-diagonal block rank of a
    stack of ``(..., L, L)`` matrices (e.g. channels or heads)."""
    full = numerical_rank(matrix, rtol).double()
    blocks = block_ranks(matrix, chunk_size, rtol)
    below = blocks['below'].double()
    return dict(
        full=full.mean().item(),
        diagonal=blocks['diagonal'].double().mean().item(),
        below=below.mean().item() if below.numel() else float('nan'),
        below_max=below.max().item() if below.numel() else float('nan'))
