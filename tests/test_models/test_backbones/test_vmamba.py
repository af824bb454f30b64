"""VMamba-specific checks: SS2D against the four recurrences written out here, both layouts, the
release's sizes, and the official checkpoint converter. The shared backbone contract (shapes,
frozen stages, with_cp, drop path, pretrained round trip, bf16, layer depth) is in
test_contract.py."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import DefaultScope

from mmmamba.models.backbones import VMamba, convert_vmamba
from mmmamba.models.backbones.vmamba import SS2D

REPO = Path(__file__).resolve().parents[3]
# Release table (github.com/MzeroMiko/VMamba, assets/performance.md): classifier params in M.
# The MambaOut paper rounds the vanilla models down (22M, 75M); the release says 23M and 76M.
RELEASE_PARAMS_M = {
    'tiny': 30, 'small': 50, 'base': 89, 'vanilla-tiny': 23, 'vanilla-small': 44,
    'vanilla-base': 76
}
TINY_V0 = dict(VMamba.arch_settings['vanilla-tiny'], depths=(1, 1, 2, 1), dims=(8, 16, 24, 32),
               d_state=3)


def scan_orders(H: int, W: int) -> list:
    """Raster positions visited by VMamba's four scans: row-major, column-major, both reversed."""
    rows = [h * W + w for h in range(H) for w in range(W)]
    cols = [h * W + w for w in range(W) for h in range(H)]
    return [rows, cols, rows[::-1], cols[::-1]]


def ss2d_by_recurrence(layer: SS2D, x: torch.Tensor) -> torch.Tensor:
    """SS2D of a channels-last map, evaluated step by step from the equations in float64."""
    p = {k: v.double() for k, v in layer.state_dict().items()}
    x = x.double()
    batch, H, W, _ = x.shape
    D, N, R = layer.d_inner, layer.ssm.d_state, layer.ssm.dt_rank
    xz = x @ p['in_proj.weight'].T
    u, z = (xz[..., :D], xz[..., D:]) if layer.gated else (xz, None)
    u = F.conv2d(u.permute(0, 3, 1, 2), p['conv.weight'], p.get('conv.bias'), padding=1, groups=D)
    u = F.silu(u).flatten(2)  # (batch, D, H*W) raster order
    y = torch.zeros_like(u)
    for k, order in enumerate(scan_orders(H, W)):
        A = -torch.exp(p['ssm.A_log'][k * D:(k + 1) * D])  # (D, N)
        skip = p['ssm.D'][k * D:(k + 1) * D]
        h = torch.zeros(batch, D, N, dtype=torch.float64)
        for pos in order:
            u_t = u[:, :, pos]  # (batch, D)
            proj = u_t @ p['ssm.x_proj_weight'][k].T  # (batch, R + 2N)
            dt_low, B_t, C_t = proj[:, :R], proj[:, R:R + N], proj[:, R + N:]
            dt = F.softplus(dt_low @ p['ssm.dt_proj_weight'][k].T + p['ssm.dt_proj_bias'][k])
            h = torch.exp(dt[..., None] * A) * h + dt[..., None] * B_t[:, None, :] * u_t[..., None]
            y[:, :, pos] += (h * C_t[:, None, :]).sum(-1) + skip * u_t
    y = y.transpose(1, 2).reshape(batch, H, W, D)
    y = F.layer_norm(y, (D, ), p['out_norm.weight'], p['out_norm.bias'], layer.out_norm.eps)
    if z is not None:
        y = y * F.silu(z)
    return y @ p['out_proj.weight'].T


def perturb_(module: nn.Module) -> nn.Module:
    with torch.no_grad():
        for param in module.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return module


@pytest.mark.parametrize('gated, d_state, ssm_ratio', [(False, 1, 1.0), (True, 4, 2.0)])
def test_ss2d_equals_four_recurrences_written_out(gated, d_state, ssm_ratio):
    torch.manual_seed(0)
    layer = perturb_(SS2D(8, d_state=d_state, ssm_ratio=ssm_ratio, gated=gated)).eval()
    x = torch.randn(2, 3, 5, 8)
    with torch.no_grad():
        ours = layer(x)
    torch.testing.assert_close(ours.double(), ss2d_by_recurrence(layer, x), atol=1e-5, rtol=1e-4)


def test_channel_first_and_channel_last_agree():
    torch.manual_seed(0)
    for arch in ('atto', TINY_V0):
        last = perturb_(VMamba(arch=arch)).eval()
        first = VMamba(arch=arch, channel_first=True).eval()
        first.load_state_dict(last.state_dict(), strict=True)
        x = torch.randn(1, 3, 45, 38)
        with torch.no_grad():
            for a, b in zip(last(x), first(x)):
                torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_ssm_parameters_follow_the_mamba_init():
    layer = SS2D(32, d_state=4, ssm_ratio=2.0)
    ssm = layer.ssm
    assert ssm.dt_rank == 2 and ssm.x_proj_weight.shape == (4, 2 + 8, 64)
    torch.testing.assert_close(ssm.A_log, torch.log(torch.arange(1., 5.)).expand(256, 4))
    assert torch.all(ssm.D == 1)
    dt = F.softplus(ssm.dt_proj_bias)
    assert dt.min() >= 1e-3 * 0.999 and dt.max() <= 0.1 * 1.001
    assert ssm.dt_proj_weight.abs().max() <= 2**-0.5
    assert ssm.A_log._no_weight_decay and ssm.D._no_weight_decay


@pytest.mark.parametrize('arch', sorted(RELEASE_PARAMS_M))
def test_classifier_params_match_the_release(arch):
    with torch.device('meta'):
        backbone = VMamba(arch=arch, out_indices=(3, ))
    head = backbone.dims[-1] * 1000 + 1000  # LinearClsHead, 1000 classes
    params = sum(p.numel() for p in backbone.parameters()) + head
    assert params / 1e6 == pytest.approx(RELEASE_PARAMS_M[arch], rel=0.03)


def test_arch_dict_checks_its_choices():
    with pytest.raises(ValueError, match="arch stem must be 'conv' or 'patch', got 'big'"):
        VMamba(arch=dict(TINY_V0, stem='big'))
    with pytest.raises(ValueError, match="downsample must be 'conv', 'merge' or None"):
        VMamba(arch=dict(TINY_V0, downsample='pool'))


# ---- official release checkpoints ------------------------------------------------------------
def to_release(state: dict, legacy: bool) -> dict:
    """Rename a converted classifier state dict back to the release's keys, written out here.

    ``legacy``: early v0 names (``patch_embed.proj``, ``ln_1``, ``self_attention``, top-level
    ``norm``/``head``); else the v2 code's (Sequential ``patch_embed``/``downsample`` indices,
    ``norm``/``op`` blocks, ``classifier.{norm,head}``).
    """
    import re
    ssm_names = dict(x_proj_weight='x_proj_weight', dt_proj_weight='dt_projs_weight',
                     dt_proj_bias='dt_projs_bias', A_log='A_logs', D='Ds')
    out = {}
    for key, value in state.items():
        k = key
        if k.startswith('head.fc.'):
            k = ('head.' if legacy else 'classifier.head.') + k[len('head.fc.'):]
            out[k] = value
            continue
        k = k[len('backbone.'):]
        m = re.match(r'stem\.(\w+)\.(.*)', k)
        if m:
            index = dict(conv1=0, norm1=2, conv2=5, norm2=7, proj=0, norm=2)[m.group(1)]
            k = (f'patch_embed.{m.group(1)}.' if legacy else f'patch_embed.{index}.') + m.group(2)
        m = re.match(r'stages\.(\d+)\.downsample\.(\w+)\.(.*)', k)
        if m:
            stage, name = int(m.group(1)) - 1, m.group(2)
            conv_downsample = f'backbone.stages.{stage + 1}.downsample.conv.weight' in state
            if conv_downsample and not legacy:  # Sequential(permute, conv, permute, norm)
                name = dict(conv='1', norm='3')[name]
            k = f'layers.{stage}.downsample.{name}.{m.group(3)}'
        m = re.match(r'stages\.(\d+)\.blocks\.(\d+)\.(.*)', k)
        if m:
            rest = m.group(3)
            rest = re.sub(r'^op\.ssm\.(\w+)$', lambda n: 'op.' + ssm_names[n.group(1)], rest)
            rest = rest.replace('op.conv.', 'op.conv2d.')
            if legacy:
                rest = re.sub(r'^norm\.', 'ln_1.', rest).replace('op.', 'self_attention.')
            k = f'layers.{m.group(1)}.blocks.{m.group(2)}.{rest}'
        if re.match(r'norm3\.', k):
            k = ('norm.' if legacy else 'classifier.norm.') + k[len('norm3.'):]
        out[k] = value
    return out


def build_classifier(arch, num_classes: int = 5) -> nn.Module:
    from mmpretrain.registry import MODELS
    cfg = dict(
        type='ImageClassifier',
        backbone=dict(type='mmmamba.VMamba', arch=arch, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes,
                  in_channels=VMamba.parse_arch(arch)['dims'][-1]))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg)


@pytest.mark.parametrize('arch, legacy', [('atto', False), (TINY_V0, False), (TINY_V0, True)])
def test_converter_round_trip_loads_strictly(arch, legacy):
    torch.manual_seed(0)
    source = perturb_(build_classifier(arch)).eval()
    release = to_release(source.state_dict(), legacy)
    assert not any(k.startswith(('backbone.', 'stages.')) for k in release)
    target = build_classifier(arch).eval()
    target.load_state_dict(convert_vmamba(release), strict=True)
    x = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(target(x, mode='tensor'), source(x, mode='tensor'))


def test_converter_squeezes_1x1_conv_weights_and_keeps_native_dicts():
    native = build_classifier('atto').state_dict()
    assert convert_vmamba(native) is native
    release = to_release(native, legacy=False)
    key = 'layers.0.blocks.0.op.in_proj.weight'
    release[key] = release[key][:, :, None, None]
    converted = convert_vmamba(release)
    assert converted['backbone.stages.0.blocks.0.op.in_proj.weight'].shape == native[
        'backbone.stages.0.blocks.0.op.in_proj.weight'].shape


def test_converter_rejects_unknown_keys():
    release = to_release(build_classifier('atto').state_dict(), legacy=False)
    release['pos_embed'] = torch.zeros(1)
    with pytest.raises(ValueError, match="unexpected key 'pos_embed' in an official VMamba"):
        convert_vmamba(release)


def test_release_file_loads_into_a_dense_backbone_and_reports_missing_keys(tmp_path, caplog):
    torch.manual_seed(0)
    source = perturb_(build_classifier(TINY_V0)).eval()
    path = tmp_path / 'vssm_tiny.pth'
    torch.save(dict(model=to_release(source.state_dict(), legacy=True)), path)
    backbone = VMamba(arch=TINY_V0, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    backbone.init_weights()
    for key, value in source.backbone.state_dict().items():
        torch.testing.assert_close(backbone.state_dict()[key], value, msg=key)
    # a wrong size: shape mismatch names the key
    other = VMamba(arch=dict(TINY_V0, dims=(8, 16, 24, 40)),
                   init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match=r'(?s)shape mismatch .*stages\.3\.'):
        other.init_weights()


def test_converter_script_writes_a_strictly_loadable_classifier(tmp_path, tool_env):
    torch.manual_seed(0)
    source = perturb_(build_classifier('atto')).eval()
    src, dst = tmp_path / 'release.pth', tmp_path / 'out' / 'converted.pth'
    torch.save(dict(model=to_release(source.state_dict(), legacy=False)), src)
    script = REPO / 'tools' / 'model_converters' / 'vmamba2mmmamba.py'
    subprocess.run([sys.executable, str(script), str(src), str(dst)], check=True, env=tool_env)
    target = build_classifier('atto').eval()
    target.load_state_dict(torch.load(dst)['state_dict'], strict=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(target(x, mode='tensor'), source(x, mode='tensor'))
