"""Vim and Mamba-Reg: isotropic (ViT-like) stacks of bidirectional Mamba layers on 16x16 patches.

Papers: Zhu et al., "Vision Mamba: Efficient Visual Representation Learning with Bidirectional
State Space Model", https://arxiv.org/abs/2401.09417 (release: https://github.com/hustvl/Vim);
Wang et al., "Mamba-R: Vision Mamba ALSO Needs Registers", https://arxiv.org/abs/2405.14858
(release: https://github.com/wangf3014/Mamba-Reg).

The module reads top to bottom: size tables → helpers (position embedding, token layout) →
bidirectional mixer → layer → Vim → MambaReg → checkpoint converter. Key layout (under
``backbone.`` in mmmamba/mmpretrain classifier checkpoints)::

    patch_embed.proj                        16x16 stride-16 convolution
    pos_embed                               (1, h0 * w0, C): the patch grid at ``img_size``
    cls_token, cls_pos_embed                (1, 1, C)            (Vim)
    registers, register_pos_embed           (1, R, C)            (MambaReg)
    layers.{i}.norm                         RMSNorm (weight only)
    layers.{i}.mixer.{in_proj, conv1d, ssm.{x_proj_weight, dt_proj_weight, dt_proj_bias,
        A_log, D}, out_proj}                 both directions stacked: forward first, backward second
    norm_f                                  RMSNorm on the last layer's output (``final_norm``)
    register_proj, register_norm            MambaReg's register reduction (``out_type='registers'``)

A layer is ``residual += hidden → h = RMSNorm(residual) → hidden = DropPath(BiMambaMixer(h))``
with the residual stream kept in float32 (the release's ``residual_in_fp32``); the token
sequence after layer ``i`` is ``residual + hidden``. The release applies each layer's DropPath
when the next layer (or ``norm_f``) adds its output; with its rates this is the same as layer
``i`` dropping its own output with rate ``drop_path_rate * i / (num_layers - 1)``.
"""
import functools
import math
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from timm.layers import DropPath, RmsNorm, to_2tuple, trunc_normal_

from mmmamba.ops import bidirectional_merge, bidirectional_scan
from mmmamba.registry import MODELS
from ..layers import CausalDepthwiseConv1d, PatchEmbed, SSMParameters, dt_rank_for
from .base import MambaBackbone

# Released sizes (classifier params with a 1000-class head at 224²): Vim tiny 7M, small 26M,
# base 98M. Every size has 24 layers, d_state 16, d_inner = 2C, dt_rank = ceil(C / 16).
VIM_ARCH_SETTINGS: Dict[str, dict] = {
    'tiny': dict(embed_dims=192, num_layers=24),
    'small': dict(embed_dims=384, num_layers=24),
    'base': dict(embed_dims=768, num_layers=24),
    # Test-only: not from the paper, no released weights; for unit tests and toy configs.
    'atto': dict(embed_dims=32, num_layers=4),
}
# Mamba-Reg: R registers; the representation is the R registers after norm_f, each reduced to
# C / register_reduce channels (no reduction and no extra norm for register_reduce=1),
# concatenated and RMS-normed.
MAMBA_REG_ARCH_SETTINGS: Dict[str, dict] = {
    'tiny': dict(embed_dims=192, num_layers=24, num_registers=12, register_reduce=1),
    'small': dict(embed_dims=384, num_layers=24, num_registers=12, register_reduce=2),
    'base': dict(embed_dims=768, num_layers=24, num_registers=12, register_reduce=4),
    'large': dict(embed_dims=1024, num_layers=48, num_registers=16, register_reduce=8),
    # Test-only, as above.
    'atto': dict(embed_dims=32, num_layers=4, num_registers=4, register_reduce=2),
}

RMS_NORM_EPS = 1e-5
DEFAULT_INIT_CFG = [dict(type='TruncNormal', layer=['Linear'], std=.02, bias=0.)]


# ---- position embedding and token layout -----------------------------------------------------
def resize_pos_embed(pos_embed: torch.Tensor, src_grid: Tuple[int, int],
                     dst_grid: Tuple[int, int]) -> torch.Tensor:
    """Resize a patch-grid position embedding ``(1, h0 * w0, C)`` to ``(1, h * w, C)``, bicubic
    (``align_corners=False``), rows first; returns ``pos_embed`` itself when the grids agree."""
    if tuple(src_grid) == tuple(dst_grid):
        return pos_embed
    channels = pos_embed.shape[-1]
    grid = pos_embed.reshape(1, *src_grid, channels).permute(0, 3, 1, 2)  # -> [1, C, h0, w0]
    grid = F.interpolate(grid.float(), size=tuple(dst_grid), mode='bicubic', align_corners=False)
    return grid.flatten(2).transpose(1, 2).to(pos_embed.dtype)  # [1, C, h, w] -> [1, h*w, C]


@functools.lru_cache(maxsize=64)
def _sequence_layout(num_patches: int, token_positions: Tuple[int, ...],
                     device: torch.device) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Index tensors of a sequence of ``num_patches`` patches (raster order) with extra tokens at
    ``token_positions``: ``order`` (for each sequence position, its row in
    ``cat([patches, tokens])``), and the sequence positions of the tokens and of the patches."""
    total = num_patches + len(token_positions)
    if len(set(token_positions)) != len(token_positions) or not all(
            0 <= p < total for p in token_positions):
        raise ValueError(f'token positions {token_positions} must be distinct and below {total}')
    is_token = [False] * total
    for position in token_positions:
        is_token[position] = True
    order, patch_positions = [], []
    next_patch, next_token = 0, num_patches
    for position in range(total):
        if is_token[position]:
            order.append(next_token)
            next_token += 1
        else:
            order.append(next_patch)
            patch_positions.append(position)
            next_patch += 1

    def index(values: List[int]) -> torch.Tensor:
        # cached for later calls: never an inference tensor, which autograd could not save
        with torch.inference_mode(False):
            return torch.tensor(values, dtype=torch.long, device=device)

    return index(order), index(list(token_positions)), index(patch_positions)


# ---- the bidirectional mixer and the layer ----------------------------------------------------
class BiMambaMixer(nn.Module):
    """Vim's bidirectional Mamba mixer (the release's ``bimamba_type='v2'``,
    ``if_divide_out=True``).

    ``in_proj`` (C → 2·d_inner: x and z, no bias) → x runs in both directions, each with its own
    causal depthwise conv1d (k = ``d_conv``) → SiLU → selective scan (its own ``x_proj``,
    ``dt_proj``, ``A``, ``D``; :class:`~mmmamba.models.layers.SSMParameters` with two
    directions) → the backward result flipped back → average of the two → × SiLU(z) →
    ``out_proj`` (d_inner → C, no bias). Both directions run in one selective-scan call (B/C
    grouped by direction).

    The release gates each direction by SiLU(z) before averaging; with the same z at each
    position, that is the gate applied once to the average, as here. (The release's unfused
    path, taken without its CUDA kernels, runs the forward direction only; this module always
    runs both.)

    Args:
        channels (int): Input and output channels C.
        d_state (int): SSM state size N. Defaults to 16.
        ssm_ratio (float): d_inner = int(ssm_ratio * C). Defaults to 2.0.
        d_conv (int): Taps of the causal convolutions. Defaults to 4.
        dt_rank (int, optional): Rank of the step-size projection. Defaults to ceil(C / 16).
    """

    def __init__(self,
                 channels: int,
                 d_state: int = 16,
                 ssm_ratio: float = 2.0,
                 d_conv: int = 4,
                 dt_rank: Optional[int] = None) -> None:
        super().__init__()
        d_inner = int(ssm_ratio * channels)
        self.d_inner = d_inner
        self.in_proj = nn.Linear(channels, 2 * d_inner, bias=False)
        # channels 0..d_inner-1 filter the forward sequence, d_inner..2*d_inner-1 the reversed one
        self.conv1d = CausalDepthwiseConv1d(2 * d_inner, kernel_size=d_conv)
        self.act = nn.SiLU()
        self.ssm = SSMParameters(
            d_inner, d_state, dt_rank or dt_rank_for(channels), num_directions=2)
        self.out_proj = nn.Linear(d_inner, channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mix a token sequence ``(B, L, C)``; returns ``(B, L, C)``."""
        batch, length, _ = x.shape
        x, z = self.in_proj(x).chunk(2, dim=-1)
        xs = bidirectional_scan(x.transpose(1, 2))  # [B, L, D] -> [B, D, L] -> [B, 2, D, L]
        xs = self.act(self.conv1d(xs.flatten(1, 2)))  # [B, 2*D, L], each direction causal
        y = self.ssm(xs.view(batch, 2, self.d_inner, length))  # [B, 2, D, L]
        y = bidirectional_merge(y) * 0.5  # [B, D, L] in forward order: the mean of both
        y = y.transpose(1, 2) * F.silu(z)  # [B, D, L] -> [B, L, D]
        return self.out_proj(y)


class VimLayer(nn.Module):
    """``residual += hidden`` → RMSNorm → :class:`BiMambaMixer` → DropPath.

    Takes and returns ``(hidden, residual)``: ``hidden`` is the previous layer's (dropped) mixer
    output (the embedded tokens for the first layer, with ``residual=None``), ``residual`` the
    running sum, kept in float32 or wider. The sequence after the layer is ``residual + hidden``.

    Args:
        channels (int): Channels C.
        drop_path (float): Stochastic depth rate of the mixer output. Defaults to 0.
        **mixer_kwargs: ``d_state``, ``ssm_ratio`` of :class:`BiMambaMixer`.
    """

    def __init__(self, channels: int, drop_path: float = 0., **mixer_kwargs) -> None:
        super().__init__()
        self.norm = RmsNorm(channels, eps=RMS_NORM_EPS)
        self.mixer = BiMambaMixer(channels, **mixer_kwargs)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()

    def forward(self, hidden: torch.Tensor,
                residual: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        residual = hidden if residual is None else residual + hidden
        residual = residual.to(torch.promote_types(residual.dtype, torch.float32))
        hidden = self.mixer(self.norm(residual.to(self.norm.weight.dtype)))
        return self.drop_path(hidden), residual


# ---- Vim --------------------------------------------------------------------------------------
@MODELS.register_module()
class Vim(MambaBackbone):
    """Vision Mamba (Vim) backbone for classification (mmpretrain) and dense prediction (mmdet,
    mmseg).

    Paper: "Vision Mamba: Efficient Visual Representation Learning with Bidirectional State Space
    Model", https://arxiv.org/abs/2401.09417

    Images are cut into ``patch_size`` patches (zero-padded at the bottom/right to a multiple of
    it), a learned position embedding (stored for the ``img_size`` grid, resized bicubically to
    the input's grid) is added, and a class token is inserted in the *middle* of the sequence
    (position ``h * w // 2``, as in the release) before the layers.

    Outputs, one per ``out_indices`` entry (the sequence after that layer; ``norm_f`` is applied
    to the last layer's only, when ``final_norm``, as mmpretrain's ViT does with its last
    norm):

    - ``out_type='featmap'``: the patch tokens as ``(B, C, h, w)`` at stride ``patch_size``,
      class token removed (for mmdet/mmseg necks);
    - ``out_type='cls_token'``: the class token ``(B, C)`` (for mmpretrain's ``LinearClsHead``,
      no neck; the released classifiers use the normed last one).

    Args:
        arch (str | dict): A name in ``Vim.arch_settings`` — ``'tiny'``, ``'small'``,
            ``'base'`` (the released models) or the test-only ``'atto'`` — or a dict with keys
            ``embed_dims``, ``num_layers`` and optionally ``d_state`` (16) and ``ssm_ratio``
            (2.0). Defaults to ``'tiny'``.
        patch_size (int): Patch size and stride. Defaults to 16.
        img_size (int | tuple[int, int]): Image size the position embedding is stored for (the
            released weights: 224); other sizes are resized to on the fly. Defaults to 224.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int] | int): Layers to return; negatives count from the last.
            Defaults to (-1, ).
        out_type (str): ``'featmap'`` or ``'cls_token'`` (see above). Defaults to
            ``'featmap'``.
        final_norm (bool): Build ``norm_f`` and apply it to the last layer's output.
            Defaults to True.
        drop_path_rate (float): Stochastic depth rate, rising linearly from 0 at the first
            layer to this value at the last. Defaults to 0.
        frozen_stages (int): ``k >= 1`` freezes the patch embedding, position embedding and
            class token (or registers) and layers ``0..k-1``; ``-1`` nothing; ``0`` the
            embeddings only under mmdet's or mmseg's default scope and nothing under
            mmpretrain's. Defaults to -1.
        with_cp (bool): Activation checkpointing around each layer. Defaults to False.
        init_cfg (dict | list[dict], optional): Initialisation; defaults to truncated-normal
            (std 0.02) Linear weights, with the SSM parameters initialised as Mamba does and the
            embeddings and tokens truncated-normal (std 0.02) at construction.
            ``dict(type='Pretrained', checkpoint=..., prefix=...)`` loads an mmmamba /
            mmpretrain checkpoint or an official release file (converted by
            :func:`convert_vim`, the position embedding resized to the ``img_size`` grid).
    """

    arch_settings = VIM_ARCH_SETTINGS
    arch_keys = ('embed_dims', 'num_layers', 'd_state', 'ssm_ratio')
    arch_defaults = dict(d_state=16, ssm_ratio=2.0)
    test_arch = 'atto'
    default_init_cfg = DEFAULT_INIT_CFG
    out_types: Tuple[str, ...] = ('featmap', 'cls_token')
    # parameters outside the layers that sit at layer depth 0 and freeze with the patch embedding
    token_param_names: Tuple[str, ...] = ('cls_token', 'cls_pos_embed')

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 patch_size: int = 16,
                 img_size: Union[int, Tuple[int, int]] = 224,
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = (-1, ),
                 out_type: str = 'featmap',
                 final_norm: bool = True,
                 drop_path_rate: float = 0.,
                 frozen_stages: int = -1,
                 with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = DEFAULT_INIT_CFG) -> None:
        super().__init__(init_cfg=init_cfg)
        settings = self.parse_arch(arch)
        family = type(self).__name__
        if out_type not in self.out_types:
            raise ValueError(f'out_type must be one of {self.out_types} for {family}, got '
                             f'{out_type!r}')
        self.arch = settings
        self.embed_dims = channels = settings['embed_dims']
        self.num_layers = settings['num_layers']
        if self.num_layers < 1:
            raise ValueError(f'a {family} needs at least one layer, got arch num_layers='
                             f'{self.num_layers}')
        self.patch_size, self.out_type = patch_size, out_type
        self.final_norm, self.with_cp = final_norm, with_cp

        img_h, img_w = to_2tuple(img_size)
        self.pos_embed_grid = (math.ceil(img_h / patch_size), math.ceil(img_w / patch_size))
        self.patch_embed = PatchEmbed(
            in_channels, channels, patch_size=patch_size, norm=False, channel_first=True)
        self.pos_embed = nn.Parameter(torch.zeros(1, math.prod(self.pos_embed_grid), channels))
        self.build_tokens(settings)

        depth = self.num_layers
        rates = ([drop_path_rate * i / (depth - 1) for i in range(depth)]
                 if depth > 1 else [drop_path_rate])
        self.layers = nn.ModuleList(
            VimLayer(channels, drop_path=rates[i], d_state=settings['d_state'],
                     ssm_ratio=settings['ssm_ratio']) for i in range(depth))
        if final_norm:
            self.norm_f = RmsNorm(channels, eps=RMS_NORM_EPS)
        self.build_representation(settings)

        self.out_indices = self.parse_out_indices(out_indices, depth, 'layers')
        self.set_frozen_stages(frozen_stages, depth)
        self.feature_info = [
            dict(num_chs=channels, reduction=patch_size, module=f'layers.{i}')
            for i in range(depth)
        ]
        self.out_channels = tuple(self.output_channels() for _ in self.out_indices)
        self.strides = tuple(patch_size for _ in self.out_indices)
        for name in ('pos_embed', ) + self.token_param_names:
            trunc_normal_(getattr(self, name), std=.02)
        self._freeze()

    # ---- family hooks (MambaReg overrides them) ---------------------------------------------
    def build_tokens(self, settings: dict) -> None:
        """Create the extra tokens and their position embeddings (``token_param_names``)."""
        self.cls_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims))
        self.cls_pos_embed = nn.Parameter(torch.zeros(1, 1, self.embed_dims))

    def build_representation(self, settings: dict) -> None:
        """Create the modules that turn the extra tokens into the output (none for Vim)."""

    def output_channels(self) -> int:
        return self.embed_dims

    def extra_tokens(self) -> torch.Tensor:
        """The extra tokens with their position embeddings, ``(1, T, C)``."""
        return self.cls_token + self.cls_pos_embed

    def token_positions(self, num_patches: int) -> Tuple[int, ...]:
        """Sequence positions of the extra tokens among ``num_patches`` patches."""
        return (num_patches // 2, )

    def token_output(self, tokens: torch.Tensor) -> torch.Tensor:
        """The ``out_type`` output from the extra tokens ``(B, T, C)`` of a layer."""
        return tokens[:, 0]

    # ---- forward ----------------------------------------------------------------------------
    def embed(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int], tuple]:
        """Images ``(B, in_channels, H, W)`` → the token sequence ``(B, h*w + T, C)``, the patch
        grid ``(h, w)`` and the layout (order, token positions, patch positions)."""
        x = self.patch_embed(x)  # [B, C, h, w], padded to a multiple of the patch size
        # plain ints, also under torch.jit tracing: the token layout is fixed per grid
        grid = (int(x.shape[2]), int(x.shape[3]))
        x = x.flatten(2).transpose(1, 2)  # [B, C, h, w] -> [B, h*w, C]
        x = x + resize_pos_embed(self.pos_embed, self.pos_embed_grid, grid)
        num_patches = grid[0] * grid[1]
        layout = _sequence_layout(num_patches, tuple(self.token_positions(num_patches)),
                                  x.device)
        tokens = self.extra_tokens().expand(x.shape[0], -1, -1).to(x.dtype)
        return torch.cat([x, tokens], dim=1).index_select(1, layout[0]), grid, layout

    def format_output(self, index: int, x: torch.Tensor, grid: Tuple[int, int],
                      layout: tuple) -> torch.Tensor:
        """The sequence after layer ``index`` ``(B, L, C)`` as returned (see the class doc)."""
        if index == self.num_layers - 1 and self.final_norm:
            x = self.norm_f(x.to(self.norm_f.weight.dtype))
        if self.out_type == 'featmap':
            x = x.index_select(1, layout[2])  # the patches, raster order
            return x.transpose(1, 2).reshape(x.shape[0], -1, *grid)  # -> [B, C, h, w]
        return self.token_output(x.index_select(1, layout[1]))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Forward images.

        Args:
            x (torch.Tensor): Images of shape (B, in_channels, H, W), any H and W.

        Returns:
            tuple[torch.Tensor]: One entry per ``out_indices`` (see the class doc).
        """
        hidden, grid, layout = self.embed(x)
        residual = None
        outs = []
        # layers after the last one asked for would not change any output: they are skipped
        for i, layer in enumerate(self.layers[:self.out_indices[-1] + 1]):
            if self.with_cp and torch.is_grad_enabled():
                hidden, residual = cp.checkpoint(layer, hidden, residual, use_reentrant=False)
            else:
                hidden, residual = layer(hidden, residual)
            if i in self.out_indices:
                outs.append(self.format_output(i, residual + hidden, grid, layout))
        return tuple(outs)

    # ---- frozen stages, layer depth, weights ------------------------------------------------
    def stage_prefixes(self, num_stages: int) -> Tuple[str, ...]:
        embeddings = ('patch_embed.', 'pos_embed.') + tuple(
            f'{name}.' for name in self.token_param_names)
        return embeddings + tuple(f'layers.{i}.' for i in range(num_stages))

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """Layer id of a parameter, for mmpretrain's ``LearningRateDecayOptimWrapperConstructor``.

        The patch embedding, position embedding and extra tokens are layer 0, layer ``i`` is
        ``i + 1``; ``norm_f``, the register reduction and everything outside the backbone (the
        head) come last (mmpretrain's ViT convention).

        Args:
            param_name (str): Parameter name, e.g. ``'backbone.layers.3.mixer.in_proj.weight'``.
            prefix (str): Prefix of the backbone's parameters in ``param_name``.
                Defaults to ''.

        Returns:
            tuple[int, int]: The layer id and the number of layer ids (``num_layers + 2``).
        """
        num_layers = self.num_layers + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        name = param_name[len(prefix):]
        if name.startswith('patch_embed.') or name in ('pos_embed', ) + self.token_param_names:
            return 0, num_layers
        if name.startswith('layers.'):
            return int(name.split('.')[1]) + 1, num_layers
        return num_layers - 1, num_layers

    def pretrained_converter(self):
        return functools.partial(type(self).converter, grid=self.pos_embed_grid)


# ---- Mamba-Reg --------------------------------------------------------------------------------
@MODELS.register_module()
class MambaReg(Vim):
    """Mamba-Reg (Mamba®): Vim's layers with register tokens spread evenly through the patch
    sequence instead of one class token.

    Paper: "Mamba-R: Vision Mamba ALSO Needs Registers", https://arxiv.org/abs/2405.14858

    With ``N`` patches and ``R`` registers, every block of ``N // (R + 1)`` patches is followed
    by one register (the remaining patches after the last), as in the release. Outputs as
    :class:`Vim`'s, with ``out_type='registers'`` instead of ``'cls_token'``: the ``R``
    registers, each reduced by ``register_proj`` (C → C / register_reduce, no bias),
    concatenated and normed by ``register_norm`` (RMSNorm), ``(B, R * C / register_reduce)``;
    for ``register_reduce=1`` (tiny) the plain concatenation ``(B, R * C)``. Those two modules
    exist only with ``out_type='registers'``.

    Args:
        arch (str | dict): ``'tiny'``, ``'small'``, ``'base'``, ``'large'`` (the released
            models; large has 48 layers) or the test-only ``'atto'``, or a dict with the keys of
            :class:`Vim`'s plus ``num_registers`` and optionally ``register_reduce`` (1).
            Defaults to ``'small'``.
        out_type (str): ``'featmap'`` or ``'registers'``. Defaults to ``'featmap'``.
        **kwargs: The other arguments of :class:`Vim`.
    """

    arch_settings = MAMBA_REG_ARCH_SETTINGS
    arch_keys = Vim.arch_keys + ('num_registers', 'register_reduce')
    arch_defaults = dict(Vim.arch_defaults, register_reduce=1)
    out_types = ('featmap', 'registers')
    token_param_names = ('registers', 'register_pos_embed')

    def __init__(self, arch: Union[str, dict] = 'small', out_type: str = 'featmap',
                 **kwargs) -> None:
        super().__init__(arch=arch, out_type=out_type, **kwargs)

    def build_tokens(self, settings: dict) -> None:
        num, reduce = settings['num_registers'], settings['register_reduce']
        if num < 1 or reduce < 1 or self.embed_dims % reduce:
            raise ValueError(f'a MambaReg arch needs num_registers >= 1 and a register_reduce '
                             f'that divides embed_dims={self.embed_dims}, got num_registers='
                             f'{num}, register_reduce={reduce}')
        self.num_registers, self.register_reduce = num, reduce
        self.registers = nn.Parameter(torch.zeros(1, num, self.embed_dims))
        self.register_pos_embed = nn.Parameter(torch.zeros(1, num, self.embed_dims))

    def build_representation(self, settings: dict) -> None:
        self.register_proj = self.register_norm = None
        if self.out_type == 'registers' and self.register_reduce > 1:
            reduced = self.embed_dims // self.register_reduce
            self.register_proj = nn.Linear(self.embed_dims, reduced, bias=False)
            self.register_norm = RmsNorm(self.num_registers * reduced, eps=RMS_NORM_EPS)

    def output_channels(self) -> int:
        if self.out_type == 'registers':
            return self.num_registers * self.embed_dims // self.register_reduce
        return self.embed_dims

    def extra_tokens(self) -> torch.Tensor:
        return self.registers + self.register_pos_embed

    def token_positions(self, num_patches: int) -> Tuple[int, ...]:
        block = num_patches // (self.num_registers + 1)
        return tuple(block * (r + 1) + r for r in range(self.num_registers))

    def token_output(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.register_proj is not None:
            tokens = self.register_proj(tokens)  # [B, R, C] -> [B, R, C / register_reduce]
        tokens = tokens.flatten(1)
        if self.register_norm is not None:
            tokens = self.register_norm(tokens.to(self.register_norm.weight.dtype))
        return tokens


# ---- official release checkpoints -------------------------------------------------------------
# Per-direction mixer tensors of the release → our stacked ones: (forward key, backward key,
# ours, how the two are joined).
_MIXER_PAIRS = [
    ('conv1d.weight', 'conv1d_b.weight', 'conv1d.weight', torch.cat),
    ('conv1d.bias', 'conv1d_b.bias', 'conv1d.bias', torch.cat),
    ('x_proj.weight', 'x_proj_b.weight', 'ssm.x_proj_weight', torch.stack),
    ('dt_proj.weight', 'dt_proj_b.weight', 'ssm.dt_proj_weight', torch.stack),
    ('dt_proj.bias', 'dt_proj_b.bias', 'ssm.dt_proj_bias', torch.stack),
    ('A_log', 'A_b_log', 'ssm.A_log', torch.cat),
    ('D', 'D_b', 'ssm.D', torch.cat),
]
_MIXER_SHARED = ('in_proj.weight', 'out_proj.weight')
_RELEASE_MARK = re.compile(r'^layers\.\d+\.mixer\.x_proj\.weight$')


def _is_pos_embed_key(key: str) -> bool:
    return key == 'pos_embed' or key.endswith('backbone.pos_embed')


def _resize_pos_embeds(state_dict: Dict[str, torch.Tensor],
                       grid: Tuple[int, int]) -> Dict[str, torch.Tensor]:
    """Resize the (square) patch position embeddings of ``state_dict`` to ``grid``; returns
    ``state_dict`` itself when none needs it."""
    resized = {}
    for key, value in state_dict.items():
        if not (_is_pos_embed_key(key) and isinstance(value, torch.Tensor) and value.dim() == 3
                and value.shape[1] != grid[0] * grid[1]):
            continue
        side = math.isqrt(value.shape[1])
        if side * side != value.shape[1]:
            raise ValueError(f'cannot resize {key!r} of shape {tuple(value.shape)} to the '
                             f'{grid[0]}x{grid[1]} patch grid: {value.shape[1]} positions are '
                             f'not a square grid; build the model with the img_size it was '
                             f'trained at')
        resized[key] = resize_pos_embed(value, (side, side), grid)
    if not resized:
        return state_dict
    return OrderedDict((k, resized.get(k, v)) for k, v in state_dict.items())


def _convert_release(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    mamba_reg = 'pos_embed_cls' in state_dict
    family = 'Mamba-Reg' if mamba_reg else 'Vim'
    converted = OrderedDict()
    mixers: Dict[int, Dict[str, torch.Tensor]] = {}
    for key, value in state_dict.items():
        match = re.match(r'layers\.(\d+)\.mixer\.(.+)$', key)
        if match:
            mixers.setdefault(int(match.group(1)), {})[match.group(2)] = value
            continue
        if re.match(r'(patch_embed\.proj\.(weight|bias)|layers\.\d+\.norm\.weight|'
                    r'norm_f\.weight)$', key):
            new_key = key
        elif key.startswith('head.'):
            converted['head.fc.' + key[len('head.'):]] = value
            continue
        elif key == 'cls_token':
            new_key = 'registers' if mamba_reg else 'cls_token'
        elif key == 'pos_embed_cls':
            new_key = 'register_pos_embed'
        elif key == 'pos_embed' and mamba_reg:  # the patches only
            new_key = key
        elif key == 'pos_embed':  # the class token's entry sits in the middle
            middle = (value.shape[1] - 1) // 2
            converted['backbone.cls_pos_embed'] = value[:, middle:middle + 1]
            converted['backbone.pos_embed'] = torch.cat(
                [value[:, :middle], value[:, middle + 1:]], dim=1)
            continue
        elif key == 'neck.weight' and mamba_reg:
            new_key = 'register_proj.weight'
        elif key == 'norm_neck.weight' and mamba_reg:
            new_key = 'register_norm.weight'
        else:
            raise ValueError(f'unexpected key {key!r} in an official {family} checkpoint')
        converted['backbone.' + new_key] = value

    for layer, tensors in sorted(mixers.items()):
        prefix = f'backbone.layers.{layer}.mixer.'
        known = set(_MIXER_SHARED) | {k for pair in _MIXER_PAIRS for k in pair[:2]}
        unknown = sorted(set(tensors) - known)
        if unknown:
            raise ValueError(f'unexpected key {f"layers.{layer}.mixer.{unknown[0]}"!r} in an '
                             f'official {family} checkpoint')
        for name in _MIXER_SHARED:
            if name in tensors:
                converted[prefix + name] = tensors[name]
        for forward_key, backward_key, ours, join in _MIXER_PAIRS:
            if forward_key in tensors and backward_key in tensors:
                converted[prefix + ours] = join([tensors[forward_key], tensors[backward_key]])
            elif forward_key in tensors or backward_key in tensors:
                have, lack = ((forward_key, backward_key) if forward_key in tensors else
                              (backward_key, forward_key))
                raise ValueError(
                    f'layer {layer} of the {family} checkpoint has mixer.{have} but not '
                    f'mixer.{lack}: only bidirectional ("v2") mixers, with their own forward and '
                    f'backward parameters, can be converted')
    return converted


def convert_vim(state_dict: Dict[str, torch.Tensor],
                grid: Optional[Tuple[int, int]] = None) -> Dict[str, torch.Tensor]:
    """Map an official Vim or Mamba-Reg checkpoint to mmmamba's keys; mmmamba dicts come back as
    they are (resized to ``grid`` if needed).

    Vim (github.com/hustvl/Vim) stores ``patch_embed.proj``, ``cls_token``, ``pos_embed``
    ``(1, N + 1, C)`` whose entry ``N // 2`` belongs to the middle class token,
    ``layers.{i}.norm`` and ``layers.{i}.mixer.*`` with one set of ``conv1d``, ``x_proj``,
    ``dt_proj``, ``A_log``, ``D`` per direction (backward: ``conv1d_b``, ``x_proj_b``,
    ``dt_proj_b``, ``A_b_log``, ``D_b``), ``norm_f`` and ``head``. Mamba-Reg
    (github.com/wangf3014/Mamba-Reg) has the same layers, ``cls_token`` ``(1, R, C)`` for the
    registers with ``pos_embed_cls``, ``pos_embed`` ``(1, N, C)`` for the patches, and for the
    reduced sizes ``neck`` and ``norm_neck``. The result has the layout of an mmpretrain
    ``ImageClassifier`` with a ``Vim`` (``out_type='cls_token'``) or ``MambaReg``
    (``out_type='registers'``) backbone and a ``LinearClsHead``: ``backbone.*`` and
    ``head.fc.*``; the two directions' tensors are stacked (forward first).

    Args:
        state_dict (dict[str, torch.Tensor]): A flat state dict.
        grid (tuple[int, int], optional): The patch grid of the target model's position
            embedding; a square ``pos_embed`` of another size is resized to it (bicubic).
            Defaults to None: kept as it is.

    Returns:
        dict[str, torch.Tensor]: The converted state dict, or ``state_dict`` itself when it has
        mmmamba keys and needs no resizing.
    """
    if any(_RELEASE_MARK.match(k) for k in state_dict):
        state_dict = _convert_release(state_dict)
    return state_dict if grid is None else _resize_pos_embeds(state_dict, tuple(grid))


Vim.converter = staticmethod(convert_vim)
