import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmmamba.ops import selective_scan_reference

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'tools' / 'analysis_tools' / 'benchmark_scan.py'


def load_benchmark():
    spec = importlib.util.spec_from_file_location('benchmark_scan', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_materialized_baseline_matches_reference():
    """The benchmark's second baseline computes the same scan (values and grads)."""
    materialized = load_benchmark().selective_scan_materialized
    gen = torch.Generator().manual_seed(0)
    batch, dim, length, state = 2, 3, 11, 4

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_()

    inputs = dict(u=rand(batch, dim, length), delta=rand(batch, dim, length),
                  A=(-torch.rand(dim, state, generator=gen, dtype=torch.float64)).requires_grad_(),
                  B=rand(batch, state, length), C=rand(batch, state, length), D=rand(dim),
                  z=rand(batch, dim, length), delta_bias=rand(dim))
    weight = torch.randn(batch, dim, length, generator=gen, dtype=torch.float64)
    results = []
    for fn in (selective_scan_reference, materialized):
        out = fn(**inputs, delta_softplus=True)
        grads = torch.autograd.grad((out * weight).sum(), list(inputs.values()))
        results.append((out, grads))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-10, atol=1e-12)
    for got, want in zip(results[1][1], results[0][1]):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_quick_run_prints_ratios_and_writes_json(tmp_path, tool_env):
    out_json = tmp_path / 'bench.json'
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), '--quick', '--cases', 'target', 'target-x4', '--backends',
         'torch', 'materialized', '--json', str(out_json)],
        capture_output=True, text=True, env=tool_env, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'torch: 4x L costs' in proc.stdout
    assert 'faster than the materialized baseline' in proc.stdout
    results = json.loads(out_json.read_text())
    # the reference is added for ratios; target-x4 has none; materialized only at target
    assert set(results) == {'target/torch', 'target/reference', 'target/materialized',
                            'target-x4/torch'}
    for res in results.values():
        assert res['fwd'] > 0 and res['fwd_bwd'] > 0 and res['peak'] > 0
        assert res['shape'][2] in (3136 // 16, 4 * 3136 // 16)  # --quick divides L by 16
