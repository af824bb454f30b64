import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'tools' / 'analysis_tools' / 'benchmark.py'
# What the quick run is asked for: --quick turns every arch into the test-only 'atto'. Three
# models only: every (model, size) costs two fresh interpreters that import mmmamba. A timm
# model keeps its name under --quick; depth=2 keeps it small.
QUICK_MODELS = ['mambaout:tiny', 'vim:tiny', 'timm:vit_tiny_patch16_224:depth=2']
QUICK_LABELS = ['mambaout:atto', 'vim:atto', 'timm:vit_tiny_patch16_224:depth=2']
QUICK_SIZES = [32, 64]


def load_benchmark():
    spec = importlib.util.spec_from_file_location('benchmark', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def half_unit(text: str) -> float:
    """Half a unit of the last printed digit: how far rounding can have moved the value."""
    decimals = len(text.split('.')[1]) if '.' in text else 0
    return 0.5 * 10**-decimals


def assert_printed_ratio(ratio: str, numerator: str, denominator: str) -> None:
    """``ratio`` is numerator / denominator, allowing for the rounding of all three prints."""
    num, den = float(numerator), float(denominator)
    if ratio == '-':  # printed only when the denominator is exactly zero
        assert den == 0, (ratio, numerator, denominator)
        return
    low = (num - half_unit(numerator)) / (den + half_unit(denominator))
    den_low = den - half_unit(denominator)
    high = (num + half_unit(numerator)) / den_low if den_low > 0 else math.inf
    slack = half_unit(ratio)
    assert low - slack <= float(ratio) <= high + slack, (ratio, numerator, denominator)


def table_rows(lines, after, end_start):
    """The rows (split on spaces) of the first table after the line starting with ``after``."""
    start = next(i for i, line in enumerate(lines) if line.startswith(after))
    start = next(i for i in range(start, len(lines)) if lines[i].startswith('model '))
    assert set(lines[start + 1]) == {'-'}
    rows = []
    for line in lines[start + 2:]:
        if line.startswith(end_start):
            return rows
        rows.append(line.split())
    raise AssertionError(f'no line starting with {end_start!r} after the table')


def test_model_spec_builds_the_named_backbone_with_its_overrides():
    benchmark = load_benchmark()
    label, cfg = benchmark.parse_model_spec('MambaOut:tiny:kernel_size=3:drop_path_rate=0.1')
    assert label == 'MambaOut:tiny:kernel_size=3:drop_path_rate=0.1'
    assert cfg == dict(type='mmmamba.MambaOut', arch='tiny', out_indices=(0, 1, 2, 3),
                       kernel_size=3, drop_path_rate=0.1)
    label, cfg = benchmark.parse_model_spec('vmamba:tiny:channel_first=True:out_indices=(3,)',
                                            arch='atto')
    assert label == 'vmamba:atto:channel_first=True:out_indices=(3,)'
    assert cfg == dict(type='mmmamba.VMamba', arch='atto', out_indices=(3, ),
                       channel_first=True)
    # the override reaches the module: every depthwise conv of the blocks is 3x3
    model = benchmark.build_backbone(benchmark.parse_model_spec('mambaout:atto:kernel_size=3')[1])
    kernels = {m.conv.kernel_size for stage in model.stages for m in stage.blocks}
    assert kernels == {(3, 3)}


def test_vim_family_specs_default_to_the_dense_output():
    benchmark = load_benchmark()
    for family, cls in (('vim', 'Vim'), ('MambaReg', 'MambaReg')):
        label, cfg = benchmark.parse_model_spec(f'{family}:small', arch='atto')
        assert label == f'{family}:atto'
        assert cfg == dict(type=f'mmmamba.{cls}', arch='atto', out_type='featmap',
                           out_indices=(-1, ))
    _, cfg = benchmark.parse_model_spec('vim:atto:out_indices=(1,3)')
    assert cfg['out_indices'] == (1, 3)
    model = benchmark.build_backbone(benchmark.parse_model_spec('vim:atto')[1])
    outs = benchmark.model_outputs(model, dict(type='mmmamba.Vim'), torch.randn(1, 3, 64, 80))
    # one map of the last layer's patch tokens at stride 16 (atto: 32 channels)
    assert [out.shape for out in outs] == [(1, 32, 4, 5)]


def test_timm_spec_builds_the_named_model_with_its_overrides():
    import timm
    benchmark = load_benchmark()
    label, cfg = benchmark.parse_model_spec('timm:vit_tiny_patch16_224:depth=2:embed_dim=48',
                                            arch='atto')
    assert label == 'timm:vit_tiny_patch16_224:depth=2:embed_dim=48'  # --quick keeps the name
    assert cfg == dict(type='timm', model_name='vit_tiny_patch16_224', pretrained=False,
                       num_classes=0, dynamic_img_size=True, depth=2, embed_dim=48)
    model = benchmark.build_backbone(cfg)
    assert len(model.blocks) == 2 and model.embed_dim == 48
    # the outputs are timm's own forward_features at a size other than 224: the token
    # sequence, class token first, of a 3x5 grid of 16-pixel patches
    x = torch.randn(1, 3, 48, 80)
    (out, ) = benchmark.model_outputs(model, cfg, x)
    assert out.shape == (1, 1 + 3 * 5, 48)
    reference = timm.create_model('vit_tiny_patch16_224', pretrained=False, num_classes=0,
                                  dynamic_img_size=True, depth=2, embed_dim=48)
    reference.load_state_dict(model.state_dict())
    reference.eval(), model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(x), reference.forward_features(x))


@pytest.mark.parametrize('text, message', [
    ('mambaout', r"--models entry 'mambaout' is not FAMILY:ARCH\[:KEY=VALUE...\]"),
    ('mambaout:', r"--models entry 'mambaout:' is not FAMILY:ARCH"),
    ('resnet:tiny', r"--models entry 'resnet:tiny': unknown backbone family 'resnet'; "
     r"registered families: \[.*'mambaout'.*'vmamba'.*\]"),
    ('vmamba:tiny:channel_first', r"--models entry 'vmamba:tiny:channel_first': "
     r"'channel_first' is not KEY=VALUE"),
    ('vmamba:tiny:arch=small', r"set arch with vmamba:tiny, not as 'arch=small'"),
    ('timm:vit_small_patch16_224:model_name=x',
     r"set model_name with timm:vit_small_patch16_224, not as 'model_name=x'"),
    ('timm:vit_small_patch16_224:depth', r"'depth' is not KEY=VALUE \(a keyword argument "
     r"of timm.create_model"),
    ('timm:no_such_model', r"--models entry 'timm:no_such_model': timm has no model "
     r"'no_such_model'"),
])
def test_bad_model_spec_names_what_was_passed(text, message):
    with pytest.raises(ValueError, match=message):
        load_benchmark().parse_model_spec(text)


@pytest.mark.parametrize('argv, message', [
    (['--sizes', '32'], '--models is required'),
    (['--models', 'mambaout:huge'], "--models 'mambaout:huge': .*unknown MambaOut arch 'huge'"),
    (['--models', 'mambaout:atto:no_such_option=1'],
     "--models 'mambaout:atto:no_such_option=1': .*no_such_option"),
    (['--models', 'mambaout:atto', 'mambaout:atto'], "--models names 'mambaout:atto' twice"),
    (['--models', 'mambaout:atto', '--sizes', '0'], '--sizes must be at least 1, got 0'),
    (['--models', 'timm:vit_tiny_patch16_224:no_such_option=1'],
     "--models 'timm:vit_tiny_patch16_224:no_such_option=1': .*no_such_option"),
])
def test_cli_rejects_bad_arguments_before_measuring(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        load_benchmark().main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err


@pytest.mark.slow
def test_quick_run_prints_consistent_ratios_and_growth(tmp_path, tool_env):
    out_json = tmp_path / 'bench.json'
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), '--quick', '--threads', '1', '--models', *QUICK_MODELS,
         '--json', str(out_json)],
        capture_output=True, text=True, env=tool_env, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()

    # comparison: one row per (size, model), sizes outer, in the order named
    rows = table_rows(lines, 'torch ',
                      'batch 1; x: value / value of mambaout:atto at the same size')
    assert [(row[0], int(row[2])) for row in rows] == [
        (label, size) for size in QUICK_SIZES for label in QUICK_LABELS]
    printed = {}
    # columns: label params size | fwd fwd+bwd (wall ms) fwd fwd+bwd (cpu ms) fwd fwd+bwd
    # (MiB) | runs | ratios of fwd, fwd+bwd, cpu fwd, cpu fwd+bwd, fwd+bwd MiB
    ratio_of = (3, 4, 5, 6, 8)
    for row in rows:
        assert len(row) == 15, row
        label, params, size, fwd, fwd_bwd, fwd_cpu, fwd_bwd_cpu = row[:7]
        assert params.endswith('M') and row[9] == '1/1'  # --quick: one timed run each
        assert min(map(float, (fwd, fwd_bwd, fwd_cpu, fwd_bwd_cpu))) > 0
        printed[(label, int(size))] = row
    for (label, size), row in printed.items():
        first = printed[(QUICK_LABELS[0], size)]
        if label == QUICK_LABELS[0]:
            assert row[10:] == ['1.00'] * 4 + ['1.00' if float(row[8]) > 0 else '-']
        for ratio, column in zip(row[10:], ratio_of):
            assert_printed_ratio(ratio, row[column], first[column])

    # growth: one row per model and pair of consecutive sizes, the same five ratios
    growth = table_rows(lines, 'growth with input size', 'load average at the end')
    assert [row[:3] for row in growth] == [[label, '32->64', '4.00'] for label in QUICK_LABELS]
    for row in growth:
        assert len(row) == 8, row
        small, large = printed[(row[0], 32)], printed[(row[0], 64)]
        for ratio, column in zip(row[3:], ratio_of):
            assert_printed_ratio(ratio, large[column], small[column])

    # the keyword override travelled to the worker that built the model
    results = json.loads(out_json.read_text())
    assert set(results) == {f'{label}@{size}' for label in QUICK_LABELS for size in QUICK_SIZES}
    timm_label = QUICK_LABELS[2]
    assert results[f'{timm_label}@64']['cfg'] == dict(
        type='timm', model_name='vit_tiny_patch16_224', pretrained=False, num_classes=0,
        dynamic_img_size=True, depth=2)
    assert results['vim:atto@64']['cfg'] == dict(type='mmmamba.Vim', arch='atto',
                                                 out_type='featmap', out_indices=[-1])
    # the printed parameter count is that of a 2-block ViT-Ti built by timm itself
    import timm
    reference = timm.create_model('vit_tiny_patch16_224', num_classes=0, depth=2)
    assert printed[(timm_label, 64)][1] == (
        f'{sum(p.numel() for p in reference.parameters()) / 1e6:.2f}M')
    for res in results.values():
        assert {'fwd_cpu', 'fwd_bwd_cpu'} <= set(res)
