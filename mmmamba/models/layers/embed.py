"""Stems and downsampling layers of the hierarchical backbones.

Each takes a ``channel_first`` flag for the layout of its *output* (and, for downsamples, of its
input): ``False`` works on ``(B, H, W, C)`` maps, ``True`` on ``(B, C, H, W)``. The parameters
and state-dict keys do not depend on it.
"""
import torch
import torch.nn as nn

from .norm import LayerNorm2d, to_channels_first, to_channels_last


def _norm(channels: int, eps: float, channel_first: bool) -> nn.Module:
    return LayerNorm2d(channels, eps=eps) if channel_first else nn.LayerNorm(channels, eps=eps)


class ConvStem(nn.Module):
    """Two stride-2 3x3 convolutions that reduce the input by 4.

    conv (C/2) → LN → GELU → conv (C) → LN (MambaOut's stem, VMamba v2's ``patch_embed``).

    Args:
        in_channels (int): Input image channels.
        out_channels (int): Output channels C (the first stage's width).
        eps (float): LayerNorm epsilon. Defaults to 1e-6.
        channel_first (bool): Output ``(B, C, H, W)`` instead of ``(B, H, W, C)``.
            Defaults to False.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 eps: float = 1e-6,
                 channel_first: bool = False) -> None:
        super().__init__()
        mid_channels = out_channels // 2
        self.channel_first = channel_first
        self.conv1 = nn.Conv2d(in_channels, mid_channels, kernel_size=3, stride=2, padding=1)
        self.norm1 = _norm(mid_channels, eps, channel_first)
        self.act = nn.GELU()
        self.conv2 = nn.Conv2d(mid_channels, out_channels, kernel_size=3, stride=2, padding=1)
        self.norm2 = _norm(out_channels, eps, channel_first)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channel_first:
            return self.norm2(self.conv2(self.act(self.norm1(self.conv1(x)))))
        x = to_channels_last(self.conv1(x))
        x = to_channels_first(self.act(self.norm1(x)))
        return self.norm2(to_channels_last(self.conv2(x)))


class PatchEmbed(nn.Module):
    """Non-overlapping patches: a ``patch_size`` x ``patch_size`` convolution with the same stride,
    then an optional LayerNorm (VMamba v0's stem with ``patch_size=4``).

    Inputs whose size is not a multiple of ``patch_size`` are zero-padded at the bottom/right.

    Args:
        in_channels (int): Input image channels.
        out_channels (int): Embedding channels.
        patch_size (int): Patch size and stride.
        norm (bool): Add a LayerNorm after the projection. Defaults to True.
        eps (float): LayerNorm epsilon. Defaults to 1e-5.
        channel_first (bool): Output ``(B, C, H, W)`` instead of ``(B, H, W, C)``.
            Defaults to False.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 patch_size: int,
                 norm: bool = True,
                 eps: float = 1e-5,
                 channel_first: bool = False) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.channel_first = channel_first
        self.proj = nn.Conv2d(in_channels, out_channels, kernel_size=patch_size, stride=patch_size)
        self.norm = _norm(out_channels, eps, channel_first) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h, pad_w = (-x.shape[2]) % self.patch_size, (-x.shape[3]) % self.patch_size
        if pad_h or pad_w:
            x = nn.functional.pad(x, (0, pad_w, 0, pad_h))
        x = self.proj(x)
        return self.norm(x if self.channel_first else to_channels_last(x))


class ConvDownsample(nn.Module):
    """A stride-2 3x3 convolution followed by LN, between two stages.

    Args:
        in_channels (int): Channels of the previous stage.
        out_channels (int): Channels of the next stage.
        eps (float): LayerNorm epsilon. Defaults to 1e-6.
        channel_first (bool): Input and output are ``(B, C, H, W)`` instead of
            ``(B, H, W, C)``. Defaults to False.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 eps: float = 1e-6,
                 channel_first: bool = False) -> None:
        super().__init__()
        self.channel_first = channel_first
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1)
        self.norm = _norm(out_channels, eps, channel_first)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channel_first:
            return self.norm(self.conv(x))
        return self.norm(to_channels_last(self.conv(to_channels_first(x))))


class PatchMerging(nn.Module):
    """Swin's patch merging: each 2x2 neighbourhood concatenated (4C) → LN → Linear(4C → C').

    The four neighbours are concatenated in the order (0,0), (1,0), (0,1), (1,1) (row, column),
    the order of Swin and VMamba v0 checkpoints. Odd sizes are zero-padded at the bottom/right.

    Args:
        in_channels (int): Channels C of the previous stage.
        out_channels (int): Channels C' of the next stage.
        eps (float): LayerNorm epsilon. Defaults to 1e-5.
        channel_first (bool): Input and output are ``(B, C, H, W)`` instead of
            ``(B, H, W, C)``. Defaults to False.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 eps: float = 1e-5,
                 channel_first: bool = False) -> None:
        super().__init__()
        self.channel_first = channel_first
        self.norm = nn.LayerNorm(4 * in_channels, eps=eps)
        self.reduction = nn.Linear(4 * in_channels, out_channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channel_first:
            x = to_channels_last(x)
        H, W = x.shape[1:3]
        if H % 2 or W % 2:
            x = nn.functional.pad(x, (0, 0, 0, W % 2, 0, H % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]],
                      dim=-1)  # [B, H/2, W/2, 4C]
        x = self.reduction(self.norm(x))
        return to_channels_first(x) if self.channel_first else x
