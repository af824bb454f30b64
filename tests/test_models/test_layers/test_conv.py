import pytest
import torch

from mmmamba.models.layers import CausalDepthwiseConv1d


def causal_filter_written_out(x, weight, bias):
    """out[b, c, t] = bias[c] + sum_j weight[c, 0, j] * x[b, c, t - k + 1 + j], zero before t=0."""
    batch, channels, length = x.shape
    k = weight.shape[-1]
    out = bias.view(1, channels, 1).expand(batch, channels, length).clone()
    for t in range(length):
        for j in range(k):
            s = t - k + 1 + j
            if s >= 0:
                out[:, :, t] = out[:, :, t] + weight[:, 0, j] * x[:, :, s]
    return out


@pytest.mark.parametrize('sequence_major', [False, True])
def test_causal_conv_equals_the_filter_written_out_in_both_memory_orders(sequence_major):
    torch.manual_seed(0)
    conv = CausalDepthwiseConv1d(6, kernel_size=4).double()
    x = torch.randn(2, 6, 9, dtype=torch.float64)
    if sequence_major:  # a transposed view of (B, L, C), as the Vim mixer passes
        x = x.transpose(1, 2).contiguous().transpose(1, 2)
    x.requires_grad_()
    out = conv(x)
    ref_x = x.detach().clone().requires_grad_()
    ref = causal_filter_written_out(ref_x, conv.weight, conv.bias)
    torch.testing.assert_close(out, ref)
    # the output keeps the input's memory order
    assert out.transpose(1, 2).is_contiguous() == sequence_major
    grad = torch.randn_like(ref)
    got = torch.autograd.grad(out, [x, conv.weight, conv.bias], grad)
    want = torch.autograd.grad(ref, [ref_x, conv.weight, conv.bias], grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_causal_conv_keeps_nn_conv1d_keys():
    conv = CausalDepthwiseConv1d(5, kernel_size=3, bias=False)
    assert {k: tuple(v.shape) for k, v in conv.state_dict().items()} == {'weight': (5, 1, 3)}
    x = torch.randn(1, 5, 7).transpose(1, 2).contiguous().transpose(1, 2)
    expected = causal_filter_written_out(x, conv.weight, torch.zeros(5))
    torch.testing.assert_close(conv(x), expected)
