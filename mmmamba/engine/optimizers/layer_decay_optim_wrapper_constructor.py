"""Layer-wise learning-rate decay for detectors, segmentors and classifiers on mmmamba backbones.

mmpretrain's ``LearningRateDecayOptimWrapperConstructor`` gives each parameter the learning rate
``lr * layer_decay_rate ** (num_layers - 1 - layer_id)`` with ``layer_id`` from the model's
``get_layer_depth``, and sets weight decay by ``paramwise_cfg`` (``custom_keys`` decay_mult,
``norm_decay_mult``, ``bias_decay_mult``, ``flat_decay_mult`` for 1-D parameters). It asks the
*model* for ``get_layer_depth``, which only mmpretrain's classifiers have; mmdet's detectors and
mmseg's segmentors have none. This subclass asks the model's **backbone** instead (parameters
under ``backbone.``; everything else, necks and heads, gets the top id and so the full lr), and
also exempts from weight decay the parameters a module marks with ``_no_weight_decay = True``
(mamba-ssm's convention, used by our SSMs' ``A_log`` and ``D``), which mmpretrain's constructor
ignores.
"""
from typing import Callable, List, Optional, Tuple

import torch.nn as nn
from mmengine.logging import MMLogger
from mmpretrain.engine.optimizers import LearningRateDecayOptimWrapperConstructor

from mmmamba.registry import OPTIM_WRAPPER_CONSTRUCTORS


def backbone_layer_depth(model: nn.Module) -> Callable[[str], Tuple[int, int]]:
    """``param_name -> (layer_id, num_layers)`` for ``model``, from its backbone's
    ``get_layer_depth`` (prefix ``backbone.``), or from the model's own when it is a backbone."""
    backbone = getattr(model, 'backbone', None)
    if isinstance(backbone, nn.Module) and hasattr(backbone, 'get_layer_depth'):
        return lambda name: backbone.get_layer_depth(name, prefix='backbone.')
    if backbone is None and hasattr(model, 'get_layer_depth'):
        return model.get_layer_depth
    what = (f'its backbone {type(backbone).__name__} has no get_layer_depth'
            if backbone is not None else 'it has no backbone and no get_layer_depth')
    raise TypeError(f'LayerDecayOptimWrapperConstructor needs a model whose backbone has '
                    f'get_layer_depth (the mmmamba backbones, mmpretrain ViT/Swin/ConvNeXt); '
                    f'got {type(model).__name__}, and {what}')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(LearningRateDecayOptimWrapperConstructor):
    """Layer-wise lr decay by the backbone's ``get_layer_depth``, for any task.

    Example (in a det/seg/cls config)::

        optim_wrapper = dict(
            type='AmpOptimWrapper',
            constructor='mmmamba.LayerDecayOptimWrapperConstructor',
            optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
            paramwise_cfg=dict(layer_decay_rate=0.9, flat_decay_mult=0.,
                               custom_keys={'pos_embed': dict(decay_mult=0.)}))

    A parameter of backbone layer ``i`` (of ``n`` layer ids) gets ``lr * rate ** (n - 1 - i)``;
    parameters outside the backbone get ``lr``. Weight decay follows mmpretrain's rules (first
    matching ``custom_keys`` entry, then norm, bias, 1-D), and is 0 for parameters marked
    ``_no_weight_decay``. Only ``decay_mult`` of a ``custom_keys`` entry has an effect: the lr
    of every parameter is set by the decay rule.

    Args:
        optim_wrapper_cfg (dict): The optimizer wrapper config, with ``optimizer``.
        paramwise_cfg (dict): Must hold ``layer_decay_rate`` (in ``(0, 1]``); optionally
            ``custom_keys``, ``norm_decay_mult``, ``bias_decay_mult``, ``flat_decay_mult``.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        # Without paramwise_cfg, mmengine's __call__ skips add_params: no decay would apply.
        rate = self.paramwise_cfg.get('layer_decay_rate')
        if rate is None:
            raise ValueError('LayerDecayOptimWrapperConstructor needs '
                             'paramwise_cfg=dict(layer_decay_rate=...); got paramwise_cfg='
                             f'{paramwise_cfg!r}')
        if not 0 < rate <= 1:
            raise ValueError(f'layer_decay_rate must be in (0, 1], got {rate!r}')

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   get_layer_depth: Optional[Callable] = None,
                   **kwargs) -> None:
        """Add the parameter groups of ``module`` (see mmpretrain's constructor).

        The top call (``prefix=''``, the whole model) resolves ``get_layer_depth`` through the
        backbone; the nested calls receive it from there.
        """
        if get_layer_depth is None:
            get_layer_depth = backbone_layer_depth(module)
            MMLogger.get_current_instance().info(
                f'layer-wise lr decay: rate {self.paramwise_cfg["layer_decay_rate"]}, layer ids '
                f'from {type(getattr(module, "backbone", module)).__name__}.get_layer_depth')
        super().add_params(params, module, prefix=prefix, get_layer_depth=get_layer_depth)
        # After each subtree, so the per-layer table the top call logs shows the final values.
        self._exempt_no_weight_decay(params)

    def _exempt_no_weight_decay(self, params: List[dict]) -> None:
        if self.base_wd is None:
            return
        for group in params:
            if getattr(group['params'][0], '_no_weight_decay', False):
                group['weight_decay'] = 0.
