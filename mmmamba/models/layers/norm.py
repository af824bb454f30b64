"""Norms and layout helpers for channels-last ``(B, H, W, C)`` and channels-first ``(B, C, H, W)``
maps."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a ``(B, C, H, W)`` map.

    Same parameters (and state-dict keys) as ``nn.LayerNorm(C)``, so a checkpoint of a
    channels-last model loads into a channels-first one and vice versa.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)  # [B, C, H, W] -> [B, H, W, C]
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)  # [B, H, W, C] -> [B, C, H, W]


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)  # [B, C, H, W] -> [B, H, W, C]


def to_channels_first(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)  # [B, H, W, C] -> [B, C, H, W]


class Linear2d(nn.Linear):
    """``nn.Linear`` over the channels of a ``(B, C, H, W)`` map (a 1x1 convolution).

    Same parameters and state-dict keys as ``nn.Linear``; ``channel_first=False`` makes it a
    plain ``nn.Linear`` on ``(..., C)``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 channel_first: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.channel_first = channel_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.channel_first:
            return super().forward(x)
        return F.conv2d(x, self.weight[:, :, None, None], self.bias)
