"""Activation maps of our backbones, per layer, for Binary-AUC and heat-map overlays."""
import logging
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.structures import PixelData
from torch import Tensor

from mmmamba.registry import MODELS
from .hidden_attention import capture_mixer_inputs, mixer_hidden_attention

__all__ = ['activation_maps', 'ActivationMapper', 'MAP_SOURCES', 'load_backbone', 'load_image']

MAP_SOURCES = ('feature_norm', 'token_attention')


def _layer_modules(backbone: nn.Module) -> Dict[str, nn.Module]:
    from mmmamba.models.backbones.vim import Vim
    if isinstance(backbone, Vim):
        return {f'layers.{i}': layer for i, layer in enumerate(backbone.layers)}
    if hasattr(backbone, 'stages'):  # VMamba, MambaOut: every block of every stage
        return {
            f'stages.{s}.blocks.{j}': block
            for s, stage in enumerate(backbone.stages) for j, block in enumerate(stage.blocks)
        }
    raise TypeError(f'activation maps support Vim, MambaReg, VMamba and MambaOut backbones, got '
                    f'{type(backbone).__name__}')


@torch.no_grad()
def activation_maps(backbone: nn.Module,
                    images: Tensor,
                    source: str = 'feature_norm',
                    layers: Optional[Sequence[str]] = None,
                    chunk_size: int = 16) -> Dict[str, Tensor]:
    """One ``(batch, h, w)`` map per layer of ``backbone`` on ``images``.

    Args:
        backbone (nn.Module): A Vim / MambaReg / VMamba / MambaOut backbone.
        images (Tensor): ``(batch, 3, H, W)``, normalised as the backbone expects.
        source (str): ``'feature_norm'``: the L2 norm over channels of the layer's output
            tokens (Vim: the sequence ``residual + hidden`` after the layer, patches only;
            VMamba/MambaOut: the block's output map). ``'token_attention'`` (Vim, MambaReg):
            the extra tokens' rows (class token; the mean over registers) of the layer's
            hidden attention ``M`` averaged over channels (see
            :mod:`mmmamba.analysis.hidden_attention`), at the patch columns. Defaults to
            ``'feature_norm'``.
        layers (Sequence[str], optional): Layer names (``'layers.3'``,
            ``'stages.2.blocks.0'``); all by default.
        chunk_size (int): See :func:`~mmmamba.analysis.ssm_matrix`. Defaults to 16.

    Returns:
        dict[str, Tensor]: Layer name → ``(batch, h, w)`` float32 maps.
    """
    from mmmamba.models.backbones.vim import Vim, _sequence_layout
    if source not in MAP_SOURCES:
        raise ValueError(f'source must be one of {MAP_SOURCES}, got {source!r}')
    modules = _layer_modules(backbone)
    names = list(modules) if layers is None else list(layers)
    unknown = [n for n in names if n not in modules]
    if unknown:
        raise KeyError(f'no layer(s) {unknown} in {type(backbone).__name__}; its layers are '
                       f'{list(modules)[:3]} ... {list(modules)[-1]}')
    is_vim = isinstance(backbone, Vim)
    if source == 'token_attention' and not is_vim:
        raise ValueError(f"source='token_attention' needs a class token or registers (Vim, "
                         f"MambaReg); {type(backbone).__name__} has none: use 'feature_norm'")
    grid = (-(-images.shape[-2] // getattr(backbone, 'patch_size', 1)),
            -(-images.shape[-1] // getattr(backbone, 'patch_size', 1)))
    outputs: Dict[str, Tensor] = {}
    handles = []
    for name in names:
        def hook(module, args, output, name=name):
            if is_vim:
                hidden, residual = output
                outputs[name] = (residual + hidden).float()
            else:
                outputs[name] = output.float()
        handles.append(modules[name].register_forward_hook(hook))
    mixers = {n: modules[n].mixer for n in names} if source == 'token_attention' else {}
    try:
        with capture_mixer_inputs(mixers) as records:
            run_all_layers(backbone, images)
    finally:
        for handle in handles:
            handle.remove()
    maps = {}
    if is_vim:  # the token layout is the same for every layer
        num_patches = grid[0] * grid[1]
        _, tokens, patches = _sequence_layout(
            num_patches, tuple(backbone.token_positions(num_patches)), images.device)
    for name in names:
        if is_vim:
            if source == 'feature_norm':
                value = outputs[name].index_select(1, patches).norm(dim=-1)
            else:
                M = mixer_hidden_attention(
                    mixers[name], records[name].scan_input, chunk_size=chunk_size,
                    reduce='mean').matrix  # (batch, L, L)
                value = M.index_select(1, tokens).index_select(2, patches).mean(1)
            maps[name] = value.reshape(-1, *grid)
        else:
            out = outputs[name]
            channel_first = _is_channel_first(modules[name])
            maps[name] = out.norm(dim=1 if channel_first else -1)
    return maps


def _is_channel_first(block: nn.Module) -> bool:
    flag = getattr(getattr(block, 'op', None), 'channel_first', None)
    if flag is not None:
        return flag
    return False  # MambaOut's GatedCNNBlocks run channels-last (B, H, W, C)


def run_all_layers(backbone: nn.Module, images: Tensor) -> None:
    """Forward with every layer run (Vim skips layers after its last output)."""
    from mmmamba.models.backbones.vim import Vim
    if isinstance(backbone, Vim):
        saved = backbone.out_indices
        backbone.out_indices = (backbone.num_layers - 1, )
        try:
            backbone(images)
        finally:
            backbone.out_indices = saved
    else:
        backbone(images)


@MODELS.register_module()
class ActivationMapper(BaseModel):
    """A backbone that predicts one layer's activation map per image, for
    :class:`~mmmamba.analysis.BinaryAUCMetric` in a test loop.

    ``predict`` stores the map ``(1, h, w)`` as ``activation_map`` (a ``PixelData``) in each
    data sample; nothing is resized here (the metric resizes to the mask).

    Args:
        backbone (dict): Backbone config (e.g. ``dict(type='mmmamba.Vim', arch='tiny',
            init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.'))``).
        layer (str): Layer name (see :func:`activation_maps`).
        source (str): ``'feature_norm'`` or ``'token_attention'``. Defaults to
            ``'feature_norm'``.
        data_preprocessor (dict, optional): E.g. mmseg's ``SegDataPreProcessor``.
    """

    def __init__(self, backbone: dict, layer: str, source: str = 'feature_norm',
                 data_preprocessor: Optional[dict] = None, init_cfg=None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.layer, self.source = layer, source

    def forward(self, inputs: Tensor, data_samples: Optional[List] = None,
                mode: str = 'predict'):
        if mode not in ('predict', 'tensor'):
            raise ValueError(f"ActivationMapper only predicts maps (mode='predict' or "
                             f"'tensor'), got mode={mode!r}")
        maps = activation_maps(self.backbone, inputs, self.source, [self.layer])[self.layer]
        if mode == 'tensor' or data_samples is None:
            return maps
        for sample, value in zip(data_samples, maps):
            sample.activation_map = PixelData(data=value[None])
        return data_samples


IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def load_backbone(config: Optional[str] = None,
                  checkpoint: Optional[str] = None,
                  family: str = 'Vim',
                  arch: str = 'atto',
                  **backbone_kwargs):
    """A backbone and its input normalisation, for the analysis tools.

    Args:
        config (str, optional): An mmdet / mmseg / mmpretrain config whose ``model`` has a
            ``backbone``; built under its ``default_scope``, and ``checkpoint`` (if given)
            loaded into the whole model. Without a config: a random-init (or ``checkpoint``
            with ``backbone.``-prefixed or bare keys) ``mmmamba.<family>`` of ``arch``.
        checkpoint (str, optional): Weights file.
        family (str): ``'Vim'``, ``'MambaReg'``, ``'VMamba'`` or ``'MambaOut'`` (no config).
        arch (str): Its arch name (no config). Defaults to ``'atto'``.
        **backbone_kwargs: More backbone arguments (no config), e.g. ``img_size``.

    Returns:
        tuple: ``(backbone in eval mode, mean, std)``, mean/std per RGB channel in 0..255.
    """
    from mmengine.config import Config
    from mmengine.registry import MODELS as ROOT_MODELS
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    if config is not None:
        cfg = Config.fromfile(config)
        init_default_scope(cfg.get('default_scope', 'mmmamba'))
        model = ROOT_MODELS.build(cfg.model)
        if checkpoint is not None:
            load_checkpoint(model, checkpoint, map_location='cpu')
        if not hasattr(model, 'backbone'):
            raise ValueError(f'the model of {config} ({type(model).__name__}) has no backbone')
        preprocessor = cfg.model.get('data_preprocessor') or {}
        mean = tuple(preprocessor.get('mean', mean))
        std = tuple(preprocessor.get('std', std))
        return model.backbone.eval(), mean, std
    backbone = MODELS.build(dict(type=family, arch=arch, **backbone_kwargs))
    if checkpoint is None:
        from mmengine.logging import MMLogger
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)  # init_weights lists every parameter at INFO
        try:
            backbone.init_weights()
        finally:
            logger.setLevel(level)
    else:
        load_checkpoint(backbone, checkpoint, map_location='cpu',
                        revise_keys=[(r'^backbone\.', '')])
    return backbone.eval(), mean, std


def load_image(path: Optional[str], size: Tuple[int, int], mean, std,
               seed: int = 0) -> Tuple[Tensor, np.ndarray]:
    """An RGB image resized to ``size = (H, W)`` (bilinear) as a normalised ``(1, 3, H, W)``
    tensor and as uint8 ``(H, W, 3)`` for overlays; uniform noise when ``path`` is None."""
    import mmcv
    if path is None:
        rgb = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    else:
        rgb = mmcv.imread(path, channel_order='rgb')
        if rgb is None:
            raise FileNotFoundError(f'cannot read an image from {path!r}')
        rgb = mmcv.imresize(rgb, (size[1], size[0]), interpolation='bilinear')
    x = torch.from_numpy(rgb).float().permute(2, 0, 1)[None]  # [1, H, W, 3] -> [1, 3, H, W]
    x = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    return x, rgb
