"""Hidden attention matrices against the recurrence written out and against the layers' own
outputs (captured with hooks), and the attention comparators against timm's layer."""
import math

import pytest
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Attention

from mmmamba.analysis import (capture_mixer_inputs, direction_orders, find_mixers,
                              linear_attention_matrix, mixer_hidden_attention, numerical_rank,
                              scan_matrices, softmax_attention_matrix, ssm_matrix)
from mmmamba.models.backbones.vim import BiMambaMixer, MambaReg, Vim
from mmmamba.models.backbones.vmamba import SS2D
from mmmamba.ops.selective_scan import selective_scan_reference


def brute_force_matrix(delta, A, B, C):
    """M[d, t, s] from the closed form, one entry at a time (float64); B, C (N, L)."""
    d, L = delta.shape
    M = torch.zeros(d, L, L, dtype=torch.float64)
    for c in range(d):
        for t in range(L):
            for s in range(t + 1):
                decay = torch.exp(A[c] * delta[c, s + 1:t + 1].sum())
                M[c, t, s] = (C[:, t] * decay * delta[c, s] * B[:, s]).sum()
    return M


def random_scan(d=3, N=4, L=11, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    delta = F.softplus(torch.randn(d, L, generator=g, dtype=torch.float64)) * scale
    A = -torch.rand(d, N, generator=g, dtype=torch.float64) * 4 - 0.1
    B = torch.randn(N, L, generator=g, dtype=torch.float64)
    C = torch.randn(N, L, generator=g, dtype=torch.float64)
    return delta, A, B, C


@pytest.mark.parametrize('chunk_size', [1, 3, 4, 11, 32])
def test_ssm_matrix_matches_closed_form(chunk_size):
    delta, A, B, C = random_scan()
    expected = brute_force_matrix(delta, A, B, C)
    M = ssm_matrix(delta, A, B, C, chunk_size=chunk_size)
    assert M.dtype == torch.float64 and M.shape == (3, 11, 11)
    torch.testing.assert_close(M, expected, rtol=1e-10, atol=1e-12)
    assert torch.equal(M.triu(1), torch.zeros_like(M))


def test_ssm_matrix_reproduces_reference_scan():
    """M u + D u equals the step-by-step recurrence (ops' reference backend), batched, with B
    and C per channel (the grouped form) as well as shared."""
    g = torch.Generator().manual_seed(1)
    batch, d, N, L = 2, 4, 3, 9
    u = torch.randn(batch, d, L, generator=g, dtype=torch.float64)
    dt = torch.randn(batch, d, L, generator=g, dtype=torch.float64)
    bias = torch.randn(d, generator=g, dtype=torch.float64)
    A = -torch.rand(d, N, generator=g, dtype=torch.float64) - 0.5
    B = torch.randn(batch, d, N, L, generator=g, dtype=torch.float64)
    C = torch.randn(batch, d, N, L, generator=g, dtype=torch.float64)
    D = torch.randn(d, generator=g, dtype=torch.float64)
    y = selective_scan_reference(u, dt, A, B, C, D=D, delta_bias=bias, delta_softplus=True)
    delta = F.softplus(dt + bias[:, None])
    M = ssm_matrix(delta, A, B, C, chunk_size=4)
    torch.testing.assert_close(torch.einsum('bdts,bds->bdt', M, u) + D[:, None] * u, y)
    # shared B/C: one group
    y1 = selective_scan_reference(u, dt, A, B[:, 0], C[:, 0], D=D, delta_bias=bias,
                                  delta_softplus=True)
    M1 = ssm_matrix(delta, A, B[:, 0], C[:, 0], chunk_size=5)
    torch.testing.assert_close(torch.einsum('bdts,bds->bdt', M1, u) + D[:, None] * u, y1)
    mean = ssm_matrix(delta, A, B, C, chunk_size=4, reduce='mean', channel_chunk=3)
    torch.testing.assert_close(mean, M.mean(1))


def test_ssm_matrix_no_overflow_with_large_steps():
    """Steps whose summed exponent is far beyond float range stay finite and exact (float32)."""
    delta, A, B, C = random_scan(d=2, N=3, L=20, seed=2, scale=60.)
    expected = brute_force_matrix(delta, A, B, C)
    assert (A[:, :, None] * delta.sum(-1)[:, None, None]).min() < -1000  # exp would overflow
    M = ssm_matrix(delta.float(), A.float(), B.float(), C.float(), chunk_size=8)
    assert torch.isfinite(M).all()
    torch.testing.assert_close(M.double(), expected, rtol=1e-4, atol=1e-5)


def test_ssm_matrix_bad_shapes():
    delta, A, B, C = random_scan()
    with pytest.raises(ValueError, match=r'A must be \(d, N\) with d=3'):
        ssm_matrix(delta, A[:2], B, C)
    with pytest.raises(ValueError, match=r'B must be \(4, 11\) \(shared by the channels\)'):
        ssm_matrix(delta, A, B[:, :5], C)
    with pytest.raises(ValueError, match="reduce must be None or 'mean', got 'sum'"):
        ssm_matrix(delta, A, B, C, reduce='sum')
    with pytest.raises(ValueError, match='chunk_size must be a positive int, got 0'):
        ssm_matrix(delta, A, B, C, chunk_size=0)


def test_direction_orders_ss2d():
    # a 2 x 3 map: column-major reads 0, 3, 1, 4, 2, 5
    orders = direction_orders('ss2d', 6, (2, 3))
    assert orders[1].tolist() == [0, 3, 1, 4, 2, 5]
    assert orders[3].tolist() == [5, 2, 4, 1, 3, 0]
    with pytest.raises(ValueError, match=r'needs its map grid \(H, W\) with H \* W = 6, got '):
        direction_orders('ss2d', 6, (2, 2))


def _randomise(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        module.ssm.D.copy_(torch.randn(module.ssm.D.shape, generator=g))
        module.ssm.dt_proj_bias.copy_(torch.randn(module.ssm.dt_proj_bias.shape, generator=g))


@pytest.mark.parametrize('channel_first', [False, True])
@pytest.mark.parametrize('gated', [True, False])
def test_ss2d_matrix_reproduces_scan_output(channel_first, gated):
    """M u + D u (four directions summed in raster order) equals the y entering out_norm."""
    torch.manual_seed(0)
    mixer = SS2D(8, d_state=3, ssm_ratio=1.5, gated=gated, channel_first=channel_first).eval()
    _randomise(mixer, 3)
    H, W = 3, 5
    x = torch.randn(2, 8, H, W) if channel_first else torch.randn(2, H, W, 8)
    seen = {}
    hook = mixer.out_norm.register_forward_pre_hook(lambda m, a: seen.update(y=a[0]))
    with capture_mixer_inputs({'op': mixer}) as records, torch.no_grad():
        mixer(x)
    hook.remove()
    y = seen['y'].flatten(2) if channel_first else seen['y'].flatten(1, 2).transpose(1, 2)
    record = records['op']
    assert record.grid == (H, W)
    att = mixer_hidden_attention(mixer, record.scan_input, record.grid, chunk_size=4,
                                 keep_directions=True)
    u = record.scan_input[:, 0]  # row-major = raster order
    assert att.matrix.shape == (2, 12, 15, 15)
    torch.testing.assert_close(
        torch.einsum('bdts,bds->bdt', att.matrix, u) + att.skip[:, None] * u, y,
        rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(att.scan_output(), y, rtol=1e-4, atol=1e-5)
    assert (record.gate is not None) == gated


def test_vim_mixer_reproduces_gated_output():
    """(½(M_f u_f + D_f u_f) + ½ J(M_b u_b + D_b u_b)) ⊙ SiLU(z) equals out_proj's input."""
    torch.manual_seed(0)
    mixer = BiMambaMixer(8, d_state=4).eval()
    _randomise(mixer, 4)
    x = torch.randn(2, 13, 8)
    seen = {}
    hook = mixer.out_proj.register_forward_pre_hook(lambda m, a: seen.update(y=a[0]))
    with capture_mixer_inputs({'mixer': mixer}) as records, torch.no_grad():
        mixer(x)
    hook.remove()
    att = mixer_hidden_attention(mixer, records['mixer'].scan_input, chunk_size=5,
                                 keep_directions=True)
    gated = att.scan_output().transpose(1, 2) * F.silu(records['mixer'].gate)
    torch.testing.assert_close(gated, seen['y'], rtol=1e-4, atol=1e-5)


def test_vim_combined_matrix_with_shared_inputs():
    """With kernel-size-1 convolutions equal in both directions, both scans read the same
    sequence, and ½(M_f + J M_b J) u + ½(D_f + D_b) u is the layer's y exactly."""
    torch.manual_seed(0)
    mixer = BiMambaMixer(6, d_state=3).eval()
    _randomise(mixer, 5)
    d = mixer.d_inner
    with torch.no_grad():
        taps = torch.randn(d)
        bias = torch.randn(d)
        mixer.conv1d.weight.zero_()
        mixer.conv1d.weight[:, 0, -1] = torch.cat([taps, taps])  # the current token only
        mixer.conv1d.bias.copy_(torch.cat([bias, bias]))
    x = torch.randn(1, 9, 6)
    seen = {}
    hook = mixer.out_proj.register_forward_pre_hook(lambda m, a: seen.update(y=a[0]))
    with capture_mixer_inputs({'m': mixer}) as records, torch.no_grad():
        mixer(x)
    hook.remove()
    att = mixer_hidden_attention(mixer, records['m'].scan_input, chunk_size=4)
    u = att.inputs[:, 0]
    torch.testing.assert_close(att.inputs[:, 1], u)
    raw, _ = scan_matrices(mixer.ssm, records['m'].scan_input, chunk_size=3)  # scan orders
    assert torch.equal(raw.triu(1), torch.zeros_like(raw))  # each direction causal
    J = torch.eye(9).flip(0)
    combined = 0.5 * (raw[:, 0] + J @ raw[:, 1] @ J)
    torch.testing.assert_close(att.matrix, combined)
    y = torch.einsum('bdts,bds->bdt', att.matrix, u) + att.skip[:, None] * u
    torch.testing.assert_close(y.transpose(1, 2) * F.silu(records['m'].gate), seen['y'],
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('family', [Vim, MambaReg])
def test_backbone_layers_reproduce_outputs(family):
    """In a whole (atto) Vim / MambaReg with random weights, every layer's matrices reproduce
    the gated scan output."""
    torch.manual_seed(0)
    model = family(arch='atto', patch_size=8, img_size=32).eval()
    for mixer in find_mixers(model).values():
        _randomise(mixer, 6)
    mixers = find_mixers(model)
    assert list(mixers) == [f'layers.{i}.mixer' for i in range(4)]
    seen = {}
    hooks = [m.out_proj.register_forward_pre_hook(lambda mod, a, n=n: seen.update({n: a[0]}))
             for n, m in mixers.items()]
    with capture_mixer_inputs(mixers) as records, torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    for name, mixer in mixers.items():
        att = mixer_hidden_attention(mixer, records[name].scan_input, chunk_size=8,
                                     keep_directions=True)
        L = 16 + (1 if family is Vim else 4)
        assert att.matrix.shape == (1, mixer.d_inner, L, L)
        gated = att.scan_output().transpose(1, 2) * F.silu(records[name].gate)
        torch.testing.assert_close(gated, seen[name], rtol=1e-4, atol=1e-5)


def test_hidden_attention_rejects_other_modules():
    with pytest.raises(TypeError, match='got Linear; MambaOut has no SSM'):
        mixer_hidden_attention(torch.nn.Linear(2, 2), torch.zeros(1, 2, 2, 3))


@pytest.mark.parametrize('fused', [True, False])
def test_softmax_and_linear_attention_comparators(fused):
    torch.manual_seed(0)
    attn = Attention(16, num_heads=2, qkv_bias=True).eval()
    attn.fused_attn = fused
    x = torch.randn(2, 40, 16)
    seen = {}
    hook = attn.proj.register_forward_pre_hook(lambda m, a: seen.update(y=a[0]))
    with torch.no_grad():
        attn(x)
    hook.remove()
    q, k, v = attn.qkv(x).reshape(2, 40, 3, 2, 8).permute(2, 0, 3, 1, 4).detach()
    S = softmax_attention_matrix(attn, x)
    assert S.shape == (2, 2, 40, 40)
    out = (S @ v).transpose(1, 2).reshape(2, 40, 16)
    torch.testing.assert_close(out, seen['y'], rtol=1e-5, atol=1e-6)
    Lin = linear_attention_matrix(attn, x)
    fq, fk = F.elu(q) + 1, F.elu(k) + 1
    # the associative form: φ(Q)(φ(K)ᵀV) / φ(Q)Σφ(K)
    expected = (fq @ (fk.transpose(-2, -1) @ v)) / (fq @ fk.sum(-2)[..., None])
    torch.testing.assert_close(Lin @ v, expected, rtol=1e-5, atol=1e-6)
    assert (numerical_rank(Lin, 1e-6) <= 8).all()  # rank <= head_dim
    assert (numerical_rank(S, 1e-6) == 40).all()
    with pytest.raises(ValueError, match=r'tokens must be \(batch, L, 16\).*got \(2, 40, 8\)'):
        softmax_attention_matrix(attn, x[..., :8])


def test_mamba_blocks_below_diagonal_have_rank_at_most_state():
    """The semiseparable structure: any block below the diagonal of M has rank <= N."""
    delta, A, B, C = random_scan(d=2, N=3, L=40, seed=7)
    M = ssm_matrix(delta, A, B, C, chunk_size=7)
    assert (numerical_rank(M[:, 20:, :20], 1e-9) <= 3).all()
    assert (numerical_rank(M, 1e-9) > 3).all()
    assert math.isfinite(M.sum().item())


@pytest.mark.parametrize('kind', ['ss2d', 'vim'])
def test_matrix_paths_agree(kind):
    """The channel mean, the per-channel matrix with and without the kept directions, and
    scan_output's refusal without them."""
    torch.manual_seed(0)
    if kind == 'ss2d':
        mixer, x = SS2D(6, d_state=2, ssm_ratio=1.0).eval(), torch.randn(1, 3, 4, 6)
    else:
        mixer, x = BiMambaMixer(6, d_state=2).eval(), torch.randn(1, 10, 6)
    _randomise(mixer, 8)
    with capture_mixer_inputs({'m': mixer}) as records, torch.no_grad():
        mixer(x)
    r = records['m']
    full = mixer_hidden_attention(mixer, r.scan_input, r.grid, chunk_size=3)
    kept = mixer_hidden_attention(mixer, r.scan_input, r.grid, chunk_size=5, keep_directions=True)
    mean = mixer_hidden_attention(mixer, r.scan_input, r.grid, chunk_size=2, reduce='mean')
    torch.testing.assert_close(kept.matrix, full.matrix)
    torch.testing.assert_close(mean.matrix, full.matrix.mean(1))
    with pytest.raises(ValueError, match='compute with reduce=None and keep_directions=True'):
        full.scan_output()
    with pytest.raises(ValueError, match=r'scan_input must be \(batch, \d, \d+, L\) for this'):
        mixer_hidden_attention(mixer, r.scan_input[:, :1], r.grid)


@pytest.mark.parametrize('per_channel', [False, True])
def test_ssm_matrix_mixed_step_scales(per_channel):
    """Channels with huge steps (exponents beyond float range) next to ordinary ones, with B
    and C shared or per channel: both ways of computing a diagonal block in one call."""
    delta, A, B, C = random_scan(d=3, N=4, L=19, seed=9)
    delta[1] *= 80.
    if per_channel:
        g = torch.Generator().manual_seed(3)
        B = torch.randn(3, 4, 19, generator=g, dtype=torch.float64)
        C = torch.randn(3, 4, 19, generator=g, dtype=torch.float64)
        expected = torch.cat([brute_force_matrix(delta[i:i + 1], A[i:i + 1], B[i], C[i])
                              for i in range(3)])
    else:
        expected = brute_force_matrix(delta, A, B, C)
    M = ssm_matrix(delta.float(), A.float(), B.float(), C.float(), chunk_size=6)
    assert torch.isfinite(M).all()
    torch.testing.assert_close(M.double(), expected, rtol=1e-4, atol=1e-5)
