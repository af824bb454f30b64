"""1-D convolutions over token sequences."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class CausalDepthwiseConv1d(nn.Conv1d):
    """Depthwise convolution over ``(B, C, L)`` in which output ``t`` sees inputs ``t - k + 1 .. t``
    only (Mamba's short convolution before the scan).

    The sequence is zero-padded by ``kernel_size - 1`` on the left, so the output keeps length
    ``L``. Same parameters and state-dict keys as ``nn.Conv1d(C, C, kernel_size, groups=C)``:
    ``weight`` ``(C, 1, kernel_size)``, ``bias`` ``(C,)``.

    The output has the input's memory order. A sequence-major input (channels contiguous: a
    transposed view of a ``(B, L, C)`` tensor) is filtered as ``bias + sum_j w_j x_{t-k+1+j}``
    over shifted views, so that a sequence-major pipeline (the Vim mixer's, whose scan reads
    sequence-major blocks) needs no transposing copies.

    Args:
        channels (int): Channels C (one filter each).
        kernel_size (int): Taps of each filter. Defaults to 4.
        bias (bool): Add a bias per channel. Defaults to True.
    """

    def __init__(self, channels: int, kernel_size: int = 4, bias: bool = True) -> None:
        super().__init__(channels, channels, kernel_size, groups=channels, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.kernel_size[0] - 1
        if x.shape[1] > 1 and x.stride(1) == 1:
            length = x.shape[-1]
            x = F.pad(x.transpose(1, 2), (0, 0, pad, 0))  # [B, C, L] -> [B, pad + L, C]
            taps = self.weight.squeeze(1).t()  # [C, 1, k] -> [k, C]
            out = x[:, :length] * taps[0]
            for j in range(1, pad + 1):
                out = torch.addcmul(out, x[:, j:j + length], taps[j])
            if self.bias is not None:
                out = out + self.bias
            return out.transpose(1, 2)  # [B, L, C] -> [B, C, L], sequence-major
        return F.conv1d(F.pad(x, (pad, 0)), self.weight, self.bias, groups=self.groups)
