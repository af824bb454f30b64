import pytest
import torch

from mmmamba.ops import bidirectional_merge, bidirectional_scan, cross_merge, cross_scan


def test_cross_scan_orders_on_arange_map():
    H, W = 2, 3
    x = torch.arange(H * W, dtype=torch.float32).view(1, 1, H, W)  # [[0, 1, 2], [3, 4, 5]]
    seqs = cross_scan(x)
    assert seqs.shape == (1, 4, 1, H * W)
    assert seqs[0, 0, 0].tolist() == [0, 1, 2, 3, 4, 5]  # row-major
    assert seqs[0, 1, 0].tolist() == [0, 3, 1, 4, 2, 5]  # column-major
    assert seqs[0, 2, 0].tolist() == [5, 4, 3, 2, 1, 0]  # reversed row-major
    assert seqs[0, 3, 0].tolist() == [5, 2, 4, 1, 3, 0]  # reversed column-major


@pytest.mark.parametrize('H,W', [(1, 1), (3, 5), (4, 4), (7, 2)])
def test_merge_of_scan_is_four_times_the_map(H, W):
    x = torch.randn(2, 3, H, W)
    merged = cross_merge(cross_scan(x), H, W)
    assert merged.shape == (2, 3, H * W)
    torch.testing.assert_close(merged, 4 * x.flatten(2))
    # the 5-D form (each sequence reshaped to (H, W)) gives the same
    torch.testing.assert_close(cross_merge(cross_scan(x).unflatten(-1, (H, W))), merged)


def test_cross_merge_puts_each_direction_back_in_raster_order():
    H, W = 3, 4
    L = H * W
    raster = torch.arange(L, dtype=torch.float64)
    column = raster.view(H, W).t().flatten()  # raster index at each column-major step
    y = torch.zeros(1, 4, 1, L, dtype=torch.float64)
    # direction k carries value 10**k at each step, tagged with the step's raster index
    y[0, 0, 0] = raster
    y[0, 1, 0] = 10 * column
    y[0, 2, 0] = 100 * raster.flip(0)
    y[0, 3, 0] = 1000 * column.flip(0)
    torch.testing.assert_close(cross_merge(y, H, W)[0, 0], 1111 * raster)


def test_bidirectional_pair():
    x = torch.arange(5.).view(1, 1, 5)
    y = bidirectional_scan(x)
    assert y.shape == (1, 2, 1, 5)
    assert y[0, 1, 0].tolist() == [4, 3, 2, 1, 0]
    torch.testing.assert_close(bidirectional_merge(y), 2 * x)


@pytest.mark.parametrize('sequence_major', [False, True])
def test_bidirectional_pair_keeps_the_memory_order(sequence_major):
    x = torch.randn(2, 3, 5)
    if sequence_major:  # a transposed view of (B, L, C), as the Vim mixer passes
        x = x.transpose(1, 2).contiguous().transpose(1, 2)
    y = bidirectional_scan(x)
    torch.testing.assert_close(y[:, 0], x)
    torch.testing.assert_close(y[:, 1], x.flip(-1))
    # (B, 2, C, L) -> (B, L, 2, C) is contiguous exactly for a sequence-major x
    assert y.permute(0, 3, 1, 2).is_contiguous() == sequence_major
    assert y.is_contiguous() != sequence_major


@pytest.mark.parametrize('channels_last', [False, True])
def test_cross_scan_and_merge_keep_the_memory_order(channels_last):
    H, W = 3, 5
    x = torch.randn(2, 4, H, W)
    if channels_last:  # as VMamba's SS2D passes its conv output
        x = x.contiguous(memory_format=torch.channels_last)
    ys = cross_scan(x)
    rows, cols = x.flatten(2), x.transpose(2, 3).flatten(2)
    torch.testing.assert_close(ys, torch.stack([rows, cols, rows.flip(-1), cols.flip(-1)], 1))
    # (B, 4, C, L) -> (B, L, 4, C) is contiguous exactly for a channels-last x
    assert ys.permute(0, 3, 1, 2).is_contiguous() == channels_last
    assert ys.is_contiguous() != channels_last
    merged = cross_merge(ys, H, W)
    torch.testing.assert_close(merged, 4 * x.flatten(2))
    assert merged.transpose(1, 2).is_contiguous() == channels_last
    # the gradient of the scan (a merge) comes back in the input's memory order
    x64 = x.double().requires_grad_()
    assert torch.autograd.gradcheck(cross_scan, (x64, ))
    cross_scan(x64).sum().backward()
    assert x64.grad.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_gradcheck_cross_ops():
    x = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    y = torch.randn(1, 4, 2, 12, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    t = torch.randn(2, 2, 3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(cross_scan, (x, ))
    assert torch.autograd.gradcheck(lambda v: cross_merge(v, 3, 4), (y, ))
    assert torch.autograd.gradcheck(bidirectional_scan, (s, ))
    assert torch.autograd.gradcheck(bidirectional_merge, (t, ))
    assert torch.autograd.gradgradcheck(cross_scan, (x, ))
    assert torch.autograd.gradgradcheck(lambda v: cross_merge(v, 3, 4), (y, ))


def test_cross_ops_accept_non_contiguous_and_half_inputs():
    x = torch.randn(2, 5, 4, 3).permute(0, 3, 1, 2)  # (2, 3, 5, 4), channels-last strides
    torch.testing.assert_close(cross_scan(x), cross_scan(x.contiguous()))
    h = x.to(torch.bfloat16)
    assert cross_merge(cross_scan(h), 5, 4).dtype == torch.bfloat16


@pytest.mark.parametrize('call', [
    lambda: cross_scan(torch.zeros(2, 3, 4)),
    lambda: cross_merge(torch.zeros(1, 4, 2, 12)),
    lambda: cross_merge(torch.zeros(1, 4, 2, 12), 5, 3),
    lambda: cross_merge(torch.zeros(1, 2, 2, 3, 4)),
    lambda: bidirectional_scan(torch.zeros(2, 3)),
    lambda: bidirectional_merge(torch.zeros(2, 3, 4, 5)),
])
def test_bad_shapes_raise(call):
    with pytest.raises(ValueError):
        call()
