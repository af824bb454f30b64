"""Vim- and Mamba-Reg-specific checks: the bidirectional mixer against the two recurrences written
out here, whole models against the releases' forward written out here (from the release's own
keys), token placement, position-embedding resizing, the released sizes, and the official
checkpoint converter. The shared backbone contract (shapes, frozen stages, with_cp, drop path,
pretrained round trip, bf16, layer depth) is in test_contract.py."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import DefaultScope

from mmmamba.models.backbones import MambaReg, Vim, convert_vim
from mmmamba.models.backbones.vim import BiMambaMixer
from mmmamba.registry import MODELS

REPO = Path(__file__).resolve().parents[3]
EPS = 1e-5  # the releases' RMSNorm epsilon
# Classifier params (1000 classes) from the Vim paper / release: tiny 7M, small 26M, base 98M;
# the Mamba-Reg paper's abstract: large 341M.
PARAMS_M = {('Vim', 'tiny'): 7, ('Vim', 'small'): 26, ('Vim', 'base'): 98,
            ('MambaReg', 'large'): 341}
FAMILIES = {'Vim': (Vim, 'cls_token'), 'MambaReg': (MambaReg, 'registers')}


def perturb_(module: nn.Module, scale: float = 0.1) -> nn.Module:
    with torch.no_grad():
        for param in module.parameters():
            param.add_(scale * torch.randn_like(param))
    return module


# ---- the releases' computation, written out from their keys ----------------------------------
def rms_norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * weight


def mixer_by_recurrence(p: dict, x: torch.Tensor) -> torch.Tensor:
    """The release's bidirectional ("v2") mixer on ``(B, L, C)``, in float64, from its per-
    direction tensors (``conv1d``/``conv1d_b``, ``x_proj``/``x_proj_b``, ...): each direction
    runs its causal conv, SiLU, and the selective-scan recurrence step by step, is gated by
    SiLU(z) in its own order, and the two are averaged before ``out_proj``."""
    p = {k: v.double() for k, v in p.items()}
    x = x.double()
    batch, length, _ = x.shape
    xz = x @ p['in_proj.weight'].T
    d_inner = xz.shape[-1] // 2
    u, z = xz[..., :d_inner], xz[..., d_inner:]
    state = p['A_log'].shape[1]
    rank = p['dt_proj.weight'].shape[1]
    results = []
    for suffix, seq, gate in (('', u, z), ('_b', u.flip(1), z.flip(1))):
        conv_w = p[f'conv1d{suffix}.weight'][:, 0]  # (D, k)
        taps = conv_w.shape[1]
        conv = p[f'conv1d{suffix}.bias'].expand(batch, length, d_inner).clone()
        for t in range(length):
            for j in range(taps):  # output t sees inputs t - taps + 1 .. t
                s = t - taps + 1 + j
                if s >= 0:
                    conv[:, t] += conv_w[:, j] * seq[:, s]
        a = F.silu(conv)
        A = -torch.exp(p['A_log' if not suffix else 'A_b_log'])  # (D, N)
        skip = p['D' + suffix]
        h = torch.zeros(batch, d_inner, state, dtype=torch.float64)
        y = torch.zeros(batch, length, d_inner, dtype=torch.float64)
        for t in range(length):
            proj = a[:, t] @ p[f'x_proj{suffix}.weight'].T  # (B, rank + 2N)
            dt_low, B_t, C_t = proj[:, :rank], proj[:, rank:rank + state], proj[:, rank + state:]
            dt = F.softplus(dt_low @ p[f'dt_proj{suffix}.weight'].T + p[f'dt_proj{suffix}.bias'])
            h = torch.exp(dt[..., None] * A) * h + dt[..., None] * B_t[:, None, :] * a[:, t, :,
                                                                                       None]
            y[:, t] = ((h * C_t[:, None, :]).sum(-1) + skip * a[:, t]) * F.silu(gate[:, t])
        results.append(y)
    out = (results[0] + results[1].flip(1)) / 2
    return out @ p['out_proj.weight'].T


def release_forward(sd: dict, images: torch.Tensor, mamba_reg: bool) -> torch.Tensor:
    """The release classifier's logits from its state dict, float64 (Vim: class token inserted
    at index N // 2 and ``pos_embed`` added to the whole sequence; Mamba-Reg: ``pos_embed``
    added to the patches, each register (plus ``pos_embed_cls``) after a block of
    ``N // (R + 1)`` patches; layers ``residual += hidden; hidden = mixer(RMSNorm(residual))``;
    ``norm_f(residual + hidden)``; then the class token or the reduced registers)."""
    sd = {k: v.double() for k, v in sd.items()}
    x = F.conv2d(images.double(), sd['patch_embed.proj.weight'], sd['patch_embed.proj.bias'],
                 stride=16)
    x = x.flatten(2).transpose(1, 2)
    batch, num_patches, _ = x.shape
    if mamba_reg:
        x = x + sd['pos_embed']
        registers = (sd['cls_token'] + sd['pos_embed_cls']).expand(batch, -1, -1)
        count = registers.shape[1]
        block = num_patches // (count + 1)
        pieces = []
        for r in range(count):
            pieces += [x[:, r * block:(r + 1) * block], registers[:, r:r + 1]]
        pieces.append(x[:, count * block:])
        seq = torch.cat(pieces, dim=1)
        token_positions = [block * (r + 1) + r for r in range(count)]
    else:
        middle = num_patches // 2
        seq = torch.cat([x[:, :middle], sd['cls_token'].expand(batch, -1, -1), x[:, middle:]], 1)
        seq = seq + sd['pos_embed']
        token_positions = [middle]
    layers = sorted({int(m.group(1)) for k in sd for m in [re.match(r'layers\.(\d+)\.', k)] if m})
    hidden, residual = seq, None
    for i in layers:
        residual = hidden if residual is None else residual + hidden
        mixer = {k.split('.mixer.', 1)[1]: v for k, v in sd.items()
                 if k.startswith(f'layers.{i}.mixer.')}
        hidden = mixer_by_recurrence(mixer, rms_norm(residual, sd[f'layers.{i}.norm.weight']))
    out = rms_norm(residual + hidden, sd['norm_f.weight'])
    tokens = out[:, token_positions]
    if 'neck.weight' in sd:
        tokens = rms_norm((tokens @ sd['neck.weight'].T).flatten(1), sd['norm_neck.weight'])
    else:
        tokens = tokens.flatten(1)
    return tokens @ sd['head.weight'].T + sd['head.bias']


def to_release(state: dict, mamba_reg: bool) -> dict:
    """Rename an mmpretrain classifier state dict (ours) to the release's keys, written out here:
    per-direction mixer tensors, the class token's position entry back in the middle of
    ``pos_embed`` (Vim), ``cls_token``/``pos_embed_cls``/``neck``/``norm_neck`` (Mamba-Reg)."""
    out = {}
    for key, value in state.items():
        if key.startswith('head.fc.'):
            out['head.' + key[len('head.fc.'):]] = value
            continue
        k = key[len('backbone.'):]
        m = re.match(r'(layers\.\d+\.mixer\.)(.+)$', k)
        if m:
            prefix, name = m.groups()
            halves = {
                'conv1d.weight': ('conv1d.weight', 'conv1d_b.weight'),
                'conv1d.bias': ('conv1d.bias', 'conv1d_b.bias'),
                'ssm.x_proj_weight': ('x_proj.weight', 'x_proj_b.weight'),
                'ssm.dt_proj_weight': ('dt_proj.weight', 'dt_proj_b.weight'),
                'ssm.dt_proj_bias': ('dt_proj.bias', 'dt_proj_b.bias'),
                'ssm.A_log': ('A_log', 'A_b_log'),
                'ssm.D': ('D', 'D_b'),
            }
            if name in halves:
                forward, backward = value.chunk(2, dim=0)
                if name.startswith('ssm.') and name not in ('ssm.A_log', 'ssm.D'):
                    forward, backward = value[0], value[1]
                out[prefix + halves[name][0]] = forward
                out[prefix + halves[name][1]] = backward
            else:
                out[prefix + name] = value
            continue
        if k == 'pos_embed' and not mamba_reg:
            middle = value.shape[1] // 2
            out['pos_embed'] = torch.cat(
                [value[:, :middle], state['backbone.cls_pos_embed'], value[:, middle:]], dim=1)
            continue
        renames = dict(registers='cls_token', register_pos_embed='pos_embed_cls',
                       cls_pos_embed=None)
        renames.update({'register_proj.weight': 'neck.weight',
                        'register_norm.weight': 'norm_neck.weight'})
        k = renames.get(k, k)
        if k is not None:
            out[k] = value
    return out


def build_classifier(family: str, arch='atto', img_size=64, num_classes: int = 5) -> nn.Module:
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    cls, out_type = FAMILIES[family]
    backbone = dict(type=f'mmmamba.{family}', arch=arch, img_size=img_size, out_type=out_type)
    channels = cls(**{k: v for k, v in backbone.items() if k != 'type'}).out_channels[-1]
    cfg = dict(type='ImageClassifier', backbone=backbone,
               head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=channels))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return PRETRAIN_MODELS.build(cfg)


# ---- the mixer -----------------------------------------------------------------------------
def release_mixer_tensors(mixer: BiMambaMixer) -> dict:
    state = {f'backbone.layers.0.mixer.{k}': v for k, v in mixer.state_dict().items()}
    return {k.split('.mixer.', 1)[1]: v for k, v in to_release(state, False).items()}


@pytest.mark.parametrize('channels, d_state', [(8, 4), (16, 16)])
def test_mixer_equals_both_recurrences_written_out(channels, d_state):
    torch.manual_seed(0)
    mixer = perturb_(BiMambaMixer(channels, d_state=d_state)).eval()
    x = torch.randn(2, 11, channels)
    with torch.no_grad():
        ours = mixer(x)
    reference = mixer_by_recurrence(release_mixer_tensors(mixer), x)
    torch.testing.assert_close(ours.double(), reference, atol=1e-5, rtol=1e-4)


def test_mixer_backward_direction_is_not_dropped():
    torch.manual_seed(0)
    mixer = perturb_(BiMambaMixer(8, d_state=4)).eval()
    with torch.no_grad():
        # step sizes near 1 and slow decay (A = -0.05): information travels far
        mixer.ssm.dt_proj_bias.fill_(0.5)
        mixer.ssm.A_log.fill_(-3.)
    x = torch.randn(1, 9, 8)
    later = x.clone()
    later[:, -1] += 1.  # only the last token changes
    with torch.no_grad():
        a, b = mixer(x), mixer(later)
    # the first output sees the last token only through the backward scan
    assert (a[:, 0] - b[:, 0]).abs().max() > 1e-3
    # and the result is not the forward direction alone
    tensors = release_mixer_tensors(mixer)
    forward_only = dict(tensors)
    forward_only['D_b'] = torch.zeros_like(tensors['D_b'])
    forward_only['x_proj_b.weight'] = torch.zeros_like(tensors['x_proj_b.weight'])
    no_backward = mixer_by_recurrence(forward_only, x)  # the backward half contributes 0
    assert (a.double() - no_backward).abs().max() > 1e-3


def test_mixer_parameters_follow_the_release_shapes():
    mixer = BiMambaMixer(192)  # Vim-tiny: d_inner 384, dt_rank 12, N 16
    tensors = release_mixer_tensors(mixer)
    assert tensors['in_proj.weight'].shape == (768, 192)
    assert tensors['conv1d.weight'].shape == tensors['conv1d_b.weight'].shape == (384, 1, 4)
    assert tensors['x_proj.weight'].shape == (12 + 32, 384)
    assert tensors['dt_proj.weight'].shape == (384, 12)
    assert tensors['A_log'].shape == tensors['A_b_log'].shape == (384, 16)
    assert tensors['out_proj.weight'].shape == (192, 384)
    assert mixer.in_proj.bias is None and mixer.out_proj.bias is None


# ---- whole models against the releases' forward ---------------------------------------------
@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_model_equals_the_release_forward_written_out(family):
    torch.manual_seed(0)
    classifier = perturb_(build_classifier(family, img_size=(64, 48))).double().eval()
    release = to_release(classifier.state_dict(), family == 'MambaReg')
    images = torch.randn(2, 3, 64, 48, dtype=torch.float64)  # 4x3 patches
    with torch.no_grad():
        ours = classifier(images, mode='tensor')
    torch.testing.assert_close(ours, release_forward(release, images, family == 'MambaReg'),
                               atol=1e-7, rtol=1e-6)


def first_layer_input(model: Vim, images: torch.Tensor) -> torch.Tensor:
    seen = []
    handle = model.layers[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    with torch.no_grad():
        model(images)
    handle.remove()
    return seen[0]


@torch.no_grad()
def patch_tokens(model: Vim, images: torch.Tensor) -> torch.Tensor:
    x = F.conv2d(images, model.patch_embed.proj.weight, model.patch_embed.proj.bias, stride=16)
    return x.flatten(2).transpose(1, 2) + model.pos_embed


def test_vim_class_token_sits_in_the_middle():
    torch.manual_seed(0)
    model = Vim(arch='atto', img_size=(48, 64)).eval()  # 3x4 = 12 patches, no resize
    images = torch.randn(2, 3, 48, 64)
    seq = first_layer_input(model, images)
    patches = patch_tokens(model, images)
    assert seq.shape[1] == 13
    cls = (model.cls_token + model.cls_pos_embed).detach()
    torch.testing.assert_close(seq[:, 6], cls.expand(2, -1, -1)[:, 0])
    torch.testing.assert_close(seq[:, :6], patches[:, :6])
    torch.testing.assert_close(seq[:, 7:], patches[:, 6:])


def test_mamba_reg_registers_are_spread_evenly():
    torch.manual_seed(0)
    model = MambaReg(arch=dict(embed_dims=16, num_layers=1, num_registers=12, register_reduce=2),
                     out_type='registers').eval()
    images = torch.randn(1, 3, 224, 224)  # 196 patches: a register after every 15
    seq = first_layer_input(model, images)
    positions = list(range(15, 192, 16))
    assert len(positions) == 12 and seq.shape[1] == 196 + 12
    registers = (model.registers + model.register_pos_embed).detach()[0]
    torch.testing.assert_close(seq[0, positions], registers)
    others = [i for i in range(208) if i not in positions]
    torch.testing.assert_close(seq[:, others], patch_tokens(model, images))
    with torch.no_grad():
        (representation, ) = model(images)
    assert representation.shape == (1, 12 * 16 // 2) and model.out_channels == (96, )


@pytest.mark.parametrize('reduce, channels', [(1, 12 * 32), (2, 12 * 16), (4, 12 * 8)])
def test_mamba_reg_representation_width(reduce, channels):
    arch = dict(embed_dims=32, num_layers=1, num_registers=12, register_reduce=reduce)
    model = MambaReg(arch=arch, out_type='registers').eval()
    with torch.no_grad():
        (out, ) = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, channels) == (2, model.out_channels[0])
    assert (model.register_proj is None) == (reduce == 1)


# ---- position embedding resizing -----------------------------------------------------------
def resized_copy(model: Vim, img_size: tuple) -> Vim:
    """The same weights in a model whose stored grid is ``img_size``'s, its position embedding
    resized here (bicubic, align_corners=False) so that it needs no resizing at run time."""
    grid = tuple(-(-s // 16) for s in img_size)
    other = type(model)(arch=model.arch, img_size=img_size).eval()
    state = model.state_dict()
    side = model.pos_embed_grid
    pos = model.pos_embed.detach().reshape(1, *side, -1).permute(0, 3, 1, 2)
    pos = F.interpolate(pos, size=grid, mode='bicubic', align_corners=False)
    state['pos_embed'] = pos.flatten(2).transpose(1, 2)
    other.load_state_dict(state, strict=True)
    return other


@pytest.mark.parametrize('family', sorted(FAMILIES))
@pytest.mark.parametrize('size, padded', [((320, 256), (320, 256)), ((230, 200), (240, 208))])
def test_pos_embed_is_resized_to_the_input_grid(family, size, padded):
    torch.manual_seed(0)
    model = perturb_(FAMILIES[family][0](arch='atto')).eval()  # stored for 224: 14x14
    other = resized_copy(model, padded)
    images = torch.randn(1, 3, *size)
    padded_images = F.pad(images, (0, padded[1] - size[1], 0, padded[0] - size[0]))
    with torch.no_grad():
        (out, ), (expected, ) = model(images), other(padded_images)
    assert out.shape == (1, 32, padded[0] // 16, padded[1] // 16)
    torch.testing.assert_close(out, expected)


# ---- sizes and arguments ---------------------------------------------------------------------
@pytest.mark.parametrize('family, arch', sorted(PARAMS_M))
def test_classifier_params_match_the_papers(family, arch):
    cls, out_type = FAMILIES[family]
    with torch.device('meta'):
        backbone = cls(arch=arch, out_type=out_type)
    head = backbone.out_channels[-1] * 1000 + 1000  # LinearClsHead, 1000 classes
    params = sum(p.numel() for p in backbone.parameters()) + head
    assert params / 1e6 == pytest.approx(PARAMS_M[family, arch], rel=0.03)


def test_out_type_and_arch_are_checked():
    with pytest.raises(ValueError, match=r"out_type must be one of \('featmap', 'cls_token'\) "
                       r"for Vim, got 'registers'"):
        Vim(arch='atto', out_type='registers')
    with pytest.raises(ValueError, match=r"out_type must be one of \('featmap', 'registers'\) "
                       r"for MambaReg, got 'cls_token'"):
        MambaReg(arch='atto', out_type='cls_token')
    with pytest.raises(ValueError, match='register_reduce that divides embed_dims=32, got '
                       'num_registers=4, register_reduce=3'):
        MambaReg(arch=dict(embed_dims=32, num_layers=1, num_registers=4, register_reduce=3))
    with pytest.raises(ValueError, match='a Vim needs at least one layer, got arch '
                       'num_layers=0'):
        Vim(arch=dict(embed_dims=32, num_layers=0))
    assert MODELS.get('Vim') is Vim and MODELS.get('MambaReg') is MambaReg


def test_final_norm_applies_to_the_last_layer_only():
    torch.manual_seed(0)
    normed = perturb_(Vim(arch='atto', out_indices=(1, 3))).eval()
    plain = Vim(arch='atto', out_indices=(1, 3), final_norm=False).eval()
    missing, unexpected = plain.load_state_dict(normed.state_dict(), strict=False)
    assert not missing and unexpected == ['norm_f.weight']
    images = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        (a1, a3), (b1, b3) = normed(images), plain(images)
    torch.testing.assert_close(a1, b1)
    channels_last = b3.permute(0, 2, 3, 1).double()
    expected = rms_norm(channels_last, normed.norm_f.weight.detach().double())
    torch.testing.assert_close(a3.double(), expected.permute(0, 3, 1, 2), atol=1e-5, rtol=1e-5)


def test_classification_outputs_and_bf16():
    torch.manual_seed(0)
    for model in (Vim(arch='atto', out_type='cls_token', out_indices=(0, -1)),
                  MambaReg(arch='atto', out_type='registers')):
        with torch.autocast('cpu', dtype=torch.bfloat16):
            outs = model.train()(torch.randn(2, 3, 40, 56))
        assert [tuple(o.shape) for o in outs] == [(2, c) for c in model.out_channels]
        sum(o.float().square().mean() for o in outs).backward()
        assert all(torch.isfinite(o.float()).all() for o in outs)
        assert all(p.grad is not None and torch.isfinite(p.grad).all()
                   for p in model.parameters())


def test_layer_depth_follows_mmpretrain_vit():
    model = MambaReg(arch='atto', out_type='registers')
    depth = {n: model.get_layer_depth('backbone.' + n, prefix='backbone.')
             for n, _ in model.named_parameters()}
    assert depth['registers'] == depth['pos_embed'] == depth['patch_embed.proj.weight'] == (0, 6)
    assert depth['layers.2.mixer.ssm.A_log'] == (3, 6)
    assert depth['norm_f.weight'] == depth['register_proj.weight'] == (5, 6)


# ---- official release checkpoints ------------------------------------------------------------
@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_converter_round_trip_loads_strictly(family):
    torch.manual_seed(0)
    source = perturb_(build_classifier(family)).eval()
    release = to_release(source.state_dict(), family == 'MambaReg')
    assert not any(k.startswith('backbone.') for k in release)
    target = build_classifier(family).eval()
    target.load_state_dict(convert_vim(release), strict=True)
    images = torch.randn(1, 3, 50, 70)
    with torch.no_grad():
        torch.testing.assert_close(target(images, mode='tensor'), source(images, mode='tensor'))


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_converter_resizes_the_pos_embed_to_the_model_grid(family, tmp_path):
    torch.manual_seed(0)
    source = perturb_(build_classifier(family, img_size=64)).eval()  # 4x4 grid
    release = to_release(source.state_dict(), family == 'MambaReg')
    pos = source.backbone.pos_embed.detach().reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
    expected = F.interpolate(pos, size=(6, 6), mode='bicubic', align_corners=False)
    expected = expected.flatten(2).transpose(1, 2)
    # through the classifier (strict) ...
    target = build_classifier(family, img_size=96).eval()  # 6x6 grid
    target.load_state_dict(convert_vim(release, grid=(6, 6)), strict=True)
    torch.testing.assert_close(target.backbone.pos_embed.detach(), expected)
    # ... and through a dense backbone's init_cfg, from a release file ({'model': ...})
    path = tmp_path / 'release.pth'
    torch.save(dict(model=release), path)
    cls = FAMILIES[family][0]
    backbone = cls(arch='atto', img_size=96, init_cfg=dict(type='Pretrained',
                                                           checkpoint=str(path)))
    backbone.init_weights()
    for key, value in target.backbone.state_dict().items():
        if key in backbone.state_dict():
            torch.testing.assert_close(backbone.state_dict()[key], value, msg=key)
    tokens = 'cls_pos_embed' if family == 'Vim' else 'register_pos_embed'
    torch.testing.assert_close(backbone.state_dict()[tokens],
                               source.backbone.state_dict()[tokens])


def test_converter_keeps_native_dicts_and_checks_release_keys():
    native = build_classifier('Vim').state_dict()
    assert convert_vim(native) is native
    assert convert_vim(native, grid=(4, 4)) is native  # already that grid
    with pytest.raises(ValueError, match=r"cannot resize 'backbone\.pos_embed' of shape "
                       r"\(1, 12, 32\) to the 4x4 patch grid: 12 positions are not a square"):
        convert_vim({'backbone.pos_embed': torch.zeros(1, 12, 32)}, grid=(4, 4))
    release = to_release(native, mamba_reg=False)
    with pytest.raises(ValueError, match="unexpected key 'rope.freqs_cos' in an official Vim"):
        convert_vim({**release, 'rope.freqs_cos': torch.zeros(1)})
    with pytest.raises(ValueError, match="unexpected key 'layers.1.mixer.gamma' in an official"):
        convert_vim({**release, 'layers.1.mixer.gamma': torch.zeros(1)})
    one_way = {k: v for k, v in release.items() if k != 'layers.2.mixer.conv1d_b.weight'}
    with pytest.raises(ValueError, match=r'layer 2 of the Vim checkpoint has mixer\.conv1d\.'
                       r'weight but not mixer\.conv1d_b\.weight: only bidirectional'):
        convert_vim(one_way)


def test_converter_script_writes_a_strictly_loadable_classifier(tmp_path, tool_env):
    torch.manual_seed(0)
    source = perturb_(build_classifier('MambaReg', img_size=64)).eval()
    src, dst = tmp_path / 'release.pth', tmp_path / 'out' / 'converted.pth'
    torch.save(dict(model=to_release(source.state_dict(), mamba_reg=True)), src)
    script = REPO / 'tools' / 'model_converters' / 'vim2mmmamba.py'
    subprocess.run([sys.executable, str(script), str(src), str(dst), '--img-size', '96'],
                   check=True, env=tool_env)
    target = build_classifier('MambaReg', img_size=96).eval()
    target.load_state_dict(torch.load(dst)['state_dict'], strict=True)
    assert target.backbone.pos_embed.shape == (1, 36, 32)
    torch.testing.assert_close(target.backbone.registers, source.backbone.registers)


@pytest.mark.parametrize('family, length', [('Vim', 16 + 1), ('MambaReg', 16 + 4)])
def test_flop_count_traces_one_scan_of_both_directions_per_layer(family, length):
    from mmmamba.ops import flop_analyzer
    model = FAMILIES[family][0](arch='atto').eval()  # 4 layers, d_inner 64, N 16
    analyzer = flop_analyzer(model, (torch.randn(1, 3, 64, 64), ))  # 4x4 patches
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    channels = 2 * 64  # both directions in one scan
    per_layer = 9 * length * channels * 16 + channels * length  # 9 B L D N + B D L (skip D)
    assert analyzer.by_operator()['selective_scan'] == 4 * per_layer
