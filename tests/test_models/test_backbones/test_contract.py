"""The contract every mmmamba backbone keeps, run over every registered family.

A family joins by subclassing :class:`mmmamba.models.backbones.MambaBackbone`, registering in
``mmmamba.registry.MODELS`` and naming a tiny ``test_arch`` (in the spirit of timm's
``tests/test_models.py``). What is specific to a family (equality with an independent
reference, its release's converter) stays in the family's own test file.
"""
import pytest
import torch
import torch.nn as nn
from mmengine.registry import DefaultScope

import mmmamba  # noqa: F401  (registers the families)
from mmmamba.models.backbones import MambaBackbone
from mmmamba.registry import MODELS

FAMILIES = sorted(
    name for name, cls in MODELS.module_dict.items()
    if isinstance(cls, type) and issubclass(cls, MambaBackbone) and cls.test_arch)
# an odd, non-square input: every stage's map is ceil(H / stride) x ceil(W / stride)
H, W = 37, 50


def build(family: str, **kwargs) -> MambaBackbone:
    cls = MODELS.get(family)
    kwargs.setdefault('arch', cls.test_arch)
    return cls(**kwargs)


def outputs(model: nn.Module, x: torch.Tensor) -> tuple:
    out = model(x)
    assert isinstance(out, tuple)
    return out


def test_every_family_is_covered():
    assert {'MambaOut', 'VMamba'} <= set(FAMILIES)


def all_positions(family: str) -> int:
    """How many stages (or layers) ``out_indices`` can name in the test size."""
    return len(build(family).feature_info)


@pytest.mark.parametrize('family', FAMILIES)
def test_outputs_match_declared_channels_and_strides(family):
    num = all_positions(family)
    model = build(family, out_indices=tuple(range(num))).eval()
    x = torch.randn(2, 3, H, W)
    with torch.no_grad():
        full = outputs(model, x)
    assert len(full) == num == len(model.out_channels) == len(model.strides)
    for i, (out, info) in enumerate(zip(full, model.feature_info)):
        assert info['num_chs'] == model.out_channels[i] and info['reduction'] == model.strides[i]
        model.get_submodule(info['module'])  # names a real module
        stride = info['reduction']
        assert out.shape == (2, info['num_chs'], -(-H // stride), -(-W // stride))
    # one position at a time, negative indices counted from the last
    for index in range(-num, num):
        single = build(family, out_indices=index)
        single.load_state_dict(model.state_dict(), strict=False)
        with torch.no_grad():
            (out, ) = outputs(single.eval(), x)
        assert single.out_indices == (index % num, )
        torch.testing.assert_close(out, full[index % num])


@pytest.mark.parametrize('family', FAMILIES)
def test_bad_arch_and_indices_raise_with_the_valid_choices(family):
    num = all_positions(family)
    with pytest.raises(ValueError, match=rf"unknown {family} arch 'huge'; valid names: \["):
        build(family, arch='huge')
    with pytest.raises(ValueError, match=f'a {family} arch dict needs the keys'):
        build(family, arch=dict(unknown_key=1))
    with pytest.raises(ValueError, match=f'out_indices entry {num} is out of range'):
        build(family, out_indices=(0, num))
    with pytest.raises(ValueError, match='name one of the .* twice'):
        build(family, out_indices=(num - 1, -1))
    with pytest.raises(ValueError, match=rf'frozen_stages must be in \[-1, {num}\]'):
        build(family, frozen_stages=num + 1)


def frozen_names(model: MambaBackbone) -> set:
    return {name for name, p in model.named_parameters() if not p.requires_grad}


def names_under(model: MambaBackbone, prefixes: tuple) -> set:
    return {name for name, _ in model.named_parameters() if (name + '.').startswith(prefixes)}


@pytest.mark.parametrize('family', FAMILIES)
def test_frozen_stages_stay_frozen_in_train_mode(family):
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = build(family, frozen_stages=2)
    model.train()
    prefixes = model.stage_prefixes(2)
    frozen = names_under(model, prefixes)
    assert frozen and frozen_names(model) == frozen
    for name, module in model.named_modules():
        if name:
            assert module.training != (name + '.').startswith(prefixes), name
    before = {k: v.clone() for k, v in model.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    sum(o.square().mean() for o in model(torch.randn(2, 3, H, W))).backward()
    optimizer.step()
    after = dict(model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert not changed & frozen
    assert changed  # the rest trains


@pytest.mark.parametrize('family', FAMILIES)
@pytest.mark.parametrize('scope, stem_frozen', [('mmdet', True), ('mmseg', True),
                                                ('mmpretrain', False)])
def test_frozen_stages_zero_follows_the_scope_convention(family, scope, stem_frozen):
    """mmdet/mmseg (ResNet, Swin): 0 freezes the stem; mmpretrain (ConvNeXt): 0 freezes nothing.
    Both: k >= 1 freezes the stem and the first k stages, -1 nothing."""
    with DefaultScope.overwrite_default_scope(scope):
        zero, one, none = (build(family, frozen_stages=k) for k in (0, 1, -1))
    stem = names_under(zero, zero.stage_prefixes(0))
    first = names_under(one, one.stage_prefixes(1))
    assert stem and first > stem
    assert frozen_names(zero) == (stem if stem_frozen else set())
    assert frozen_names(one) == first
    assert frozen_names(none) == set()


@pytest.mark.parametrize('family', FAMILIES)
def test_with_cp_gives_the_same_outputs_and_gradients(family):
    torch.manual_seed(0)
    plain = build(family).train()
    checkpointed = build(family, with_cp=True).train()
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, H, W)
    outs = [outputs(model, x) for model in (plain, checkpointed)]
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b)
    for out in outs:
        sum(o.square().mean() for o in out).backward()
    for (name, p), q in zip(plain.named_parameters(), checkpointed.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


@pytest.mark.parametrize('family', FAMILIES)
def test_drop_path_is_active_in_train_and_off_in_eval(family):
    torch.manual_seed(0)
    dropping = build(family, drop_path_rate=0.5)
    reference = build(family, drop_path_rate=0.)
    reference.load_state_dict(dropping.state_dict())
    x = torch.randn(4, 3, H, W)
    with torch.no_grad():
        for a, b in zip(outputs(dropping.eval(), x), outputs(reference.eval(), x)):
            torch.testing.assert_close(a, b)
        trained = outputs(dropping.train(), x)
        plain = outputs(reference.train(), x)
    assert not torch.allclose(trained[-1], plain[-1])


@pytest.mark.parametrize('family', FAMILIES)
def test_init_weights_changes_weights(family):
    model = build(family)
    linear = next(m for m in model.modules() if isinstance(m, nn.Linear))
    nn.init.constant_(linear.weight, 3.)
    model.init_weights()
    assert not torch.all(linear.weight == 3.)
    assert 0.01 < linear.weight.std().item() < 0.03  # truncated normal, std .02


@pytest.mark.parametrize('family', FAMILIES)
@pytest.mark.parametrize('prefixed', [True, False])
def test_pretrained_round_trip_through_init_cfg(family, prefixed, tmp_path):
    torch.manual_seed(0)
    source = build(family).eval()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path / 'ckpt.pth'
    if prefixed:  # a classifier / detector checkpoint
        state = {f'backbone.{k}': v for k, v in source.state_dict().items()}
        state['head.fc.weight'] = torch.zeros(3, 3)
        torch.save(dict(state_dict=state, meta=dict()), path)
        init_cfg = dict(type='Pretrained', checkpoint=str(path), prefix='backbone.')
    else:
        torch.save(source.state_dict(), path)
        init_cfg = dict(type='Pretrained', checkpoint=str(path))
    target = build(family, init_cfg=init_cfg).eval()
    target.init_weights()
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value, msg=key)
    x = torch.randn(1, 3, H, W)
    with torch.no_grad():
        for a, b in zip(outputs(source, x), outputs(target, x)):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize('family', FAMILIES)
def test_pretrained_missing_file_raises(family, tmp_path):
    model = build(family, init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'no.pth')))
    with pytest.raises(FileNotFoundError, match='no.pth'):
        model.init_weights()


@pytest.mark.parametrize('family', FAMILIES)
def test_save_load_round_trip_is_strict(family, tmp_path):
    model = build(family, out_indices=(1, 3)).eval()
    path = tmp_path / 'backbone.pth'
    torch.save(model.state_dict(), path)
    restored = build(family, out_indices=(1, 3)).eval()
    restored.load_state_dict(torch.load(path), strict=True)
    x = torch.randn(1, 3, H, W)
    with torch.no_grad():
        for a, b in zip(model(x), restored(x)):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize('family', FAMILIES)
def test_bf16_autocast_forward_and_backward_are_finite(family):
    model = build(family).train()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        outs = model(torch.randn(2, 3, H, W))
        loss = sum(o.float().square().mean() for o in outs)
    loss.backward()
    assert all(torch.isfinite(o.float()).all() for o in outs)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize('family', FAMILIES)
def test_get_layer_depth_covers_every_parameter(family):
    model = build(family)
    names = [n for n, _ in model.named_parameters()]
    ids = {n: model.get_layer_depth('backbone.' + n, prefix='backbone.') for n in names}
    num_layers = ids[names[0]][1]
    assert all(n == num_layers for _, n in ids.values())
    layer_ids = {n: i for n, (i, _) in ids.items()}
    assert all(0 <= i < num_layers for i in layer_ids.values())
    assert set(layer_ids.values()) == set(range(num_layers))  # every id is used
    # the stem (or patch embedding) first, ids rising with depth, the head on top
    assert {layer_ids[n] for n in names_under(model, model.stage_prefixes(0))} == {0}
    last = 0
    for info in model.feature_info:
        stage_ids = [layer_ids[n] for n in names_under(model, (info['module'] + '.', ))]
        assert stage_ids and min(stage_ids) >= last
        last = max(stage_ids)
    assert model.get_layer_depth('head.fc.weight', prefix='backbone.') == (num_layers - 1,
                                                                           num_layers)


@pytest.mark.parametrize('family', FAMILIES)
@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_builds_by_scoped_type_under_any_default_scope(family, scope):
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    cls = MODELS.get(family)
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(dict(type=f'mmmamba.{family}', arch=cls.test_arch,
                                    out_indices=(2, )))
    assert isinstance(model, cls) and model.out_indices == (2, )
