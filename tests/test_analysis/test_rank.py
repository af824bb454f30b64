"""Numerical rank on matrices of known rank."""
import pytest
import torch

from mmmamba.analysis import block_ranks, numerical_rank, rank_summary


def low_rank(m, n, r, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, r, generator=g, dtype=torch.float64) @ torch.randn(
        r, n, generator=g, dtype=torch.float64)


@pytest.mark.parametrize('r', [0, 1, 3, 7])
def test_numerical_rank_of_products(r):
    assert numerical_rank(low_rank(9, 7, r)).item() == r


def test_numerical_rank_tolerance_and_batch():
    # singular values 1, 1e-2, 1e-5: rank 2 at rtol 1e-3, 3 at 1e-6, 1 at 0.1
    U, _ = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64))
    M = U @ torch.diag(torch.tensor([1., 1e-2, 1e-5, 0., 0.], dtype=torch.float64)) @ V.T
    assert numerical_rank(M, 1e-3).item() == 2
    assert numerical_rank(M, 1e-6).item() == 3
    assert numerical_rank(M, 0.1).item() == 1
    stack = torch.stack([torch.eye(4), torch.zeros(4, 4), low_rank(4, 4, 2).float()])
    assert numerical_rank(stack).tolist() == [4, 0, 2]
    with pytest.raises(ValueError, match=r'rtol must be in \[0, 1\), got 1.5'):
        numerical_rank(M, 1.5)
    with pytest.raises(ValueError, match=r'matrix must be \(\.\.\., m, n\), got shape \(5,\)'):
        numerical_rank(torch.ones(5))


def test_block_ranks_known_layout():
    """A 10 x 10 matrix cut into 4 x 4 blocks (3 x 3 grid, the last ones 2 wide): each
    diagonal block and each block below it gets a chosen rank."""
    c, L = 4, 10
    M = torch.zeros(L, L, dtype=torch.float64)
    edges = [(0, 4), (4, 8), (8, 10)]
    chosen_diag = [4, 2, 1]
    chosen_below = {(1, 0): 3, (2, 0): 1, (2, 1): 2}
    for i, (a, b) in enumerate(edges):
        M[a:b, a:b] = low_rank(b - a, b - a, chosen_diag[i], seed=i)
    for (i, j), r in chosen_below.items():
        (a, b), (e, f) = edges[i], edges[j]
        M[a:b, e:f] = low_rank(b - a, f - e, r, seed=10 + i * 3 + j)
    M[0:4, 4:8] = low_rank(4, 4, 4, seed=99)  # above the diagonal: not counted
    ranks = block_ranks(M, c)
    assert ranks['diagonal'].tolist() == chosen_diag
    assert ranks['below'].tolist() == [3, 1, 2]  # (1, 0), (2, 0), (2, 1)
    summary = rank_summary(M[None], c)
    assert summary['diagonal'] == pytest.approx(7 / 3)
    assert summary['below'] == pytest.approx(2.) and summary['below_max'] == 3
    with pytest.raises(ValueError, match=r'matrix must be square \(\.\.\., L, L\), got shape'):
        block_ranks(torch.ones(3, 4), 2)
    with pytest.raises(ValueError, match='chunk_size must be a positive int, got 0'):
        block_ranks(M, 0)
