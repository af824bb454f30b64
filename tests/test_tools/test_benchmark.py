import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'tools' / 'analysis_tools' / 'benchmark.py'
# What the quick run is asked for: --quick turns every arch into the test-only 'atto'. Two
# models only: every (model, size) costs two fresh interpreters that import mmmamba.
QUICK_MODELS = ['mambaout:tiny', 'vmamba:tiny:channel_first=True']
QUICK_LABELS = ['mambaout:atto', 'vmamba:atto:channel_first=True']
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


@pytest.mark.parametrize('text, message', [
    ('mambaout', r"--models entry 'mambaout' is not FAMILY:ARCH\[:KEY=VALUE...\]"),
    ('mambaout:', r"--models entry 'mambaout:' is not FAMILY:ARCH"),
    ('resnet:tiny', r"--models entry 'resnet:tiny': unknown backbone family 'resnet'; "
     r"registered families: \[.*'mambaout'.*'vmamba'.*\]"),
    ('vmamba:tiny:channel_first', r"--models entry 'vmamba:tiny:channel_first': "
     r"'channel_first' is not KEY=VALUE"),
    ('vmamba:tiny:arch=small', r"set arch with FAMILY:ARCH, not as 'arch=small'"),
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
])
def test_cli_rejects_bad_arguments_before_measuring(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        load_benchmark().main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err


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
    for row in rows:
        assert len(row) == 11, row
        label, params, size, fwd, fwd_bwd, peak_fwd, peak_fwd_bwd, runs = row[:8]
        assert params.endswith('M') and runs == '1/1'  # --quick: one timed run each
        assert float(fwd) > 0 and float(fwd_bwd) > 0
        printed[(label, int(size))] = row
    for (label, size), row in printed.items():
        first = printed[(QUICK_LABELS[0], size)]
        if label == QUICK_LABELS[0]:
            assert row[8:] == ['1.00', '1.00', '1.00' if float(row[6]) > 0 else '-']
        for ratio, column in zip(row[8:], (3, 4, 6)):  # fwd, fwd+bwd, fwd+bwd peak
            assert_printed_ratio(ratio, row[column], first[column])

    # growth: one row per model and pair of consecutive sizes
    growth = table_rows(lines, 'growth with input size', 'load average at the end')
    assert [row[:3] for row in growth] == [[label, '32->64', '4.00'] for label in QUICK_LABELS]
    for label, _, _, fwd, fwd_bwd, mem in growth:
        small, large = printed[(label, 32)], printed[(label, 64)]
        for ratio, column in zip((fwd, fwd_bwd, mem), (3, 4, 6)):
            assert_printed_ratio(ratio, large[column], small[column])

    # the keyword override travelled to the worker that built the model
    results = json.loads(out_json.read_text())
    assert set(results) == {f'{label}@{size}' for label in QUICK_LABELS for size in QUICK_SIZES}
    assert results['vmamba:atto:channel_first=True@64']['cfg'] == dict(
        type='mmmamba.VMamba', arch='atto', out_indices=[0, 1, 2, 3], channel_first=True)
