"""A simple feature pyramid for isotropic (plain, single-scale) backbones such as Vim.

Li et al., "Exploring Plain Vision Transformer Backbones for Object Detection" (ViTDet),
https://arxiv.org/abs/2203.16527, Sec. 3: the pyramid is built from the last stride-16 map
alone, by deconvolution for strides 4 and 8 and pooling for stride 32, with no top-down or
lateral fusion. The output is four NCHW maps at strides 4/8/16/32, which is what mmseg's
UPerHead takes and what mmdet's FPN takes as its input (see :class:`SimpleFeaturePyramid`).
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer, build_norm_layer
from mmengine.model import BaseModule

from mmmamba.models.layers import LayerNorm2d
from mmmamba.registry import MODELS

# The LayerNorm over channels of NCHW maps that ViTDet's pyramid uses ("LN" in detectron2's
# get_norm), for norm_cfg=dict(type='mmmamba.LN2d'); mmcv registers no 2-D LayerNorm of its own.
MODELS.register_module(name='LN2d', module=LayerNorm2d)

SCALES = (4.0, 2.0, 1.0, 0.5)


@MODELS.register_module()
class SimpleFeaturePyramid(BaseModule):
    """Turn stride-16 maps of a plain backbone into a pyramid of strides 4, 8, 16 and 32.

    Per output scale (relative to the input map): ×4 is two 2×2 stride-2 transposed
    convolutions (``C → C/2 → C/4``) with a norm and GELU between them; ×2 one transposed
    convolution (``C → C/2``); ×1 the map itself; ×0.5 a 2×2 stride-2 max-pool. Each level then
    goes through a 1×1 and a 3×3 convolution, each followed by a norm (no activation), to
    ``out_channels``. The pooled level uses ``ceil_mode``, so it covers the whole input like a
    padded stride-2 convolution: a 14×15 map gives 56×60, 28×30, 14×15 and 7×8.

    Input: a tuple/list of ``(B, in_channels, H, W)`` maps, either one map (all levels come from
    it, as in ViTDet) or one per scale (map ``i`` makes level ``i``, as BEiT-style segmentation
    does with outputs of several layers). Output: a tuple of ``len(scales)`` maps.

    Where it goes:

    - mmseg: as the segmentor's ``neck``, before ``UPerHead(in_channels=[out_channels] * 4)``.
    - mmdet: in front of mmdet's ``FPN`` as a list of necks (mmengine builds a list as
      ``nn.Sequential``)::

          neck=[
              dict(type='mmmamba.SimpleFeaturePyramid', in_channels=384, out_channels=256),
              dict(type='FPN', in_channels=[256] * 4, out_channels=256, num_outs=5),
          ]

      FPN adds the top-down fusion and the stride-64 level (``num_outs=5``) that the RPN
      anchors of mmdet's Mask R-CNN expect; this module does not make a fifth level itself.

    Args:
        in_channels (int): Channels of the input map(s).
        out_channels (int): Channels of every output level.
        scales (Sequence[float]): Output scales relative to the input, each one of 4, 2, 1 and
            0.5. Defaults to ``(4, 2, 1, 0.5)`` (strides 4/8/16/32 for a stride-16 input).
        norm_cfg (dict): Norm after the first transposed convolution of ×4 and after each
            output convolution, built by mmcv's ``build_norm_layer``. Defaults to
            ``dict(type='mmmamba.LN2d')`` (ViTDet's LayerNorm over channels); ``GN`` or
            ``SyncBN`` work as well.
        act_cfg (dict): Activation between the two transposed convolutions of ×4. Defaults to
            ``dict(type='GELU')``.
        init_cfg (dict | list[dict], optional): Initialisation. Defaults to None (the layers'
            own: Kaiming for ``ConvModule``, PyTorch's default for transposed convolutions).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 scales: Sequence[float] = SCALES,
                 norm_cfg: dict = dict(type='mmmamba.LN2d'),
                 act_cfg: dict = dict(type='GELU'),
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(in_channels, int) or in_channels <= 0:
            raise ValueError(f'SimpleFeaturePyramid in_channels must be a positive int (the '
                             f'channels of the backbone map), got {in_channels!r}')
        if not scales or any(s not in SCALES for s in scales):
            raise ValueError(f'SimpleFeaturePyramid scales must be taken from {list(SCALES)}, '
                             f'got {list(scales)}')
        upsampling = [s for s in scales if s > 1]
        if upsampling and in_channels % int(max(upsampling)) != 0:
            raise ValueError(f'SimpleFeaturePyramid: in_channels={in_channels} must be divisible '
                             f'by {int(max(upsampling))} for scale {max(upsampling)} (the '
                             f'transposed convolutions divide the channels by the scale)')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.scales = tuple(float(s) for s in scales)

        self.resamplers = nn.ModuleList()
        self.lateral_convs = nn.ModuleList()
        self.output_convs = nn.ModuleList()
        for scale in self.scales:
            resampler, channels = self._make_resampler(scale, in_channels, norm_cfg, act_cfg)
            self.resamplers.append(resampler)
            self.lateral_convs.append(
                ConvModule(channels, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None))
            self.output_convs.append(
                ConvModule(out_channels, out_channels, 3, padding=1, norm_cfg=norm_cfg,
                           act_cfg=None))

    @staticmethod
    def _make_resampler(scale: float, channels: int, norm_cfg: dict,
                        act_cfg: dict) -> Tuple[nn.Module, int]:
        """The module that brings a map to ``scale`` and its output channels."""
        if scale == 4.0:
            return nn.Sequential(
                nn.ConvTranspose2d(channels, channels // 2, kernel_size=2, stride=2),
                build_norm_layer(norm_cfg, channels // 2)[1],
                build_activation_layer(act_cfg),
                nn.ConvTranspose2d(channels // 2, channels // 4, kernel_size=2, stride=2),
            ), channels // 4
        if scale == 2.0:
            return nn.ConvTranspose2d(channels, channels // 2, kernel_size=2, stride=2), \
                channels // 2
        if scale == 1.0:
            return nn.Identity(), channels
        return nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True), channels

    def forward(self, inputs: Union[Sequence[torch.Tensor], torch.Tensor]
                ) -> Tuple[torch.Tensor, ...]:
        """Build the pyramid.

        Args:
            inputs (Sequence[torch.Tensor]): One ``(B, in_channels, H, W)`` map, or one per
                scale.

        Returns:
            tuple[torch.Tensor]: One ``(B, out_channels, H * s, W * s)`` map per scale ``s``
            (``ceil(H / 2)`` for ``s = 0.5``).
        """
        if isinstance(inputs, torch.Tensor):
            raise TypeError('SimpleFeaturePyramid takes a tuple/list of maps (what a backbone '
                            f'returns), got a single tensor of shape {tuple(inputs.shape)}; '
                            'wrap it as (x, )')
        if len(inputs) not in (1, len(self.scales)):
            raise ValueError(f'SimpleFeaturePyramid takes 1 map or one per scale '
                             f'({len(self.scales)}), got {len(inputs)} maps; set the '
                             f'backbone\'s out_indices accordingly')
        for x in inputs:
            if x.dim() != 4 or x.shape[1] != self.in_channels:
                raise ValueError(f'SimpleFeaturePyramid expects (B, {self.in_channels}, H, W) '
                                 f'maps (in_channels={self.in_channels}), got shapes '
                                 f'{[tuple(t.shape) for t in inputs]}')
        outs = []
        for i, (resampler, lateral, output) in enumerate(
                zip(self.resamplers, self.lateral_convs, self.output_convs)):
            x = inputs[0] if len(inputs) == 1 else inputs[i]
            outs.append(output(lateral(resampler(x))))
        return tuple(outs)
