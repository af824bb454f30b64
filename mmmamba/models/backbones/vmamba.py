"""VMamba: a hierarchy of visual state-space (VSS) blocks built on the 2-D selective scan (SS2D).

Paper: Liu et al., "VMamba: Visual State Space Model", https://arxiv.org/abs/2401.10166;
release: https://github.com/MzeroMiko/VMamba (the v2 "VMamba-T/S/B" and the vanilla v0 models).

The module reads top to bottom: size table → SS2D → block → stage → model → checkpoint
converter. Key layout (under ``backbone.`` in mmmamba/mmpretrain classifier checkpoints)::

    stem.{conv1,norm1,conv2,norm2}            ('conv' stem)   | stem.{proj,norm}  ('patch' stem)
    stages.{i}.downsample.{conv,norm}         ('conv', i >= 1) | stages.{i}.downsample.{norm,reduction}
    stages.{i}.blocks.{j}.norm, .op.{in_proj, conv, ssm.{x_proj_weight, dt_proj_weight,
        dt_proj_bias, A_log, D}, out_norm, out_proj}, .norm2, .mlp.{fc1,fc2}
    norm{i}                                   (one LayerNorm per returned stage)

Inside, the blocks run channels-last ``(B, H, W, C)`` by default (``channel_first=False``);
``channel_first=True`` runs them on ``(B, C, H, W)`` with 1x1 convolutions for the linear
layers, with the same parameters and keys (``tools/analysis_tools/benchmark.py`` compares the
two).
"""
import re
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath

from mmmamba.ops import cross_merge, cross_scan
from mmmamba.registry import MODELS
from ..layers import (ConvDownsample, ConvStem, LayerNorm2d, Linear2d, PatchEmbed, PatchMerging,
                      SSMParameters, dt_rank_for, to_channels_first)
from .base import HierarchicalBackbone

# Released sizes (params / FLOPs of the classifiers at 224², from the release):
#   tiny 30M / 4.9G, small 50M / 8.7G, base 89M / 15.4G (v2: d_state 1, no z-gate, MLP 4);
#   vanilla-tiny 22M / 5.6G, vanilla-small 44M / 11.2G, vanilla-base 75M / 18.0G (v0).
_V2 = dict(d_state=1, mlp_ratio=4.0, gated=False, conv_bias=False, stem='conv', downsample='conv')
_V0 = dict(d_state=16, ssm_ratio=2.0, mlp_ratio=0.0, gated=True, conv_bias=True, stem='patch',
           downsample='merge')
ARCH_SETTINGS: Dict[str, dict] = {
    'tiny': dict(depths=(2, 2, 8, 2), dims=(96, 192, 384, 768), ssm_ratio=1.0, **_V2),
    'small': dict(depths=(2, 2, 15, 2), dims=(96, 192, 384, 768), ssm_ratio=2.0, **_V2),
    'base': dict(depths=(2, 2, 15, 2), dims=(128, 256, 512, 1024), ssm_ratio=2.0, **_V2),
    'vanilla-tiny': dict(depths=(2, 2, 9, 2), dims=(96, 192, 384, 768), **_V0),
    'vanilla-small': dict(depths=(2, 2, 27, 2), dims=(96, 192, 384, 768), **_V0),
    'vanilla-base': dict(depths=(2, 2, 27, 2), dims=(128, 256, 512, 1024), **_V0),
    # Test-only: not from the paper, no released weights; for unit tests and toy configs.
    'atto': dict(depths=(1, 1, 1, 1), dims=(8, 16, 24, 32), ssm_ratio=1.0, **{
        **_V2, 'd_state': 2, 'mlp_ratio': 2.0
    }),
}

LAYER_NORM_EPS = 1e-5
DEFAULT_INIT_CFG = [
    dict(type='TruncNormal', layer=['Linear'], std=.02, bias=0.),
    dict(type='Constant', layer=['LayerNorm'], val=1., bias=0.),
]


class SS2D(nn.Module):
    """2-D selective scan: four directional Mamba scans over a feature map.

    ``in_proj`` (C → d_inner, or 2·d_inner with the z-gate) → depthwise 3x3 conv → SiLU →
    :func:`~mmmamba.ops.cross_scan` into 4 sequences (row-major, column-major and both reversed)
    → one selective scan per direction (:class:`~mmmamba.models.layers.SSMParameters`: its own
    ``x_proj``, ``dt_proj``, ``A``, ``D``) → :func:`~mmmamba.ops.cross_merge` (sum back to raster
    order) → ``out_norm`` → (× SiLU(z)) → ``out_proj``.

    Args:
        channels (int): Input and output channels C.
        d_state (int): SSM state size N. Defaults to 16.
        ssm_ratio (float): d_inner = int(ssm_ratio * C). Defaults to 2.0.
        gated (bool): Multiply by SiLU(z), z a second half of ``in_proj``. Defaults to True.
        conv_bias (bool): Bias of the depthwise convolution. Defaults to True.
        dt_rank (int, optional): Rank of the step-size projection. Defaults to ceil(C / 16).
        channel_first (bool): Input and output are ``(B, C, H, W)`` instead of
            ``(B, H, W, C)``. Defaults to False.
    """

    def __init__(self,
                 channels: int,
                 d_state: int = 16,
                 ssm_ratio: float = 2.0,
                 gated: bool = True,
                 conv_bias: bool = True,
                 dt_rank: Optional[int] = None,
                 channel_first: bool = False) -> None:
        super().__init__()
        d_inner = int(ssm_ratio * channels)
        self.d_inner, self.gated, self.channel_first = d_inner, gated, channel_first
        self.in_proj = Linear2d(
            channels, 2 * d_inner if gated else d_inner, bias=False, channel_first=channel_first)
        self.conv = nn.Conv2d(
            d_inner, d_inner, kernel_size=3, padding=1, groups=d_inner, bias=conv_bias)
        self.act = nn.SiLU()
        self.ssm = SSMParameters(
            d_inner, d_state, dt_rank or dt_rank_for(channels), num_directions=4)
        self.out_norm = (LayerNorm2d if channel_first else nn.LayerNorm)(
            d_inner, eps=LAYER_NORM_EPS)
        self.out_proj = Linear2d(d_inner, channels, bias=False, channel_first=channel_first)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel_dim = 1 if self.channel_first else -1
        x = self.in_proj(x)
        if self.gated:
            x, z = x.chunk(2, dim=channel_dim)
        if not self.channel_first:
            # [B, H, W, D] -> [B, D, H, W] in channels-last memory, kept up to the scan and back:
            # the depthwise conv runs faster on it than on channel-major memory, and cross_scan
            # then gives the scan sequence-major sequences, which it reads without a copy
            x = to_channels_first(x).contiguous(memory_format=torch.channels_last)
        H, W = x.shape[2:]
        x = self.act(self.conv(x))
        y = self.ssm(cross_scan(x))  # [B, 4, D, H*W], each direction in its scan order
        y = cross_merge(y, H, W)  # [B, D, H*W] in raster order
        if self.channel_first:
            y = y.view(y.shape[0], -1, H, W)
        else:
            # [B, D, L] -> [B, H, W, D]; a view of the sequence-major y
            y = y.transpose(1, 2).reshape(y.shape[0], H, W, -1)
        y = self.out_norm(y)
        if self.gated:
            y = y * F.silu(z)
        return self.out_proj(y)


class VSSBlock(nn.Module):
    """Visual state-space block: ``x + DropPath(SS2D(LN(x)))``, then, when ``mlp_ratio > 0``,
    ``x + DropPath(MLP(LN(x)))`` (fc1 → GELU → fc2).

    Args:
        channels (int): Input and output channels C.
        mlp_ratio (float): MLP hidden width relative to C; 0 leaves the MLP out.
            Defaults to 4.0.
        drop_path (float): Stochastic depth rate of both residual branches. Defaults to 0.
        channel_first (bool): ``(B, C, H, W)`` in and out instead of ``(B, H, W, C)``.
            Defaults to False.
        **ss2d_kwargs: ``d_state``, ``ssm_ratio``, ``gated``, ``conv_bias`` of :class:`SS2D`.
    """

    def __init__(self,
                 channels: int,
                 mlp_ratio: float = 4.0,
                 drop_path: float = 0.,
                 channel_first: bool = False,
                 **ss2d_kwargs) -> None:
        super().__init__()
        norm = LayerNorm2d if channel_first else nn.LayerNorm
        self.norm = norm(channels, eps=LAYER_NORM_EPS)
        self.op = SS2D(channels, channel_first=channel_first, **ss2d_kwargs)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.mlp = None
        if mlp_ratio > 0:
            hidden = int(channels * mlp_ratio)
            self.norm2 = norm(channels, eps=LAYER_NORM_EPS)
            self.mlp = nn.Sequential()
            self.mlp.add_module('fc1', Linear2d(channels, hidden, channel_first=channel_first))
            self.mlp.add_module('act', nn.GELU())
            self.mlp.add_module('fc2', Linear2d(hidden, channels, channel_first=channel_first))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.op(self.norm(x)))
        if self.mlp is not None:
            x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x


class VMambaStage(nn.Module):
    """An optional downsample (conv or patch merging) followed by VSS blocks.

    Args:
        in_channels (int): Channels entering the stage.
        out_channels (int): Channels of the blocks.
        depth (int): Number of blocks.
        downsample (str, optional): ``'conv'`` (3x3 stride-2 conv + LN), ``'merge'`` (patch
            merging) or None (keep the resolution; then ``in_channels == out_channels``).
        drop_path (Sequence[float]): Stochastic depth rate of each block.
        channel_first (bool): Layout of the maps. Defaults to False.
        **block_kwargs: The :class:`VSSBlock` settings.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 depth: int,
                 downsample: Optional[str],
                 drop_path: Sequence[float],
                 channel_first: bool = False,
                 **block_kwargs) -> None:
        super().__init__()
        if downsample == 'conv':
            self.downsample = ConvDownsample(
                in_channels, out_channels, eps=LAYER_NORM_EPS, channel_first=channel_first)
        elif downsample == 'merge':
            self.downsample = PatchMerging(
                in_channels, out_channels, eps=LAYER_NORM_EPS, channel_first=channel_first)
        elif downsample is None and in_channels == out_channels:
            self.downsample = None
        else:
            raise ValueError(f"downsample must be 'conv', 'merge' or None (same width), got "
                             f'{downsample!r} for {in_channels} -> {out_channels} channels')
        self.blocks = nn.ModuleList(
            VSSBlock(out_channels, drop_path=drop_path[j], channel_first=channel_first,
                     **block_kwargs) for j in range(depth))


@MODELS.register_module()
class VMamba(HierarchicalBackbone):
    """VMamba backbone for classification (mmpretrain) and dense prediction (mmdet, mmseg).

    Paper: "VMamba: Visual State Space Model", https://arxiv.org/abs/2401.10166

    Stage ``i`` has stride ``2 ** (i + 2)`` and returns ``(B, dims[i], H_i, W_i)`` after its
    LayerNorm ``norm{i}``. For classification use ``out_indices=(3, )`` with mmpretrain's
    ``GlobalAveragePooling`` neck and ``LinearClsHead``: ``norm3`` is the released classifier's
    norm before pooling.

    Args:
        arch (str | dict): A name in ``VMamba.arch_settings`` — ``'tiny'``, ``'small'``,
            ``'base'`` (the released v2 models), ``'vanilla-tiny'``, ``'vanilla-small'``,
            ``'vanilla-base'`` (v0), or the test-only ``'atto'`` — or a dict with keys
            ``depths``, ``dims`` (one entry per stage), ``d_state``, ``ssm_ratio``,
            ``mlp_ratio``, ``gated`` (z-gate), ``conv_bias``, ``stem`` (``'conv'``: two 3x3
            stride-2 convs; ``'patch'``: a 4x4 stride-4 conv) and ``downsample`` (``'conv'`` or
            ``'merge'``); ``conv_bias``, ``stem`` and ``downsample`` default to the v2 choices.
            Defaults to ``'tiny'``.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int] | int): Stages to return; negatives count from the last.
            Defaults to (0, 1, 2, 3).
        drop_path_rate (float): Stochastic depth rate, rising linearly over all blocks to this
            value. Defaults to 0.
        out_norm (bool): A LayerNorm ``norm{i}`` on each returned stage. Defaults to True.
        frozen_stages (int): Number of stages to freeze with the stem: ``k >= 1`` freezes the
            stem and stages ``0..k-1``; ``-1`` nothing; ``0`` the stem only under mmdet's or
            mmseg's default scope and nothing under mmpretrain's. Defaults to -1.
        with_cp (bool): Activation checkpointing around each block. Defaults to False.
        channel_first (bool): Run the blocks on ``(B, C, H, W)`` maps (1x1 convs for the linear
            layers) instead of ``(B, H, W, C)``; same parameters. Defaults to False, the faster
            layout on CPU (see the README).
        init_cfg (dict | list[dict], optional): Initialisation; defaults to truncated-normal
            (std 0.02) Linear and unit LayerNorm, with the SSM parameters initialised as Mamba
            does. ``dict(type='Pretrained', checkpoint=..., prefix=...)`` loads an mmmamba /
            mmpretrain checkpoint or an official release file (converted by
            :func:`convert_vmamba`).
    """

    arch_settings = ARCH_SETTINGS
    arch_keys = ('depths', 'dims', 'd_state', 'ssm_ratio', 'mlp_ratio', 'gated', 'conv_bias',
                 'stem', 'downsample')
    arch_defaults = dict(conv_bias=False, stem='conv', downsample='conv')
    test_arch = 'atto'
    default_init_cfg = DEFAULT_INIT_CFG

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3),
                 drop_path_rate: float = 0.,
                 out_norm: bool = True,
                 frozen_stages: int = -1,
                 with_cp: bool = False,
                 channel_first: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = DEFAULT_INIT_CFG) -> None:
        super().__init__(init_cfg=init_cfg)
        settings = self.parse_arch(arch)
        self.arch = settings
        self.depths, self.dims = tuple(settings['depths']), tuple(settings['dims'])
        if len(self.depths) != len(self.dims) or not self.depths:
            raise ValueError(f'arch depths {self.depths} and dims {self.dims} need one entry per '
                             f'stage')
        self.out_norm, self.with_cp, self.channel_first = out_norm, with_cp, channel_first

        if settings['stem'] == 'conv':
            self.stem = ConvStem(
                in_channels, self.dims[0], eps=LAYER_NORM_EPS, channel_first=channel_first)
        elif settings['stem'] == 'patch':
            self.stem = PatchEmbed(
                in_channels, self.dims[0], patch_size=4, eps=LAYER_NORM_EPS,
                channel_first=channel_first)
        else:
            raise ValueError(f"arch stem must be 'conv' or 'patch', got {settings['stem']!r}")

        num_blocks = sum(self.depths)
        block_rates = [drop_path_rate * k / max(num_blocks - 1, 1) for k in range(num_blocks)]
        self.stages = nn.ModuleList()
        first_block = 0
        for i, (depth, dim) in enumerate(zip(self.depths, self.dims)):
            self.stages.append(
                VMambaStage(
                    in_channels=self.dims[i - 1] if i > 0 else dim,
                    out_channels=dim,
                    depth=depth,
                    downsample=settings['downsample'] if i > 0 else None,
                    drop_path=block_rates[first_block:first_block + depth],
                    channel_first=channel_first,
                    mlp_ratio=settings['mlp_ratio'],
                    d_state=settings['d_state'],
                    ssm_ratio=settings['ssm_ratio'],
                    gated=settings['gated'],
                    conv_bias=settings['conv_bias']))
            first_block += depth
        norm = LayerNorm2d if channel_first else nn.LayerNorm
        self.finish_stages(out_indices, frozen_stages,
                           (lambda c: norm(c, eps=LAYER_NORM_EPS)) if out_norm else None)

    def format_output(self, index: int, x: torch.Tensor) -> torch.Tensor:
        out = getattr(self, f'norm{index}')(x) if self.out_norm else x
        return out if self.channel_first else to_channels_first(out).contiguous()


# Official release → ours. Legacy (early v0) names first: ``ln_1``/``self_attention`` blocks,
# ``patch_embed.{proj,norm}``; then the v2 code's ``norm``/``op`` blocks and Sequential stems.
_BLOCK_RULES = [
    (r'\.ln_1\.', '.norm.'),
    (r'\.self_attention\.', '.op.'),
    (r'\.op\.conv2d\.', '.op.conv.'),
    (r'\.op\.x_proj_weight$', '.op.ssm.x_proj_weight'),
    (r'\.op\.dt_projs_weight$', '.op.ssm.dt_proj_weight'),
    (r'\.op\.dt_projs_bias$', '.op.ssm.dt_proj_bias'),
    (r'\.op\.A_logs$', '.op.ssm.A_log'),
    (r'\.op\.Ds$', '.op.ssm.D'),
]
_STEM_RULES = [
    (r'^patch_embed\.0\.', 'stem.{first}.'),
    (r'^patch_embed\.2\.', 'stem.{first_norm}.'),
    (r'^patch_embed\.5\.', 'stem.conv2.'),
    (r'^patch_embed\.7\.', 'stem.norm2.'),
    (r'^patch_embed\.(proj|norm)\.', r'stem.\1.'),
]


def convert_vmamba(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Map an official VMamba checkpoint to mmmamba's keys; mmmamba dicts come back as is.

    The release (github.com/MzeroMiko/VMamba) stores ``patch_embed.*``, ``layers.{i}.blocks.{j}``
    (``norm``/``op``/``norm2``/``mlp`` in v2 code, ``ln_1``/``self_attention`` in early
    releases), ``layers.{i}.downsample`` at the *end* of stage ``i`` (ours: at the start of
    stage ``i + 1``), SS2D parameters ``x_proj_weight``, ``dt_projs_weight``, ``dt_projs_bias``,
    ``A_logs``, ``Ds``, and a classifier ``classifier.{norm,head}`` (early: ``norm``, ``head``).
    The result has the layout of an mmpretrain ``ImageClassifier`` with a ``VMamba`` backbone
    (``out_indices=(3,)``) and a ``LinearClsHead``: ``backbone.*`` and ``head.fc.*``; 1x1-conv
    weights ``(out, in, 1, 1)`` of channel-first releases become ``(out, in)``.

    Args:
        state_dict (dict[str, torch.Tensor]): A flat state dict.

    Returns:
        dict[str, torch.Tensor]: The converted state dict, or ``state_dict`` itself.
    """
    keys = list(state_dict)
    if not any(k.startswith('layers.') for k in keys):
        return state_dict
    stage_ids = [int(m.group(1)) for k in keys for m in [re.match(r'layers\.(\d+)\.', k)] if m]
    last = max(stage_ids)
    patch_stem = any(k.startswith('patch_embed.proj.') for k in keys) or not any(
        k.startswith('patch_embed.5.') for k in keys)
    first, first_norm = ('proj', 'norm') if patch_stem else ('conv1', 'norm1')
    # v3 downsample Sequential(permute, conv, permute, norm) vs v1 patch merging
    downsample_rules = [
        (r'^layers\.(\d+)\.downsample\.1\.', 'conv'),
        (r'^layers\.(\d+)\.downsample\.3\.', 'norm'),
        (r'^layers\.(\d+)\.downsample\.(reduction|norm)\.', None),
    ]

    converted = {}
    for key, value in state_dict.items():
        new_key = None
        if key.startswith('patch_embed.'):
            for pattern, replacement in _STEM_RULES:
                if re.match(pattern, key):
                    new_key = re.sub(pattern, replacement, key).format(
                        first=first, first_norm=first_norm)
                    break
        elif re.match(r'layers\.\d+\.downsample\.', key):
            for pattern, name in downsample_rules:
                match = re.match(pattern, key)
                if match:
                    stage = int(match.group(1)) + 1
                    name = name or match.group(2)
                    new_key = f'stages.{stage}.downsample.{name}.' + key[match.end():]
                    break
        elif re.match(r'layers\.\d+\.blocks\.\d+\.', key):
            new_key = re.sub(r'^layers\.', 'stages.', key)
            for pattern, replacement in _BLOCK_RULES:
                new_key = re.sub(pattern, replacement, new_key)
        elif re.match(r'(classifier\.)?norm\.', key):
            new_key = f'norm{last}.' + key.split('norm.', 1)[1]
        elif re.match(r'(classifier\.)?head\.', key):
            converted['head.fc.' + key.split('head.', 1)[1]] = value
            continue
        if new_key is None:
            raise ValueError(f'unexpected key {key!r} in an official VMamba checkpoint')
        if value.ndim == 4 and value.shape[2:] == (1, 1) and re.search(
                r'(in_proj|out_proj|fc1|fc2)\.weight$', new_key):
            value = value[:, :, 0, 0]
        converted['backbone.' + new_key] = value
    return converted


VMamba.converter = staticmethod(convert_vmamba)
