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

    Args:
        channels (int): Channels C (one filter each).
        kernel_size (int): Taps of each filter. Defaults to 4.
        bias (bool): Add a bias per channel. Defaults to True.
    """

    def __init__(self, channels: int, kernel_size: int = 4, bias: bool = True) -> None:
        super().__init__(channels, channels, kernel_size, groups=channels, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.kernel_size[0] - 1, 0))
        return F.conv1d(x, self.weight, self.bias, groups=self.groups)
