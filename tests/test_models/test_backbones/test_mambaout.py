import math
import re

import pytest
import torch
import torch.nn as nn
from mmengine.registry import DefaultScope

from mmmamba.models.backbones import MambaOut, convert_mambaout
from mmmamba.models.backbones.mambaout import GatedCNNBlock
from mmmamba.models.heads import MambaOutHead

timm_mambaout = pytest.importorskip('timm.models.mambaout')

ATTO = dict(depths=(1, 1, 1, 1), dims=(8, 16, 32, 48))
# Paper, Table 1: parameters of the classifiers (with head), in millions.
PAPER_PARAMS_M = dict(femto=7.3, kobe=9.1, tiny=26.5, small=48.5, base=84.8)


def build_classifier(arch: str = 'atto', num_classes: int = 10, **backbone_kwargs) -> nn.Module:
    """An mmpretrain ImageClassifier with our backbone and head, built through the registries."""
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    dims = MambaOut.arch_settings[arch]['dims']
    cfg = dict(
        type='ImageClassifier',
        backbone=dict(
            type='mmmamba.MambaOut',
            arch=arch,
            out_indices=(-1, ),
            gap_before_final_norm=True,
            **backbone_kwargs),
        head=dict(
            type='mmmamba.MambaOutHead',
            num_classes=num_classes,
            in_channels=dims[-1],
            loss=dict(type='CrossEntropyLoss')))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return PRETRAIN_MODELS.build(cfg)


def perturb_vectors_(model: nn.Module) -> nn.Module:
    """Give biases and norm affines non-trivial values (timm initialises them to 0 and 1)."""
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim == 1:
                param.add_(0.1 * torch.randn_like(param))
    return model


def timm_atto(num_classes: int = 10) -> nn.Module:
    return perturb_vectors_(timm_mambaout.MambaOut(num_classes=num_classes, **ATTO)).eval()


def timm_to_official(state_dict: dict) -> dict:
    """Rename a timm MambaOut state dict to the official release's keys (yuweihao/MambaOut)."""
    rules = [
        (r'^stem\.', 'downsample_layers.0.'),
        (r'^stages\.(\d+)\.downsample\.', r'downsample_layers.\1.'),
        (r'^stages\.(\d+)\.blocks\.(\d+)\.', r'stages.\1.\2.'),
        (r'^head\.norm\.', 'norm.'),
        (r'^head\.pre_logits\.fc\.', 'head.fc1.'),
        (r'^head\.pre_logits\.norm\.', 'head.norm.'),
        (r'^head\.fc\.', 'head.fc2.'),
    ]
    out = {}
    for key, value in state_dict.items():
        for pattern, replacement in rules:
            key, count = re.subn(pattern, replacement, key)
            if count:
                break
        out[key] = value
    return out


def test_bad_arch_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown MambaOut arch 'huge'.*'base'.*'tiny'"):
        MambaOut(arch='huge')
    with pytest.raises(ValueError, match=r"\['depths', 'dims'\]"):
        MambaOut(arch=dict(depths=(1, 1)))
    with pytest.raises(ValueError, match='one entry per stage'):
        MambaOut(arch=dict(depths=(1, 1), dims=(8, 16, 32)))
    with pytest.raises(TypeError):
        MambaOut(arch=3)


def test_bad_indices_and_frozen_stages_raise():
    with pytest.raises(ValueError, match='out of range'):
        MambaOut(arch='atto', out_indices=(4, ))
    with pytest.raises(ValueError, match='twice'):
        MambaOut(arch='atto', out_indices=(3, -1))
    with pytest.raises(ValueError, match=r'frozen_stages must be in \[-1, 4\], got 5'):
        MambaOut(arch='atto', frozen_stages=5)
    with pytest.raises(ValueError, match='out_norm'):
        MambaOut(arch='atto', gap_before_final_norm=True, out_norm=False)


def test_arch_dict_with_three_stages():
    model = MambaOut(arch=dict(depths=(1, 2, 1), dims=(8, 16, 24)), out_indices=(0, 1, 2))
    outs = model(torch.randn(1, 3, 32, 32))
    assert [o.shape[1:] for o in outs] == [(8, 8, 8), (16, 4, 4), (24, 2, 2)]


@pytest.mark.parametrize('out_indices, expected', [
    ((0, 1, 2, 3), (0, 1, 2, 3)),
    ((3, ), (3, )),
    ((-1, ), (3, )),
    ((0, -2), (0, 2)),
    (1, (1, )),
])
def test_shapes_and_strides_match_metadata(out_indices, expected):
    model = MambaOut(arch='atto', out_indices=out_indices).eval()
    assert model.out_indices == expected
    assert model.out_channels == tuple(ATTO['dims'][i] for i in expected)
    assert model.strides == tuple(2**(i + 2) for i in expected)
    height, width = 65, 97  # odd, non-square
    outs = model(torch.randn(2, 3, height, width))
    assert len(outs) == len(expected)
    for out, channels, stride in zip(outs, model.out_channels, model.strides):
        assert out.shape == (2, channels, math.ceil(height / stride), math.ceil(width / stride))
    for i, info in enumerate(model.feature_info):
        assert info == dict(num_chs=ATTO['dims'][i], reduction=2**(i + 2), module=f'stages.{i}')
        assert model.get_submodule(info['module']) is model.stages[i]


def test_out_norm_is_layer_norm_over_channels():
    raw = MambaOut(arch='atto', out_norm=False).eval()
    normed = MambaOut(arch='atto').eval()
    normed.load_state_dict(raw.state_dict(), strict=False)
    with torch.no_grad():
        nn.init.normal_(normed.norm2.weight)
        x = torch.randn(1, 3, 32, 48)
        raw_out, normed_out = raw(x)[2], normed(x)[2]
    assert not any(name.startswith('norm') for name, _ in raw.named_children())
    expected = normed.norm2(raw_out.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    torch.testing.assert_close(normed_out, expected)


def test_gap_before_final_norm_gives_pooled_normalised_vectors():
    model = MambaOut(arch='atto', out_indices=(2, 3), gap_before_final_norm=True).eval()
    dense = MambaOut(arch='atto', out_indices=(2, 3), out_norm=False).eval()
    dense.load_state_dict(model.state_dict(), strict=False)
    x = torch.randn(2, 3, 40, 56)
    with torch.no_grad():
        pooled = model(x)
        maps = dense(x)
    for i, vector, feature_map in zip((2, 3), pooled, maps):
        assert vector.shape == (2, ATTO['dims'][i])
        torch.testing.assert_close(vector, getattr(model, f'norm{i}')(feature_map.mean((2, 3))))


def test_block_splits_gate_identity_and_conv_channels():
    block = GatedCNNBlock(channels=12, conv_ratio=0.5, kernel_size=3)
    hidden = int(8 / 3 * 12)
    assert block.split_sizes == (hidden, hidden - 6, 6)
    assert block.fc1.out_features == 2 * hidden and block.conv.groups == 6
    assert block(torch.randn(2, 5, 7, 12)).shape == (2, 5, 7, 12)
    with pytest.raises(ValueError, match='conv_ratio'):
        GatedCNNBlock(channels=12, conv_ratio=3.0)


def test_drop_path_rises_linearly_over_the_blocks():
    # that it is off in eval is a contract test (test_contract.py)
    model = MambaOut(arch='atto', drop_path_rate=0.3)
    rates = [getattr(b.drop_path, 'drop_prob', 0.) for s in model.stages for b in s.blocks]
    assert rates == pytest.approx([0., 0.1, 0.2, 0.3])


def test_init_weights_changes_weights():
    model = MambaOut(arch='atto')
    nn.init.zeros_(model.stages[1].blocks[0].fc1.weight)
    nn.init.constant_(model.stem.conv1.bias, 3.)
    nn.init.constant_(model.norm3.weight, 5.)
    model.init_weights()
    fc1 = model.stages[1].blocks[0].fc1.weight
    assert 0.015 < fc1.std().item() < 0.025  # truncated normal, std .02
    assert torch.all(model.stem.conv1.bias == 0)
    assert torch.all(model.norm3.weight == 1)


def test_converter_returns_native_dicts_unchanged():
    backbone_state = MambaOut(arch='atto').state_dict()
    assert convert_mambaout(backbone_state) is backbone_state
    classifier_state = build_classifier().state_dict()
    assert convert_mambaout(classifier_state) is classifier_state


@pytest.mark.parametrize('layout', ['timm', 'official'])
def test_converter_round_trip_loads_strictly(layout):
    timm_model = timm_atto()
    source = timm_model.state_dict()
    if layout == 'official':
        source = timm_to_official(source)
        for key in ('downsample_layers.0.conv1.weight', 'downsample_layers.3.norm.bias',
                    'stages.2.0.fc1.weight', 'norm.weight', 'head.fc1.weight',
                    'head.norm.bias', 'head.fc2.weight'):
            assert key in source
    converted = convert_mambaout(source)
    assert len(converted) == len(source)
    assert 'backbone.norm3.weight' in converted and 'head.fc2.weight' in converted

    classifier = build_classifier().eval()
    classifier.load_state_dict(converted, strict=True)
    backbone_only = {k[len('backbone.'):]: v for k, v in converted.items()
                     if k.startswith('backbone.')}
    MambaOut(arch='atto', out_indices=(3, ), gap_before_final_norm=True).load_state_dict(
        backbone_only, strict=True)

    x = torch.randn(2, 3, 48, 80)
    with torch.no_grad():
        torch.testing.assert_close(classifier(x, mode='tensor'), timm_model(x), atol=1e-5, rtol=0)


def test_converter_rejects_unknown_keys_of_a_foreign_layout():
    source = timm_to_official(timm_atto().state_dict())
    source['pos_embed'] = torch.zeros(1)
    with pytest.raises(ValueError, match="'pos_embed'.*official"):
        convert_mambaout(source)


@pytest.mark.parametrize('layout', ['mmpretrain', 'timm', 'official'])
def test_init_cfg_pretrained_loads_any_layout(tmp_path, layout):
    timm_model = timm_atto()
    if layout == 'mmpretrain':
        classifier = build_classifier()
        classifier.load_state_dict(convert_mambaout(timm_model.state_dict()))
        checkpoint = dict(state_dict=classifier.state_dict(), meta=dict(epoch=1))
    elif layout == 'timm':
        checkpoint = timm_model.state_dict()
    else:
        checkpoint = dict(model=timm_to_official(timm_model.state_dict()))
    path = tmp_path / f'{layout}.pth'
    torch.save(checkpoint, path)

    backbone = MambaOut(
        arch='atto',
        out_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='backbone.')).eval()
    backbone.init_weights()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected = timm_model.forward_intermediates(x, intermediates_only=True)
        outs = backbone(x)
    for out, ref in zip(outs, expected):
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_init_cfg_pretrained_initialises_keys_the_checkpoint_lacks(tmp_path):
    path = tmp_path / 'timm.pth'
    torch.save(timm_atto().state_dict(), path)
    backbone = MambaOut(
        arch='atto', init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    nn.init.constant_(backbone.norm0.weight, 7.)
    backbone.init_weights()
    assert torch.all(backbone.norm0.weight == 1)  # dense-only norm: default init
    # the classifier's final norm (timm head.norm) is the last stage's output norm
    torch.testing.assert_close(backbone.norm3.weight, torch.load(path)['head.norm.weight'])


@pytest.mark.parametrize('layout', ['timm', 'official'])
def test_a_release_file_loads_the_same_with_or_without_prefix(tmp_path, layout):
    timm_model = timm_atto()
    state = timm_model.state_dict()
    path = tmp_path / f'{layout}.pth'
    torch.save(state if layout == 'timm' else dict(model=timm_to_official(state)), path)
    backbones = [
        MambaOut(arch='atto', init_cfg=dict(type='Pretrained', checkpoint=str(path), **kwargs))
        for kwargs in (dict(), dict(prefix='backbone.'))
    ]
    for backbone in backbones:
        backbone.init_weights()
    without, with_prefix = (b.state_dict() for b in backbones)
    for key in without:
        torch.testing.assert_close(without[key], with_prefix[key], msg=key)
    torch.testing.assert_close(without['stem.conv1.weight'], state['stem.conv1.weight'])


def test_errors_quote_the_files_own_keys(tmp_path):
    """A timm file under a wrong prefix: the message lists the keys the file really has."""
    path = tmp_path / 'timm.pth'
    torch.save(timm_atto().state_dict(), path)
    backbone = MambaOut(
        arch='atto', init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='model.'))
    with pytest.raises(KeyError, match=r"none of the \d+ keys of .*timm.pth \(e.g. \['stem\."):
        backbone.init_weights()


def test_init_cfg_pretrained_of_another_model_raises(tmp_path):
    path = tmp_path / 'linear.pth'
    torch.save(dict(state_dict=nn.Linear(4, 2).state_dict()), path)
    backbone = MambaOut(arch='atto', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(KeyError, match='none of the 2 keys'):
        backbone.init_weights()


def test_init_cfg_pretrained_of_another_size_raises(tmp_path):
    path = tmp_path / 'timm_femto_like.pth'
    torch.save(timm_mambaout.MambaOut(depths=(1, 1, 1, 1), dims=(8, 16, 32, 64)).state_dict(), path)
    backbone = MambaOut(
        arch='atto', init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    with pytest.raises(ValueError, match=r'stages\.3\.downsample\.conv\.weight'):
        backbone.init_weights()


@pytest.mark.parametrize('arch', ['femto', 'tiny'])
def test_features_and_logits_equal_timm(arch):
    torch.manual_seed(0)
    timm_model = perturb_vectors_(getattr(timm_mambaout, f'mambaout_{arch}')(pretrained=False))
    timm_model.eval()
    converted = convert_mambaout(timm_model.state_dict())

    backbone = MambaOut(arch=arch, out_norm=False).eval()
    backbone.load_state_dict(
        {k[len('backbone.'):]: v for k, v in converted.items()
         if k.startswith('backbone.stem.') or k.startswith('backbone.stages.')},
        strict=True)
    classifier = build_classifier(arch, num_classes=1000).eval()
    classifier.load_state_dict(converted, strict=True)

    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected = timm_model.forward_intermediates(x, intermediates_only=True)
        outs = backbone(x)
        assert [tuple(o.shape) for o in outs] == [tuple(e.shape) for e in expected]
        for out, ref in zip(outs, expected):
            torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
        torch.testing.assert_close(classifier(x, mode='tensor'), timm_model(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize('arch', sorted(PAPER_PARAMS_M))
def test_classifier_params_match_paper_and_timm(arch):
    with torch.device('meta'):  # no memory, no initialisation
        ours = sum(p.numel() for p in build_classifier(arch, num_classes=1000).parameters())
    theirs = sum(p.numel() for p in getattr(timm_mambaout, f'mambaout_{arch}')().parameters())
    assert ours == theirs
    assert ours / 1e6 == pytest.approx(PAPER_PARAMS_M[arch], rel=0.01)


def test_get_layer_depth_is_monotone_over_stages():
    model = MambaOut(arch='femto')  # depths (3, 3, 9, 3): stem 0, block groups 1..6, top 7
    ids = [model.get_layer_depth(name, prefix='backbone.')
           for name in ['backbone.' + n for n, _ in model.named_parameters()]]
    assert all(num_layers == 8 for _, num_layers in ids)
    layer_ids = [i for i, _ in ids]
    names = [n for n, _ in model.named_parameters()]
    stage_ids = [layer_ids[k] for k, n in enumerate(names) if not n.startswith('norm')]
    assert stage_ids == sorted(stage_ids)
    assert stage_ids[0] == 0 and stage_ids[-1] == 6
    assert sorted(set(stage_ids)) == list(range(7))
    assert model.get_layer_depth('backbone.stages.2.blocks.8.fc1.weight', 'backbone.') == (5, 8)
    assert model.get_layer_depth('backbone.stages.3.downsample.conv.weight', 'backbone.') == (6, 8)
    assert model.get_layer_depth('backbone.norm3.weight', 'backbone.') == (7, 8)
    assert model.get_layer_depth('head.fc2.weight', 'backbone.') == (7, 8)


def test_layer_decay_optimizer_constructor_accepts_classifier():
    from mmpretrain.engine.optimizers import LearningRateDecayOptimWrapperConstructor
    classifier = build_classifier()
    constructor = LearningRateDecayOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05)),
        dict(layer_decay_rate=0.5))
    groups = constructor(classifier).optimizer.param_groups
    lrs = {g['param_name']: g['lr'] for g in groups}
    # atto: stem 0, one group per stage 1..4, top 5; lr = 1e-3 * 0.5 ** (5 - layer_id)
    assert lrs['head.fc2.weight'] == pytest.approx(1e-3)
    assert lrs['backbone.stages.3.blocks.0.fc1.weight'] == pytest.approx(1e-3 * 0.5)
    assert lrs['backbone.stem.conv1.weight'] == pytest.approx(1e-3 * 0.5**5)


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_builds_by_scoped_type_under_any_default_scope(scope):
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        backbone = registry.build(dict(type='mmmamba.MambaOut', arch='atto', out_indices=(2, )))
        head = registry.build(dict(type='mmmamba.MambaOutHead', num_classes=3, in_channels=48))
    assert isinstance(backbone, MambaOut) and backbone.out_channels == (32, )
    assert isinstance(head, MambaOutHead)


def test_converter_script_writes_a_strictly_loadable_classifier(tmp_path, tool_env):
    import subprocess
    import sys
    from pathlib import Path
    script = (Path(__file__).resolve().parents[3] / 'tools' / 'model_converters' /
              'mambaout2mmmamba.py')
    timm_model = timm_atto()
    src, dst = tmp_path / 'official.pth', tmp_path / 'out' / 'converted.pth'
    torch.save(dict(model=timm_to_official(timm_model.state_dict())), src)
    subprocess.run([sys.executable, str(script), str(src), str(dst)], check=True, env=tool_env)
    classifier = build_classifier().eval()
    classifier.load_state_dict(torch.load(dst)['state_dict'], strict=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(classifier(x, mode='tensor'), timm_model(x), atol=1e-5, rtol=0)
