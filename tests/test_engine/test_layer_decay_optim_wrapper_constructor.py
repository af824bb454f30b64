"""LayerDecayOptimWrapperConstructor: the learning rate and weight decay each parameter really gets
in the built optimizer, for a detector, a segmentor and a classifier on each backbone family
(MambaOut, VMamba, Vim, MambaReg).

The expected layer ids are written out here from the parameter names (stage/block indices and
the family's grouping), not taken from ``get_layer_depth``.
"""
import math
import re

import pytest
import torch
from mmengine.hub import get_config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import mmmamba  # noqa: F401  (registers every module)
from mmmamba.engine import LayerDecayOptimWrapperConstructor

LR, WD, RATE = 2e-4, 0.05, 0.8

# Hierarchical families deeper than their 'atto' presets (one block per stage), so that blocks
# of one stage differ; the isotropic ones at 'atto' (32 channels, 4 layers).
BACKBONES = {
    'MambaOut': dict(type='mmmamba.MambaOut', arch=dict(depths=(2, 4, 1, 3), dims=(8, 16, 24, 32))),
    'VMamba': dict(type='mmmamba.VMamba', arch=dict(
        depths=(2, 3, 1, 1), dims=(8, 16, 24, 32), d_state=2, ssm_ratio=1.0, mlp_ratio=2.0,
        gated=False)),
    'Vim': dict(type='mmmamba.Vim', arch='atto'),
    'MambaReg': dict(type='mmmamba.MambaReg', arch='atto'),
}
ISOTROPIC = ('Vim', 'MambaReg')
CHANNELS = (8, 16, 24, 32)
ISOTROPIC_CHANNELS, ISOTROPIC_LAYERS = 32, 4
# MambaReg 'atto' with out_type='registers': 4 registers of 32 / 2 channels, concatenated
REGISTER_CHANNELS = 4 * 32 // 2


def expected_layer_ids(family: str):
    """``name -> layer_id`` for a backbone parameter name (no prefix) and the number of ids, by
    the family's documented scheme."""
    if family in ISOTROPIC:
        # embeddings and extra tokens 0, layer i -> i + 1, final norm / register head on top
        num_layers = ISOTROPIC_LAYERS + 2
        embeddings = ('pos_embed', 'cls_token', 'cls_pos_embed', 'registers',
                      'register_pos_embed')

        def isotropic_id(name: str):
            if name.startswith('patch_embed.') or name in embeddings:
                return 0
            m = re.match(r'layers\.(\d+)\.', name)
            return int(m.group(1)) + 1 if m else num_layers - 1

        return isotropic_id, num_layers

    # MambaOut: consecutive blocks of a stage in groups of 3 (ConvNeXt-T's 3-block layers);
    # VMamba: one id per block.
    group = 3 if family == 'MambaOut' else 1
    groups_per_stage = [math.ceil(d / group) for d in BACKBONES[family]['arch']['depths']]
    num_layers = 1 + sum(groups_per_stage) + 1  # stem, block groups, top (norms, neck, head)

    def layer_id(name: str):
        if name.startswith('stem.'):
            return 0
        m = re.match(r'stages\.(\d+)\.(downsample|blocks\.(\d+))\.', name)
        if m is None:
            return num_layers - 1
        stage = int(m.group(1))
        block = int(m.group(3)) if m.group(3) is not None else 0
        return 1 + sum(groups_per_stage[:stage]) + block // group

    return layer_id, num_layers


def pyramid(out_channels: int) -> dict:
    """The stride-16 map of an isotropic backbone to four levels."""
    return dict(type='mmmamba.SimpleFeaturePyramid', in_channels=ISOTROPIC_CHANNELS,
                out_channels=out_channels)


def detector(family: str) -> dict:
    cfg = get_config('mmdet::_base_/models/mask-rcnn_r50_fpn.py').model
    if family in ISOTROPIC:
        cfg.backbone = dict(BACKBONES[family], out_indices=(-1, ))
        cfg.neck = [pyramid(8), dict(cfg.neck, in_channels=[8] * 4, out_channels=8)]
    else:
        cfg.backbone = dict(BACKBONES[family], out_indices=(0, 1, 2, 3))
        cfg.neck.update(in_channels=list(CHANNELS), out_channels=8)
    cfg.rpn_head.update(in_channels=8, feat_channels=8)
    cfg.roi_head.bbox_roi_extractor.out_channels = 8
    cfg.roi_head.bbox_head.update(in_channels=8, fc_out_channels=16, num_classes=2)
    cfg.roi_head.mask_roi_extractor.out_channels = 8
    cfg.roi_head.mask_head.update(in_channels=8, conv_out_channels=8, num_classes=2)
    return cfg


def segmentor(family: str) -> dict:
    cfg = get_config('mmseg::_base_/models/upernet_r50.py').model
    cfg.pretrained = None
    cfg.backbone = dict(BACKBONES[family], out_indices=(0, 1, 2, 3))
    channels = list(CHANNELS)
    if family in ISOTROPIC:
        cfg.neck = pyramid(8)
        channels = [8] * 4
    norm = dict(type='BN', requires_grad=True)
    cfg.decode_head.update(in_channels=channels, channels=8, num_classes=3, norm_cfg=norm)
    cfg.auxiliary_head.update(in_channels=channels[2], channels=8, num_classes=3, norm_cfg=norm)
    return cfg


def classifier(family: str) -> dict:
    if family == 'Vim':
        backbone, neck, channels = dict(BACKBONES[family], out_type='cls_token'), None, 32
    elif family == 'MambaReg':
        backbone = dict(BACKBONES[family], out_type='registers')
        neck, channels = None, REGISTER_CHANNELS
    else:
        backbone = dict(BACKBONES[family], out_indices=(3, ))
        neck, channels = dict(type='GlobalAveragePooling'), CHANNELS[3]
    return dict(
        type='ImageClassifier',
        backbone=backbone,
        neck=neck,
        head=dict(type='LinearClsHead', num_classes=5, in_channels=channels))


TASKS = {'mmdet': detector, 'mmseg': segmentor, 'mmpretrain': classifier}


def build_model_and_optimizer(scope: str, model_cfg: dict, paramwise_cfg: dict):
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(model_cfg)
        optim_wrapper = build_optim_wrapper(model, dict(
            constructor='mmmamba.LayerDecayOptimWrapperConstructor',
            optimizer=dict(type='AdamW', lr=LR, weight_decay=WD),
            paramwise_cfg=paramwise_cfg))
    groups = {}
    for group in optim_wrapper.optimizer.param_groups:
        assert len(group['params']) == 1
        groups[id(group['params'][0])] = group
    return model, groups


@pytest.mark.parametrize('family', sorted(BACKBONES))
@pytest.mark.parametrize('scope', sorted(TASKS))
def test_per_parameter_lr_and_weight_decay(scope, family):
    model, groups = build_model_and_optimizer(
        scope, TASKS[scope](family), dict(layer_decay_rate=RATE, flat_decay_mult=0.))
    layer_id, num_layers = expected_layer_ids(family)

    block_lrs = set()
    for name, param in model.named_parameters():
        group = groups[id(param)]
        if name.startswith('backbone.'):
            depth = layer_id(name[len('backbone.'):])
        else:  # neck, heads
            depth = num_layers - 1
        assert group['lr'] == pytest.approx(LR * RATE**(num_layers - 1 - depth)), name
        if re.match(r'backbone\.(stages\.\d+\.blocks|layers)\.\d+\.', name):
            block_lrs.add(group['lr'])
        # no decay on 1-D parameters (norms, biases, D) and on A_log; full decay on the rest
        no_decay = param.ndim <= 1 or name.endswith(('.A_log', '.D'))
        assert group['weight_decay'] == (0. if no_decay else WD), name
    # decay reaches the blocks / layers: one lr per block group or layer, all below the top lr
    assert len(block_lrs) == num_layers - 2 and max(block_lrs) < LR


def test_parameters_outside_the_backbone_get_the_base_lr():
    model, groups = build_model_and_optimizer(
        'mmdet', detector('VMamba'), dict(layer_decay_rate=RATE))
    heads = [n for n, _ in model.named_parameters() if n.startswith(('neck.', 'rpn_head.',
                                                                     'roi_head.'))]
    assert heads
    params = dict(model.named_parameters())
    assert all(groups[id(params[n])]['lr'] == LR for n in heads)
    # without flat_decay_mult, 1-D parameters keep weight decay, A_log and D still have none
    assert groups[id(params['backbone.stem.norm1.weight'])]['weight_decay'] == WD
    a_logs = [n for n in params if n.endswith(('.A_log', '.D'))]
    assert a_logs and all(groups[id(params[n])]['weight_decay'] == 0. for n in a_logs)


def test_frozen_parameters_are_left_out():
    cfg = detector('MambaOut')
    cfg.backbone.frozen_stages = 1
    model, groups = build_model_and_optimizer('mmdet', cfg, dict(layer_decay_rate=RATE))
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith(('backbone.stem.', 'backbone.stages.0.')) for n in frozen)
    assert len(groups) == sum(p.requires_grad for p in model.parameters())


def test_constructor_is_registered_in_mmmamba_scope():
    from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as ROOT
    from mmmamba.registry import OPTIM_WRAPPER_CONSTRUCTORS
    assert OPTIM_WRAPPER_CONSTRUCTORS.parent is ROOT
    assert ROOT.children['mmmamba'] is OPTIM_WRAPPER_CONSTRUCTORS
    assert OPTIM_WRAPPER_CONSTRUCTORS.get('LayerDecayOptimWrapperConstructor') \
        is LayerDecayOptimWrapperConstructor


def test_bad_configuration_raises():
    optim = dict(optimizer=dict(type='AdamW', lr=LR, weight_decay=WD))
    with pytest.raises(ValueError, match=r'needs paramwise_cfg=dict\(layer_decay_rate=\.\.\.\); '
                       r"got paramwise_cfg=\{'flat_decay_mult': 0.0\}"):
        LayerDecayOptimWrapperConstructor(optim, dict(flat_decay_mult=0.))
    with pytest.raises(ValueError, match=r'layer_decay_rate must be in \(0, 1\], got 1.5'):
        LayerDecayOptimWrapperConstructor(optim, dict(layer_decay_rate=1.5))
    constructor = LayerDecayOptimWrapperConstructor(optim, dict(layer_decay_rate=RATE))
    resnet_detector = detector('MambaOut')
    resnet_detector.backbone = dict(type='ResNet', depth=18, norm_cfg=dict(type='BN'))
    resnet_detector.neck.in_channels = [64, 128, 256, 512]
    with DefaultScope.overwrite_default_scope('mmdet'):
        from mmdet.registry import MODELS
        model = MODELS.build(resnet_detector)
    with pytest.raises(TypeError, match='got MaskRCNN, and its backbone ResNet has no '
                       'get_layer_depth'):
        constructor(model)
    with pytest.raises(TypeError, match='got Linear, and it has no backbone and no '
                       'get_layer_depth'):
        constructor(torch.nn.Linear(2, 2))
