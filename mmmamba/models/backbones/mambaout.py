"""MambaOut: a hierarchy of Gated CNN blocks, i.e. Mamba blocks without their state-space model.

Paper: Yu & Wang, "MambaOut: Do We Really Need Mamba for Vision?",
https://arxiv.org/abs/2405.07992

The module reads top to bottom: size table → parts (stem, downsample) → block → stage → model →
checkpoint converter. Key layout (under ``backbone.`` in converted and mmpretrain checkpoints)::

    stem.{conv1,norm1,conv2,norm2}
    stages.{i}.downsample.{conv,norm}       (i >= 1; the stem reduces stage 0 by 4)
    stages.{i}.blocks.{j}.{norm,fc1,conv,fc2}
    norm{i}                                 (one LayerNorm per returned stage)
"""
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from timm.layers import DropPath

from mmmamba.registry import MODELS
from ..layers import ConvDownsample, ConvStem, to_channels_first
from .base import HierarchicalBackbone

# depths: Gated CNN blocks per stage; dims: channels per stage.
# Params (with the MLP classifier head) / MACs at 224x224, from the paper:
#   femto 7.3M / 1.2G, kobe 9.1M / 1.5G, tiny 26.5M / 4.5G, small 48.5M / 9.0G, base 84.8M / 15.8G.
ARCH_SETTINGS: Dict[str, Dict[str, Tuple[int, ...]]] = {
    'femto': dict(depths=(3, 3, 9, 3), dims=(48, 96, 192, 288)),
    'kobe': dict(depths=(3, 3, 15, 3), dims=(48, 96, 192, 288)),
    'tiny': dict(depths=(3, 3, 9, 3), dims=(96, 192, 384, 576)),
    'small': dict(depths=(3, 4, 27, 3), dims=(96, 192, 384, 576)),
    'base': dict(depths=(3, 4, 27, 3), dims=(128, 256, 512, 768)),
    # Test-only: not from the paper, no released weights; for unit tests and toy configs.
    'atto': dict(depths=(1, 1, 1, 1), dims=(8, 16, 32, 48)),
}

LAYER_NORM_EPS = 1e-6
# Random initialisation, as in the paper: truncated normal (std 0.02) weights, zero biases.
DEFAULT_INIT_CFG = [
    dict(type='TruncNormal', layer=['Conv2d', 'Linear'], std=.02, bias=0.),
    dict(type='Constant', layer=['LayerNorm'], val=1., bias=0.),
]


class GatedCNNBlock(nn.Module):
    """Gated CNN block: a Mamba block with the SSM removed (Fig. 1 of the paper).

    ``y = fc2(GELU(g) * cat(i, dwconv(c)))`` with ``(g, i, c) = split(fc1(LN(x)))``, where ``g``
    has ``hidden`` channels, ``c`` has ``conv_channels`` and ``i`` the rest of ``hidden``;
    ``out = x + DropPath(y)``. Works on channels-last tensors.

    Args:
        channels (int): Input and output channels C.
        expansion_ratio (float): hidden = int(expansion_ratio * C). Defaults to 8/3.
        kernel_size (int): Kernel of the depthwise convolution. Defaults to 7.
        conv_ratio (float): conv_channels = int(conv_ratio * C), the share of channels that go
            through the depthwise convolution. Defaults to 1.0.
        drop_path (float): Stochastic depth rate of the residual branch. Defaults to 0.
    """

    def __init__(self,
                 channels: int,
                 expansion_ratio: float = 8 / 3,
                 kernel_size: int = 7,
                 conv_ratio: float = 1.0,
                 drop_path: float = 0.) -> None:
        super().__init__()
        hidden = int(expansion_ratio * channels)
        conv_channels = int(conv_ratio * channels)
        if not 0 < conv_channels <= hidden:
            raise ValueError(f'conv_ratio={conv_ratio} gives {conv_channels} conv channels; it '
                             f'must be in (0, hidden={hidden}] for {channels} channels')
        self.split_sizes = (hidden, hidden - conv_channels, conv_channels)
        self.norm = nn.LayerNorm(channels, eps=LAYER_NORM_EPS)
        self.fc1 = nn.Linear(channels, 2 * hidden)
        self.act = nn.GELU()
        self.conv = nn.Conv2d(
            conv_channels,
            conv_channels,
            kernel_size=kernel_size,
            padding=kernel_size // 2,
            groups=conv_channels)
        self.fc2 = nn.Linear(hidden, channels)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x  # [B, H, W, C]
        gate, identity, conv = torch.split(self.fc1(self.norm(x)), self.split_sizes, dim=-1)
        conv = conv.permute(0, 3, 1, 2)  # [B, H, W, C'] -> [B, C', H, W]
        conv = self.conv(conv)
        conv = conv.permute(0, 2, 3, 1)  # [B, C', H, W] -> [B, H, W, C']
        x = self.fc2(self.act(gate) * torch.cat((identity, conv), dim=-1))
        return shortcut + self.drop_path(x)


class MambaOutStage(nn.Module):
    """An optional downsample followed by a sequence of Gated CNN blocks (channels-last).

    Args:
        in_channels (int): Channels entering the stage.
        out_channels (int): Channels of the blocks.
        depth (int): Number of blocks.
        downsample (bool): Start with a stride-2 :class:`ConvDownsample`; when False the stage
            keeps the resolution and ``in_channels`` must equal ``out_channels``.
        drop_path (Sequence[float]): Stochastic depth rate of each block.
        **block_kwargs: ``expansion_ratio``, ``kernel_size``, ``conv_ratio`` of the blocks.
    """

    def __init__(self, in_channels: int, out_channels: int, depth: int, downsample: bool,
                 drop_path: Sequence[float], **block_kwargs) -> None:
        super().__init__()
        if downsample:
            self.downsample = ConvDownsample(in_channels, out_channels, eps=LAYER_NORM_EPS)
        elif in_channels != out_channels:
            raise ValueError(f'a stage without downsample keeps its width, got {in_channels} -> '
                             f'{out_channels}')
        else:
            self.downsample = None
        self.blocks = nn.ModuleList(
            GatedCNNBlock(out_channels, drop_path=drop_path[j], **block_kwargs)
            for j in range(depth))


@MODELS.register_module()
class MambaOut(HierarchicalBackbone):
    """MambaOut backbone for classification (mmpretrain) and dense prediction (mmdet, mmseg).

    Paper: "MambaOut: Do We Really Need Mamba for Vision?", https://arxiv.org/abs/2405.07992

    Stage ``i`` has stride ``2 ** (i + 2)``: an input of any size ``H x W`` (odd, non-square
    included; every convolution is padded) gives maps of ``ceil(H / 2**(i+2)) x
    ceil(W / 2**(i+2))``, e.g. 224 -> 56, 28, 14, 7 and 65 x 97 -> 17 x 25, 9 x 13, 5 x 7, 3 x 4.

    Args:
        arch (str | dict): A name in ``MambaOut.arch_settings`` (``'femto'``, ``'kobe'``,
            ``'tiny'``, ``'small'``, ``'base'``, and the test-only ``'atto'``) or a dict with keys
            ``'depths'`` and ``'dims'`` (one entry per stage). Defaults to ``'tiny'``.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int] | int): Stages to return; negative indices count from the
            last. Defaults to (0, 1, 2, 3).
        drop_path_rate (float): Stochastic depth rate, rising linearly over all blocks to this
            value. Defaults to 0.
        expansion_ratio (float): Hidden width of the blocks relative to their channels.
            Defaults to 8/3.
        conv_ratio (float): Share of the channels that go through the depthwise convolution.
            Defaults to 1.0.
        kernel_size (int): Kernel of the depthwise convolutions. Defaults to 7.
        out_norm (bool): Add a LayerNorm ``norm{i}`` on each returned stage ``i`` (the paper's
            dense-prediction models need it). Must be True when ``gap_before_final_norm``.
            Defaults to True.
        gap_before_final_norm (bool): Classification mode: each returned stage is average-pooled
            to a ``(B, C)`` vector and then normalised by ``norm{i}`` (for the last stage this is
            the ``norm`` of the released classifiers). Defaults to False.
        frozen_stages (int): Number of stages to freeze with the stem: ``k >= 1`` freezes the
            stem and stages ``0..k-1`` (``requires_grad=False`` and eval mode, kept through
            ``train()``); ``-1`` freezes nothing; ``0`` freezes the stem only under mmdet's or
            mmseg's default scope (their ResNet/Swin convention) and nothing under mmpretrain's
            (its ConvNeXt convention). Output norms stay trainable. Defaults to -1.
        with_cp (bool): Activation checkpointing around each block: less memory, same outputs.
            Defaults to False.
        init_cfg (dict | list[dict], optional): Initialisation. Defaults to truncated-normal
            (std 0.02) Linear/Conv2d and unit LayerNorm. ``dict(type='Pretrained',
            checkpoint=..., prefix=...)`` loads an mmmamba, mmpretrain, timm or official MambaOut
            checkpoint through :func:`convert_mambaout` (e.g. ``prefix='backbone.'`` for a
            classifier checkpoint); missing and unexpected keys are logged, and a missing file,
            an empty match or a shape mismatch raises.

    Attributes:
        depths (tuple[int]): Blocks per stage.
        dims (tuple[int]): Channels per stage.
        out_indices (tuple[int]): Returned stages, normalised to non-negative and sorted.
        out_channels (tuple[int]): Channels of each output, in ``out_indices`` order.
        strides (tuple[int]): Reduction of each output relative to the input.
        feature_info (list[dict]): For every stage: ``num_chs``, ``reduction`` and ``module``.
    """

    arch_settings = ARCH_SETTINGS
    arch_keys = ('depths', 'dims')
    test_arch = 'atto'
    default_init_cfg = DEFAULT_INIT_CFG
    # ConvNeXt-T's scheme for (3, 3, 9, 3): 6 block layers
    blocks_per_layer_group = 3

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3),
                 drop_path_rate: float = 0.,
                 expansion_ratio: float = 8 / 3,
                 conv_ratio: float = 1.0,
                 kernel_size: int = 7,
                 out_norm: bool = True,
                 gap_before_final_norm: bool = False,
                 frozen_stages: int = -1,
                 with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = DEFAULT_INIT_CFG) -> None:
        super().__init__(init_cfg=init_cfg)
        settings = self.parse_arch(arch)
        self.depths, self.dims = tuple(settings['depths']), tuple(settings['dims'])
        if len(self.depths) != len(self.dims) or not self.depths:
            raise ValueError(f'arch depths {self.depths} and dims {self.dims} need one entry per '
                             f'stage')
        if gap_before_final_norm and not out_norm:
            raise ValueError('gap_before_final_norm=True needs out_norm=True: the pooled features '
                             'are normalised by norm{i}')
        self.gap_before_final_norm = gap_before_final_norm
        self.out_norm = out_norm
        self.with_cp = with_cp

        self.stem = ConvStem(in_channels, self.dims[0], eps=LAYER_NORM_EPS)
        num_blocks = sum(self.depths)
        block_rates = [drop_path_rate * k / max(num_blocks - 1, 1) for k in range(num_blocks)]
        self.stages = nn.ModuleList()
        first_block = 0
        for i, (depth, dim) in enumerate(zip(self.depths, self.dims)):
            self.stages.append(
                MambaOutStage(
                    in_channels=self.dims[i - 1] if i > 0 else dim,
                    out_channels=dim,
                    depth=depth,
                    downsample=i > 0,
                    drop_path=block_rates[first_block:first_block + depth],
                    expansion_ratio=expansion_ratio,
                    kernel_size=kernel_size,
                    conv_ratio=conv_ratio))
            first_block += depth
        self.finish_stages(
            out_indices, frozen_stages,
            (lambda c: nn.LayerNorm(c, eps=LAYER_NORM_EPS)) if out_norm else None)

    def format_output(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` after ``norm{index}``, or the pooled and normed ``(B, C)`` vector
        when ``gap_before_final_norm``."""
        if self.gap_before_final_norm:
            return getattr(self, f'norm{index}')(x.mean((1, 2)))
        out = getattr(self, f'norm{index}')(x) if self.out_norm else x
        return to_channels_first(out).contiguous()


def convert_mambaout(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Map a MambaOut checkpoint to mmmamba's keys; mmmamba/mmpretrain dicts come back as is.

    Recognised layouts (checkpoint wrappers like ``'model'`` are removed by the loader):

    - official release (github.com/yuweihao/MambaOut): ``downsample_layers.{0: stem, i}``,
      ``stages.{i}.{j}``, ``norm`` (after pooling), ``head.{fc1,norm,fc2}``;
    - timm ``mambaout_*``: ``stem``, ``stages.{i}.downsample``, ``stages.{i}.blocks.{j}``,
      ``head.norm`` (after pooling), ``head.pre_logits.{fc,norm}``, ``head.fc``.

    Both convert to the layout of an mmpretrain ``ImageClassifier`` with a
    ``MambaOut(gap_before_final_norm=True)`` backbone and a ``MambaOutHead``:
    ``backbone.{stem,stages,norm{last}}.*`` and ``head.{fc1,norm,fc2}.*``. Load a backbone from
    it with ``prefix='backbone.'``. Any other dict (already ours) is returned unchanged.

    Args:
        state_dict (dict[str, torch.Tensor]): A flat state dict.

    Returns:
        dict[str, torch.Tensor]: The converted state dict, or ``state_dict`` itself.
    """
    keys = list(state_dict)
    if any(k.startswith('backbone.') for k in keys):
        return state_dict  # an mmpretrain classifier or dense model: already ours
    if any(k.startswith('downsample_layers.') for k in keys):
        layout = 'official'
        rules = [
            (r'^downsample_layers\.0\.', 'backbone.stem.'),
            (r'^downsample_layers\.(\d+)\.', r'backbone.stages.\1.downsample.'),
            (r'^stages\.(\d+)\.(\d+)\.', r'backbone.stages.\1.blocks.\2.'),
            (r'^norm\.', 'backbone.norm{last}.'),
            (r'^head\.', 'head.'),
        ]
    elif any(re.match(r'head\.(pre_logits|fc)\.', k) for k in keys):
        layout = 'timm'
        rules = [
            (r'^(stem|stages)\.', r'backbone.\1.'),
            (r'^head\.norm\.', 'backbone.norm{last}.'),
            (r'^head\.pre_logits\.fc\.', 'head.fc1.'),
            (r'^head\.pre_logits\.norm\.', 'head.norm.'),
            (r'^head\.fc\.', 'head.fc2.'),
        ]
    else:
        return state_dict

    stage_ids = [int(m.group(1)) for k in keys for m in [re.match(r'stages\.(\d+)\.', k)] if m]
    if not stage_ids:
        raise ValueError(f'a MambaOut checkpoint of {layout} layout without stages')
    last = str(max(stage_ids))

    converted = {}
    for key, value in state_dict.items():
        for pattern, replacement in rules:
            new_key, count = re.subn(pattern, replacement, key)
            if count:
                break
        else:
            raise ValueError(f'unexpected key {key!r} in a MambaOut checkpoint of {layout} layout')
        converted[new_key.replace('{last}', last)] = value
    return converted


MambaOut.converter = staticmethod(convert_mambaout)
