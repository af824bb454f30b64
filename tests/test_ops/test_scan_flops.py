"""FLOP counting of the scan operators through mmengine's FlopAnalyzer (mmmamba.ops.flops)."""
import importlib

import pytest
import torch
from mmengine.analysis import FlopAnalyzer
from torch import nn

from mmmamba.ops import (BACKEND_ENV, bidirectional_merge, bidirectional_scan, cross_merge,
                         cross_scan, flop_analyzer, last_backend, scan_flop_handles, selective_scan,
                         selective_scan_flops, selective_scan_reference)

scan_module = importlib.import_module('mmmamba.ops.selective_scan')


@pytest.fixture(autouse=True)
def no_backend_env(monkeypatch):
    monkeypatch.delenv(BACKEND_ENV, raising=False)


def release_rule(batch, dim, length, state, with_D, with_z):
    """The VMamba release's count, written out: 9 B L D N, + B D L for D, + B D L for z."""
    return 9 * batch * length * dim * state + (int(with_D) + int(with_z)) * batch * dim * length


class OneScan(nn.Module):
    """A selective scan with its parameters, as a layer calls it."""

    def __init__(self, dim, state, groups=None, with_D=True, with_z=False, with_bias=True,
                 backend=None):
        super().__init__()
        self.A = nn.Parameter(-torch.arange(1, state + 1.0).repeat(dim, 1))
        self.D = nn.Parameter(torch.ones(dim)) if with_D else None
        self.delta_bias = nn.Parameter(torch.zeros(dim)) if with_bias else None
        self.groups, self.with_z, self.backend = groups, with_z, backend

    def forward(self, u, delta, B, C, z):
        return selective_scan(u, delta, self.A, B, C, D=self.D, z=z if self.with_z else None,
                              delta_bias=self.delta_bias, delta_softplus=True,
                              backend=self.backend)


def scan_inputs(batch, dim, length, state, groups=None):
    bc = (batch, state, length) if groups is None else (batch, groups, state, length)
    return (torch.randn(batch, dim, length), torch.randn(batch, dim, length), torch.randn(*bc),
            torch.randn(*bc), torch.randn(batch, dim, length))


def test_release_rule_in_numbers():
    # VMamba-T v2, stage 1 at 224x224: one call over 4 directions of d_inner = 96
    # channels, L = 56 * 56, N = 1, with D: 9 * 1 * 3136 * 384 * 1 + 1 * 384 * 3136
    assert selective_scan_flops(1, 4 * 96, 56 * 56, 1) == 10838016 + 1204224
    assert selective_scan_flops(2, 8, 37, 4, with_D=False) == 21312
    assert selective_scan_flops(2, 8, 37, 4, with_D=False, with_z=True) == 21312 + 592


# D and z each on/off; delta_bias alone is the case where the node's inputs hold one
# (dim,) tensor that is not D; grouped B/C as VMamba passes them (one group per direction).
@pytest.mark.parametrize('with_D,with_z,with_bias,groups', [
    (True, False, True, None),
    (False, False, True, None),
    (True, False, False, None),
    (False, True, False, None),
    (True, True, True, 4),
    (False, False, False, 2),
])
@pytest.mark.parametrize('grad', [True, False])  # get_flops.py traces under no_grad
def test_one_scan_counts_the_release_rule(with_D, with_z, with_bias, groups, grad):
    batch, dim, length, state = 2, 8, 37, 4
    model = OneScan(dim, state, groups, with_D=with_D, with_z=with_z, with_bias=with_bias)
    flops = flop_analyzer(model, scan_inputs(batch, dim, length, state, groups))
    expected = release_rule(batch, dim, length, state, with_D, with_z)
    with torch.set_grad_enabled(grad):  # the trace runs at the first query
        assert flops.total() == expected
    assert flops.by_operator() == {'selective_scan': expected}
    assert last_backend() == 'torch'
    # the scan is one node: none of the ops inside its forward reach the graph
    assert flops.unsupported_ops() == {}


def test_linear_then_scan_adds_up():
    batch, length, channels, dim, state = 2, 21, 6, 10, 3

    class ProjectThenScan(nn.Module):

        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(channels, 2 * dim)
            self.scan = OneScan(dim, state)

        def forward(self, x, B, C):
            u, delta = self.proj(x).transpose(1, 2).chunk(2, dim=1)  # (b, L, 2d) -> 2 x (b, d, L)
            return self.scan(u, delta, B, C, None)

    x = torch.randn(batch, length, channels)
    B, C = torch.randn(batch, state, length), torch.randn(batch, state, length)
    flops = flop_analyzer(ProjectThenScan(), (x, B, C))
    linear = batch * length * channels * 2 * dim  # one multiply-add per weight and token
    scan = release_rule(batch, dim, length, state, with_D=True, with_z=False)
    assert flops.by_operator() == {'linear': linear, 'selective_scan': scan}
    assert flops.total() == linear + scan
    assert flops.total('scan') == scan
    assert flops.total('proj') == linear


class ScanOrders(nn.Module):

    def forward(self, x):
        B, C, H, W = x.shape
        ys = cross_scan(x)  # (B, 4, C, H*W)
        y = cross_merge(ys, H, W)  # (B, C, H*W)
        return bidirectional_merge(bidirectional_scan(y))


@pytest.mark.parametrize('grad', [True, False])
def test_scan_orders_count_zero_and_are_supported(grad):
    x = torch.randn(1, 3, 4, 5, requires_grad=grad)
    flops = flop_analyzer(ScanOrders(), (x, ))
    with torch.set_grad_enabled(grad):
        assert flops.total() == 0
    assert flops.unsupported_ops() == {}
    # without the handles mmengine reports them (and would warn) as unsupported
    plain = FlopAnalyzer(ScanOrders(), (x, ))
    plain.unsupported_ops_warnings(False)
    assert plain.total() == 0
    assert set(plain.unsupported_ops()) == {
        'prim::PythonOp._CrossScan', 'prim::PythonOp._CrossMerge',
        'prim::PythonOp._BidirectionalScan', 'prim::PythonOp._BidirectionalMerge'
    }
    assert set(plain.unsupported_ops()) <= set(scan_flop_handles())


def test_vmamba_style_block_counts_scan_and_projections():
    """in_proj -> cross scan -> one scan over 4 directions -> cross merge -> out_proj."""
    batch, channels, H, W, state, dt_rank = 1, 4, 3, 5, 2, 1
    K, L = 4, H * W

    class TinySS2D(nn.Module):

        def __init__(self):
            super().__init__()
            self.x_proj = nn.Conv1d(K * channels, K * (dt_rank + 2 * state), 1, groups=K,
                                    bias=False)
            self.dt_proj = nn.Conv1d(K * dt_rank, K * channels, 1, groups=K, bias=False)
            self.scan = OneScan(K * channels, state, groups=K)

        def forward(self, x):
            xs = cross_scan(x).view(batch, K * channels, L)  # (B, 4, C, L) -> (B, 4C, L)
            proj = self.x_proj(xs).view(batch, K, -1, L)
            dts, Bs, Cs = proj.split([dt_rank, state, state], dim=2)
            dts = self.dt_proj(dts.reshape(batch, K * dt_rank, L))
            ys = self.scan(xs, dts, Bs.contiguous(), Cs.contiguous(), None)
            return cross_merge(ys.view(batch, K, channels, H, W))

    flops = flop_analyzer(TinySS2D(), (torch.randn(batch, channels, H, W), ))
    x_proj = L * K * channels * (dt_rank + 2 * state)  # grouped 1x1 conv: per group C -> r+2N
    dt_proj = L * K * dt_rank * channels
    scan = release_rule(batch, K * channels, L, state, with_D=True, with_z=False)
    assert flops.by_operator() == {'conv': x_proj + dt_proj, 'selective_scan': scan}
    assert flops.unsupported_ops() == {}


class SelectiveScanFn(torch.autograd.Function):
    """Stands in for mamba-ssm's Function of this name: same name and argument order
    (u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                return_last_state=False):
        with torch.no_grad():
            return selective_scan_reference(u, delta, A, B, C, D, z, delta_bias, delta_softplus)


def test_mamba_ssm_function_is_counted_by_the_same_rule():
    batch, dim, length, state = 1, 4, 6, 2

    class CudaLike(OneScan):

        def forward(self, u, delta, B, C, z):
            return SelectiveScanFn.apply(u, delta, self.A, B, C, None, z, self.delta_bias, True,
                                         False)

    model = CudaLike(dim, state, with_D=False)
    flops = flop_analyzer(model, scan_inputs(batch, dim, length, state))
    expected = release_rule(batch, dim, length, state, with_D=False, with_z=True)
    assert flops.by_operator()['selective_scan'] == expected


def test_tracing_refuses_the_reference_backend(monkeypatch):
    inputs = scan_inputs(1, 4, 5, 2)
    with pytest.raises(RuntimeError,
                       match=r"\(backend='reference'\) cannot be traced.*pass backend='torch'"):
        flop_analyzer(OneScan(4, 2, backend='reference'), inputs).total()
    monkeypatch.setenv(BACKEND_ENV, 'reference')
    with pytest.raises(RuntimeError,
                       match=r"\(\$MMMAMBA_SCAN_BACKEND='reference'\) cannot be traced.*"
                       r'unset \$MMMAMBA_SCAN_BACKEND'):
        flop_analyzer(OneScan(4, 2), inputs).total()
    # outside a trace the reference backend still runs
    OneScan(4, 2, backend='reference')(*inputs)
    assert last_backend() == 'reference'


def test_auto_backend_traces_the_torch_backend_even_with_the_cuda_kernel(monkeypatch):
    monkeypatch.setattr(scan_module, '_load_cuda_scan', lambda: object())
    cuda = torch.device('cuda')
    assert scan_module._resolve_backend(None, cuda) == 'cuda'
    monkeypatch.setattr(torch.jit, 'is_tracing', lambda: True)
    assert scan_module._resolve_backend(None, cuda) == 'torch'
    assert scan_module._resolve_backend('cuda', cuda) == 'cuda'  # forced: as asked
