"""What every mmmamba backbone shares: arch parsing, ``out_indices``, frozen stages, pretrained
loading through a family converter, and layer ids for layer-wise learning-rate decay.

:class:`MambaBackbone` is the base of all families (hierarchical and isotropic);
:class:`HierarchicalBackbone` adds the stem → stages → per-output-norm layout of MambaOut and
VMamba. A family subclass declares its ``arch_settings`` (with a test-only size named in
``test_arch``: the contract tests in ``tests/test_models/test_backbones/test_contract.py`` run on
every registered subclass that has one), its default ``init_cfg`` and its ``converter``.
"""
import copy
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from mmengine.registry import DefaultScope

from mmmamba.utils.checkpoint import load_pretrained

def frozen_stem_at_zero() -> bool:
    """Whether ``frozen_stages=0`` freezes the stem, by the default scope the model is built
    under: ``True`` for mmdet/mmseg (ResNet/Swin convention), ``False`` for mmpretrain
    (ConvNeXt convention). Both conventions freeze the stem and stages 0..k-1 for k >= 1.
    Without a default scope, mmdet's convention applies."""
    scope = DefaultScope.get_current_instance()
    return scope is None or scope.scope_name != 'mmpretrain'


class MambaBackbone(BaseModule):
    """Base of mmmamba's backbones.

    Subclasses set ``arch_settings`` (name → dict), ``arch_keys`` (the keys an arch dict must
    have; ``optional_arch_keys`` may be left out and take the values in ``arch_defaults``),
    ``test_arch`` (a tiny size for tests), ``default_init_cfg`` and ``converter`` (a pure
    function mapping foreign checkpoint layouts to ours), set ``feature_info`` (one dict with
    ``num_chs``, ``reduction`` and ``module`` per stage or layer ``out_indices`` can name),
    ``out_indices``, ``out_channels`` and ``strides``, call :meth:`set_frozen_stages` and
    ``self._freeze()`` at the end of ``__init__``, and implement :meth:`stage_prefixes` and
    :meth:`get_layer_depth`.

    Args:
        init_cfg (dict | list[dict], optional): Initialisation. A ``dict(type='Pretrained',
            checkpoint=..., prefix=...)`` entry loads a checkpoint through the family's converter
            (see :meth:`init_weights`); the other entries, or ``default_init_cfg``, initialise
            what the checkpoint does not cover.
    """

    arch_settings: Dict[str, dict] = {}
    arch_keys: Tuple[str, ...] = ()
    arch_defaults: Dict[str, object] = {}
    test_arch: Optional[str] = None
    default_init_cfg: Optional[Union[dict, List[dict]]] = None
    converter: Optional[Callable[[dict], dict]] = None

    def __init__(self, init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.frozen_stages = -1

    # ---- configuration parsing ------------------------------------------------------------
    @classmethod
    def parse_arch(cls, arch: Union[str, dict]) -> dict:
        """The settings of ``arch`` (a name in ``arch_settings`` or a dict), defaults filled in."""
        family = cls.__name__
        if isinstance(arch, str):
            if arch not in cls.arch_settings:
                raise ValueError(f'unknown {family} arch {arch!r}; valid names: '
                                 f'{sorted(cls.arch_settings)}')
            arch = cls.arch_settings[arch]
        elif not isinstance(arch, dict):
            raise TypeError(f'arch must be a name or a dict, got {type(arch).__name__}')
        required = set(cls.arch_keys) - set(cls.arch_defaults)
        allowed = set(cls.arch_keys)
        if not required <= set(arch) <= allowed:
            raise ValueError(f'a {family} arch dict needs the keys {sorted(required)} (optional: '
                             f'{sorted(allowed - required)}), got {sorted(arch)}')
        return {**cls.arch_defaults, **arch}

    @staticmethod
    def parse_out_indices(out_indices: Union[int, Sequence[int]], num: int,
                          what: str = 'stages') -> Tuple[int, ...]:
        """``out_indices`` normalised to non-negative, sorted and unique indices below ``num``."""
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        normalised = []
        for index in out_indices:
            if not -num <= index < num:
                raise ValueError(f'out_indices entry {index} is out of range for {num} {what}')
            normalised.append(index % num)
        if len(set(normalised)) != len(normalised):
            raise ValueError(f'out_indices {tuple(out_indices)} name one of the {what} twice')
        return tuple(sorted(normalised))

    def set_frozen_stages(self, frozen_stages: int, num: int) -> None:
        if not -1 <= frozen_stages <= num:
            raise ValueError(f'frozen_stages must be in [-1, {num}], got {frozen_stages}')
        self.frozen_stages = frozen_stages
        self.freeze_stem_at_zero = frozen_stem_at_zero()

    # ---- frozen stages --------------------------------------------------------------------
    def stage_prefixes(self, num_stages: int) -> Tuple[str, ...]:
        """Parameter-name prefixes of the stem (or patch embedding) and the first
        ``num_stages`` stages (or layers): what ``frozen_stages=num_stages`` freezes."""
        raise NotImplementedError

    def frozen_prefixes(self) -> Tuple[str, ...]:
        """What ``self.frozen_stages`` freezes, by the convention of the build scope."""
        k = self.frozen_stages
        if k < 0 or (k == 0 and not self.freeze_stem_at_zero):
            return ()
        return self.stage_prefixes(k)

    def _freeze(self) -> None:
        prefixes = self.frozen_prefixes()
        if not prefixes:
            return
        for name, module in self.named_modules():
            if name and (name + '.').startswith(prefixes):
                module.eval()
        for name, param in self.named_parameters():
            if (name + '.').startswith(prefixes):
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'MambaBackbone':
        super().train(mode)
        self._freeze()
        return self

    # ---- weights --------------------------------------------------------------------------
    def init_weights(self) -> None:
        """Initialise from ``init_cfg``; a ``Pretrained`` entry loads a converted checkpoint.

        With ``Pretrained``, the other entries (or ``default_init_cfg``) are applied first, so
        parameters the checkpoint does not cover (e.g. the output norms of a dense model) are
        initialised as usual; then the checkpoint is loaded through
        :func:`mmmamba.utils.checkpoint.load_pretrained` with the family's ``converter``, which
        reports missing and unexpected keys and raises on a missing file, no matching key or a
        shape mismatch.
        """
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        pretrained = [c for c in cfgs if c is not None and c.get('type') == 'Pretrained']
        if not pretrained:
            super().init_weights()
            return
        if len(pretrained) > 1:
            raise ValueError(f'init_cfg names more than one Pretrained checkpoint: {pretrained}')
        others = [c for c in cfgs if c is not None and c.get('type') != 'Pretrained']
        init_cfg = self.init_cfg
        self.init_cfg = others or copy.deepcopy(self.default_init_cfg)
        try:
            super().init_weights()
        finally:
            self.init_cfg = init_cfg
        load_pretrained(
            self,
            pretrained[0]['checkpoint'],
            prefix=pretrained[0].get('prefix'),
            converter=self.pretrained_converter(),
            map_location=pretrained[0].get('map_location', 'cpu'))

    def pretrained_converter(self) -> Optional[Callable[[dict], dict]]:
        """The converter :meth:`init_weights` applies to a ``Pretrained`` checkpoint: the
        family's ``converter``, unless the family needs settings of the built model (Vim binds
        its position-embedding grid)."""
        return type(self).converter

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """Layer id of a parameter and the number of layer ids, for mmpretrain's
        ``LearningRateDecayOptimWrapperConstructor``."""
        raise NotImplementedError


class HierarchicalBackbone(MambaBackbone):
    """A stem and stages of falling resolution, with a norm on each returned stage.

    Subclasses build ``self.stem`` and ``self.stages`` (each stage a module with
    ``downsample`` (or ``None``) and ``blocks``), fill ``self.depths``/``self.dims``, and call
    :meth:`finish_stages`. Stage ``i`` has stride ``2 ** (i + 2)``.

    ``frozen_stages=k`` freezes (``requires_grad=False``, eval mode, kept through ``train()``)
    the stem and stages ``0..k-1``; ``-1`` freezes nothing; ``0`` freezes the stem only when the
    model is built under mmdet's or mmseg's scope (ResNet/Swin convention) and nothing under
    mmpretrain's (ConvNeXt convention). The output norms stay trainable.
    """

    # Blocks that share one learning-rate-decay layer id in get_layer_depth().
    blocks_per_layer_group = 1

    def finish_stages(self, out_indices: Union[int, Sequence[int]], frozen_stages: int,
                      out_norm: Optional[Callable[[int], nn.Module]]) -> None:
        """Set ``out_indices``, the output norms ``norm{i}`` (``out_norm(channels)``, or none
        when ``out_norm`` is None), ``feature_info``/``out_channels``/``strides``, and freeze."""
        num_stages = len(self.stages)
        self.out_indices = self.parse_out_indices(out_indices, num_stages)
        self.set_frozen_stages(frozen_stages, num_stages)
        self.feature_info = [
            dict(num_chs=self.dims[i], reduction=2**(i + 2), module=f'stages.{i}')
            for i in range(num_stages)
        ]
        if out_norm is not None:
            for i in self.out_indices:
                self.add_module(f'norm{i}', out_norm(self.dims[i]))
        self.out_channels = tuple(self.dims[i] for i in self.out_indices)
        self.strides = tuple(2**(i + 2) for i in self.out_indices)
        self._freeze()

    def stage_prefixes(self, num_stages: int) -> Tuple[str, ...]:
        return ('stem.', ) + tuple(f'stages.{i}.' for i in range(num_stages))

    def run_blocks(self, blocks: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
        for block in blocks:
            if self.with_cp and torch.is_grad_enabled():
                x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x

    def format_output(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Stage ``index``'s output as returned: normed, ``(B, C, H, W)`` (subclasses say how)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Forward images.

        Args:
            x (torch.Tensor): Images of shape (B, in_channels, H, W).

        Returns:
            tuple[torch.Tensor]: One entry per ``out_indices`` (see :meth:`format_output`).
        """
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            if stage.downsample is not None:
                x = stage.downsample(x)
            x = self.run_blocks(stage.blocks, x)
            if i in self.out_indices:
                outs.append(self.format_output(i, x))
        return tuple(outs)

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """Layer id of a parameter, for mmpretrain's ``LearningRateDecayOptimWrapperConstructor``.

        The stem is layer 0; the blocks of each stage are taken in groups of
        ``blocks_per_layer_group`` consecutive blocks, one layer id per group, ids rising with
        depth; a downsample shares the id of its stage's first group; output norms and
        everything outside the backbone (the head) come last.

        Args:
            param_name (str): Parameter name, e.g. ``'backbone.stages.2.blocks.4.fc1.weight'``.
            prefix (str): Prefix of the backbone's parameters in ``param_name``.
                Defaults to ''.

        Returns:
            tuple[int, int]: The layer id and the number of layer ids (max id + 1).
        """
        group = self.blocks_per_layer_group
        first_group_of_stage = [1]
        for depth in self.depths:
            first_group_of_stage.append(first_group_of_stage[-1] + -(-depth // group))
        top = first_group_of_stage[-1]  # output norms and head
        num_layers = top + 1
        if not param_name.startswith(prefix):
            return top, num_layers
        parts = param_name[len(prefix):].split('.')
        if parts[0] == 'stem':
            return 0, num_layers
        if parts[0] != 'stages' or len(parts) < 3:
            return top, num_layers
        stage_id = int(parts[1])
        block_id = int(parts[3]) if parts[2] == 'blocks' else 0
        return first_group_of_stage[stage_id] + block_id // group, num_layers
