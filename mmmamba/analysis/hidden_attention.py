"""Implicit ("hidden") attention matrices of selective-scan layers, and attention comparators.

A selective scan (``h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t``, ``y_t = C_t·h_t + D u_t``; see
:mod:`mmmamba.ops.selective_scan`) is linear in its input ``u`` once ``Δ``, ``B`` and ``C`` are
fixed, so for each channel ``d`` it is a lower-triangular matrix (Ali et al., "The Hidden
Attention of Mamba Models", https://arxiv.org/abs/2403.01590; Yang et al., "RNN as Linear
Transformer", the representation analysis this module serves)::

    y_d = M_d u_d + D_d u_d,
    M_d[t, s] = Σ_n C[t, n] exp(A[d, n] Σ_{k=s+1..t} Δ[d, k]) Δ[d, s] B[s, n]   (s <= t)

``Δ``, ``B`` and ``C`` depend on the layer's input, so ``M`` is the matrix *of this input*.

What ``M`` covers in each mixer (``u`` is the sequence entering the scan: after ``in_proj``,
the depthwise convolution and SiLU; ``z`` the gate half of ``in_proj``):

- VMamba's :class:`~mmmamba.models.backbones.vmamba.SS2D`: the four directions read the same
  map in four orders, so with ``P_k`` the permutation of direction ``k``,
  ``M = Σ_k P_kᵀ M_k P_k`` in raster order, ``D = Σ_k D_k``, and ``M u + D u`` is exactly the
  ``y`` entering ``out_norm``. The layer then computes
  ``out_proj(LayerNorm(y) ⊙ SiLU(z))`` (the gate only with ``gated=True``): ``out_norm``
  normalises each token over channels, which no token-mixing matrix can express.
- Vim's / Mamba-Reg's :class:`~mmmamba.models.backbones.vim.BiMambaMixer`: the backward
  direction scans the reversed sequence after *its own* causal convolution, so its input
  ``u_b`` is not ``J u_f`` (``J`` the reversal) and the exact relation is
  ``y = ½ (M_f u_f + D_f u_f) + ½ J (M_b u_b + D_b u_b)``, with
  ``out_proj(y ⊙ SiLU(z))`` after it (the gate is elementwise per token and channel, outside
  any matrix). The layer's hidden attention is ``M = ½ (M_f + J M_b J)`` (the average of the
  two directions mapped back to sequence order) with ``D = ½ (D_f + D_b)``; ``M u + D u = y``
  holds exactly when both directions see the same sequence (kernel-size-1 convolutions with
  equal weights), and :meth:`HiddenAttention.scan_output` gives the exact ``y`` in general.

Computation: one block row of ``chunk_size`` rows at a time, in log space. With ``S`` the
running sum of ``Δ`` (float64) and ``b = S_{r0-1}`` its value before the block row, the part
left of the diagonal block factors as ``exp(A(S_t - S_s)) = exp(A(S_t - b)) · exp(A(b - S_s))``
with both exponents ``<= 0``: a batched matrix product over the state, the column factors
carried from one block row to the next by multiplying with ``exp(A · Σ_chunk Δ) <= 1``. The
diagonal block takes the chunk-local differences ``S_t - S_s``, masked to ``-inf`` above the
diagonal before the ``exp`` — or, when ``|A| · Σ_chunk Δ <= 60`` (no float32 overflow or
underflow possible), split as ``exp(A(S_t - b)) · exp(-A(S_s - b))`` into one more matrix
product. Outside that split no exponent is ever positive, so nothing overflows; values that
underflow are below float's range in truth too.
"""
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    'ssm_matrix', 'scan_matrices', 'HiddenAttention', 'mixer_hidden_attention',
    'capture_mixer_inputs', 'MixerRecord', 'softmax_attention_matrix', 'linear_attention_matrix',
    'direction_orders', 'find_mixers'
]


# |exponent| up to which a diagonal block may be split into two exponentials (e^60 ~ 1e26 and
# e^-60 ~ 1e-26 are far inside float32's range, and their product keeps full precision)
_SAFE_EXPONENT = 60.


def _add_ssm_matrix(out: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk: int,
                    weight: float = 1., reverse: bool = False) -> None:
    """Add ``weight * M`` of one sequence to ``out`` ``(d, L, L)`` — or ``weight * J M J``
    (``J`` the reversal) with ``reverse=True`` — for ``delta`` ``(d, L)``, ``A`` ``(d, N)``,
    ``B``/``C`` ``(N, L)`` or ``(d, N, L)``, one block row of ``chunk`` rows at a time."""
    d, L = delta.shape
    N = A.shape[1]
    cdt = out.dtype
    S = torch.cumsum(delta.double(), dim=-1)  # running sums: the exponents are differences
    A_ = A.to(cdt)[:, None, :]  # (d, 1, N)
    # Δ_s B_s e^{A (S_{r0-1} - S_s)} for the columns s < r0 before the current block row;
    # stored reversed (column L-1-s) when the result is reversed
    cols = delta.new_zeros(d, N, L, dtype=cdt)
    causal = torch.ones(chunk, chunk, dtype=torch.bool, device=delta.device).tril()
    for r0 in range(0, L, chunk):
        r1 = min(r0 + chunk, L)
        h = r1 - r0
        before = S[:, r0 - 1:r0] if r0 else S.new_zeros(d, 1)
        local = (S[:, r0:r1] - before).to(cdt)  # S_t - S_{r0-1} >= 0: (d, h)
        C_t = C[..., r0:r1].to(cdt).transpose(-1, -2)  # (h, N) or (d, h, N)
        dB = delta[:, None, r0:r1].to(cdt) * B[..., r0:r1].to(cdt)  # Δ_s B_s: (d, N, h)
        rows = C_t * torch.exp(local[..., None] * A_)  # C_t e^{A (S_t - S_{r0-1})}: (d, h, N)
        # channels whose exponents stay small split e^{A (S_t - S_s)} = e^{A (S_t - b)}
        # e^{-A (S_s - b)} (one more matrix product); the others take chunk-local differences,
        # -inf above the diagonal before the exp
        split = local[:, -1] * (-A.to(cdt)).amax(-1) <= _SAFE_EXPONENT  # (d,)
        if bool(split.all()):
            right = dB * torch.exp(-local[:, None, :] * A.to(cdt)[:, :, None])  # (d, N, h)
            diag = torch.bmm(rows, right).mul_(causal[:h, :h])
        else:
            diag = rows.new_empty(d, h, h)
            idx, rest = split.nonzero()[:, 0], (~split).nonzero()[:, 0]
            if idx.numel():
                right = dB[idx] * torch.exp(-local[idx, None, :] * A[idx].to(cdt)[:, :, None])
                diag[idx] = torch.bmm(rows[idx], right).mul_(causal[:h, :h])
            C_rest = C_t if C_t.dim() == 2 else C_t[rest]
            expo = (local[rest, :, None] - local[rest, None, :])[..., None] * A_[rest, None]
            decay = expo.masked_fill_(~causal[:h, :h, None], float('-inf')).exp_()
            diag[rest] = decay.mul_(C_rest[..., :, None, :]).mul_(
                dB[rest].transpose(1, 2)[:, None]).sum(-1)
        if reverse:
            out[:, L - r1:L - r0, L - r1:L - r0].add_(diag.flip(1, 2), alpha=weight)
            if r0:
                block = torch.bmm(rows.flip(1), cols[:, :, L - r0:])  # (d, h, r0)
                out[:, L - r1:L - r0, L - r0:].add_(block, alpha=weight)
        else:
            out[:, r0:r1, r0:r1].add_(diag, alpha=weight)
            if r0:
                block = torch.bmm(rows, cols[:, :, :r0])  # (d, h, r0)
                out[:, r0:r1, :r0].add_(block, alpha=weight)
        if r1 == L:
            break
        # move the columns' reference from S_{r0-1} to S_{r1-1}, then add this block's columns
        total = local[:, -1:]  # (d, 1)
        new = dB * torch.exp((total - local)[:, None, :] * A.to(cdt)[:, :, None])  # (d, N, h)
        if reverse:
            cols[:, :, L - r0:].mul_(torch.exp(total * A.to(cdt))[:, :, None])
            cols[:, :, L - r1:L - r0] = new.flip(-1)
        else:
            cols[:, :, :r0].mul_(torch.exp(total * A.to(cdt))[:, :, None])
            cols[:, :, r0:r1] = new


def ssm_matrix(delta: Tensor,
               A: Tensor,
               B: Tensor,
               C: Tensor,
               chunk_size: int = 32,
               reduce: Optional[str] = None,
               channel_chunk: int = 256) -> Tensor:
    """The matrix ``M`` of a selective scan, ``y = M u + D u`` per channel (see the module doc).

    Args:
        delta (Tensor): Step sizes ``(..., d, L)`` as the recurrence uses them (after
            ``delta_bias`` and softplus), ``>= 0``.
        A (Tensor): ``(d, N)``, real, ``<= 0`` (``-exp(A_log)``).
        B (Tensor): ``(..., N, L)`` shared by the channels, or ``(..., d, N, L)``.
        C (Tensor): Same shape as ``B``.
        chunk_size (int): Tokens per chunk of the computation (any value gives the same
            matrix). Defaults to 32.
        reduce (str, optional): ``None``: every channel, ``(..., d, L, L)``; ``'mean'``: the
            channel mean, ``(..., L, L)``, computed ``channel_chunk`` channels at a time.
        channel_chunk (int): Channels per step with ``reduce='mean'``. Defaults to 256.

    Returns:
        Tensor: ``M`` in float32 (float64 for float64 inputs), zero above the diagonal.
    """
    if delta.dim() < 2:
        raise ValueError(f'delta must be (..., d, L), got shape {tuple(delta.shape)}')
    *prefix, d, L = delta.shape
    if A.dim() != 2 or A.shape[0] != d:
        raise ValueError(f'A must be (d, N) with d={d} (the channels of delta '
                         f'{tuple(delta.shape)}), got {tuple(A.shape)}')
    N = A.shape[1]
    shared = tuple(prefix) + (N, L)
    per_channel = tuple(prefix) + (d, N, L)
    for name, t in (('B', B), ('C', C)):
        if tuple(t.shape) not in (shared, per_channel):
            raise ValueError(f'{name} must be {shared} (shared by the channels) or '
                             f'{per_channel} for delta {tuple(delta.shape)} and A '
                             f'{tuple(A.shape)}, got {tuple(t.shape)}')
    if B.shape != C.shape:
        raise ValueError(f'B and C must have the same shape, got {tuple(B.shape)} and '
                         f'{tuple(C.shape)}')
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f'chunk_size must be a positive int, got {chunk_size!r}')
    if reduce not in (None, 'mean'):
        raise ValueError(f"reduce must be None or 'mean', got {reduce!r}")
    cdt = torch.promote_types(delta.dtype, torch.float32)
    chunk = min(chunk_size, L)
    delta_ = delta.reshape(-1, d, L)
    B_ = B.reshape(-1, *B.shape[len(prefix):])
    C_ = C.reshape(-1, *C.shape[len(prefix):])
    channel_axis = B_.dim() == 4
    P = delta_.shape[0]
    if reduce is None:
        out = delta_.new_zeros(P, d, L, L, dtype=cdt)
        for p in range(P):
            _add_ssm_matrix(out[p], delta_[p], A, B_[p], C_[p], chunk)
        return out.reshape(*prefix, d, L, L)
    out = delta_.new_zeros(P, L, L, dtype=cdt)
    step = min(channel_chunk, d)
    scratch = delta_.new_empty(step, L, L, dtype=cdt)
    for p in range(P):
        for start in range(0, d, step):
            part = slice(start, min(start + step, d))
            buffer = scratch[:part.stop - part.start].zero_()
            _add_ssm_matrix(buffer, delta_[p, part], A[part],
                            B_[p, part] if channel_axis else B_[p],
                            C_[p, part] if channel_axis else C_[p], chunk)
            out[p] += buffer.sum(0)
    return (out / d).reshape(*prefix, L, L)


def scan_matrices(ssm: nn.Module,
                  xs: Tensor,
                  chunk_size: int = 32,
                  reduce: Optional[str] = None) -> Tuple[Tensor, Tensor]:
    """Matrices of the ``K`` scans of a :class:`~mmmamba.models.layers.SSMParameters` on ``xs``.

    Args:
        ssm (SSMParameters): The scans' parameters.
        xs (Tensor): ``(batch, K, d_inner, L)``, what the module's ``forward`` receives.
        chunk_size (int): See :func:`ssm_matrix`. Defaults to 32.
        reduce (str, optional): ``None`` or ``'mean'`` (over channels). Defaults to None.

    Returns:
        tuple[Tensor]: ``M`` ``(batch, K, d_inner, L, L)`` (``(batch, K, L, L)`` with
        ``reduce='mean'``), each direction in its own scan order; ``D`` ``(K, d_inner)``.
    """
    K, d = ssm.num_directions, ssm.d_inner
    if xs.dim() != 4 or xs.shape[1:3] != (K, d):
        raise ValueError(f'xs must be (batch, {K}, {d}, L) for this SSMParameters '
                         f'(num_directions={K}, d_inner={d}), got {tuple(xs.shape)}')
    with torch.no_grad():
        dt, B, C = ssm.project(xs)
        delta = F.softplus(dt.float() + ssm.dt_proj_bias.float()[None, :, :, None])
        A = -torch.exp(ssm.A_log.float()).view(K, d, -1)
        Ms = [ssm_matrix(delta[:, k], A[k], B[:, k].float(), C[:, k].float(),
                         chunk_size=chunk_size, reduce=reduce) for k in range(K)]
    return torch.stack(Ms, dim=1), ssm.D.detach().float().view(K, d)


def direction_orders(family: str, length: int,
                     grid: Optional[Tuple[int, int]] = None) -> List[Tensor]:
    """For each scan direction, the layer-order index of the token at each scan position.

    Args:
        family (str): ``'ss2d'`` (row-major, column-major, both reversed; ``grid`` needed) or
            ``'bidirectional'`` (forward, reversed).
        length (int): Tokens L.
        grid (tuple[int, int], optional): ``(H, W)`` of an SS2D map, ``H * W = L``.

    Returns:
        list[Tensor]: ``orders[k][p]`` = layer position of scan position ``p``.
    """
    raster = torch.arange(length)
    if family == 'bidirectional':
        return [raster, raster.flip(0)]
    if family == 'ss2d':
        if grid is None or grid[0] * grid[1] != length:
            raise ValueError(f'an SS2D layer needs its map grid (H, W) with H * W = {length}, '
                             f'got {grid}')
        H, W = grid
        columns = raster.view(H, W).t().reshape(-1)  # scan position w*H + h -> token h*W + w
        return [raster, columns, raster.flip(0), columns.flip(0)]
    raise ValueError(f"family must be 'ss2d' or 'bidirectional', got {family!r}")


@dataclass
class HiddenAttention:
    """The hidden attention of one mixer on one input (see the module doc).

    Attributes:
        matrix (Tensor): ``M`` in the layer's token order, ``(batch, d, L, L)``, or
            ``(batch, L, L)`` when averaged over channels.
        skip (Tensor): ``D`` combined as ``M`` is, ``(d,)``.
        directions (Tensor, optional): Each direction's ``M_k`` mapped to the layer's order,
            ``(batch, K, d, L, L)`` (or ``(batch, K, L, L)``); None unless asked for.
        inputs (Tensor): Each direction's scan input mapped to the layer's order,
            ``(batch, K, d, L)``.
        direction_skips (Tensor): ``D_k``, ``(K, d)``.
        weights (tuple[float]): The weight of each direction in the layer's sum (1 for
            SS2D's sum, ½ for Vim's average).
    """
    matrix: Tensor
    skip: Tensor
    directions: Optional[Tensor]
    inputs: Tensor
    direction_skips: Tensor
    weights: Tuple[float, ...]

    def scan_output(self) -> Tensor:
        """The mixer's scan output ``y = Σ_k w_k (M_k u_k + D_k u_k)``, ``(batch, d, L)``,
        exact for every family (needs per-channel matrices)."""
        if self.directions is None or self.directions.dim() != 5:
            raise ValueError('scan_output needs the per-channel matrix of each direction: '
                             'compute with reduce=None and keep_directions=True')
        y = 0.
        for k, w in enumerate(self.weights):
            u = self.inputs[:, k]
            mixed = torch.einsum('bdts,bds->bdt', self.directions[:, k], u)
            y = y + w * (mixed + self.direction_skips[k][None, :, None] * u)
        return y


def mixer_hidden_attention(mixer: nn.Module,
                           scan_input: Tensor,
                           grid: Optional[Tuple[int, int]] = None,
                           chunk_size: int = 32,
                           reduce: Optional[str] = None,
                           keep_directions: bool = False) -> HiddenAttention:
    """Hidden attention of an SS2D or BiMambaMixer on a captured scan input.

    Args:
        mixer (nn.Module): :class:`~mmmamba.models.backbones.vmamba.SS2D` or
            :class:`~mmmamba.models.backbones.vim.BiMambaMixer`.
        scan_input (Tensor): What ``mixer.ssm`` received, ``(batch, K, d_inner, L)``
            (see :func:`capture_mixer_inputs`).
        grid (tuple[int, int], optional): The map's ``(H, W)`` (SS2D only).
        chunk_size (int): See :func:`ssm_matrix`. Defaults to 32.
        reduce (str, optional): ``None`` or ``'mean'`` over channels. Defaults to None.
        keep_directions (bool): Also keep each direction's matrix (needed by
            :meth:`HiddenAttention.scan_output`; K times the memory). Defaults to False.

    Returns:
        HiddenAttention: ``M`` and ``D`` in the layer's token order.
    """
    family = _family(mixer)
    ssm = mixer.ssm
    K, d = ssm.num_directions, ssm.d_inner
    if scan_input.dim() != 4 or scan_input.shape[1:3] != (K, d):
        raise ValueError(f'scan_input must be (batch, {K}, {d}, L) for this '
                         f'{type(mixer).__name__}, got {tuple(scan_input.shape)}')
    batch, L = scan_input.shape[0], scan_input.shape[-1]
    orders = direction_orders(family, L, grid)
    weights = (1., ) * 4 if family == 'ss2d' else (.5, .5)
    inverses = [torch.argsort(order).to(scan_input.device) for order in orders]
    inputs = torch.stack([scan_input[:, k].float().index_select(-1, inverses[k])
                          for k in range(K)], dim=1)
    skips = ssm.D.detach().float().view(K, d)
    skip = (skips * torch.tensor(weights, device=skips.device)[:, None]).sum(0)
    if reduce is not None or family == 'ss2d':
        Ms, _ = scan_matrices(ssm, scan_input, chunk_size=chunk_size, reduce=reduce)
        matrix, kept = 0., []
        for k, inverse in enumerate(inverses):
            mapped = Ms[:, k][..., inverse[:, None], inverse[None, :]]
            matrix = matrix + weights[k] * mapped
            if keep_directions:
                kept.append(mapped)
        directions = torch.stack(kept, 1) if keep_directions else None
        return HiddenAttention(matrix, skip, directions, inputs, skips, weights)
    # bidirectional, every channel: written straight into the layer's order (J M_b J)
    with torch.no_grad():
        dt, B, C = ssm.project(scan_input)
        delta = F.softplus(dt.float() + ssm.dt_proj_bias.float()[None, :, :, None])
        A = -torch.exp(ssm.A_log.float()).view(K, d, -1)
    chunk = min(chunk_size, L)
    if keep_directions:
        directions = delta.new_zeros(batch, K, d, L, L)
        for b in range(batch):
            for k in range(K):
                _add_ssm_matrix(directions[b, k], delta[b, k], A[k], B[b, k].float(),
                                C[b, k].float(), chunk, reverse=k == 1)
        matrix = directions.mean(1)
    else:
        directions = None
        matrix = delta.new_zeros(batch, d, L, L)
        for b in range(batch):
            for k in range(K):
                _add_ssm_matrix(matrix[b], delta[b, k], A[k], B[b, k].float(), C[b, k].float(),
                                chunk, weight=weights[k], reverse=k == 1)
    return HiddenAttention(matrix, skip, directions, inputs, skips, weights)


def _family(mixer: nn.Module) -> str:
    from mmmamba.models.backbones.vim import BiMambaMixer
    from mmmamba.models.backbones.vmamba import SS2D
    if isinstance(mixer, SS2D):
        return 'ss2d'
    if isinstance(mixer, BiMambaMixer):
        return 'bidirectional'
    raise TypeError(f'hidden attention is defined for SS2D (VMamba) and BiMambaMixer (Vim, '
                    f'MambaReg) mixers, got {type(mixer).__name__}; MambaOut has no SSM (score '
                    f'its feature maps instead)')


@dataclass
class MixerRecord:
    """What one mixer saw in the last forward: ``scan_input`` ``(batch, K, d, L)``, the map
    ``grid`` (SS2D) or None, and the gate ``z`` (``(batch, L, d)`` for Vim, None for an
    ungated SS2D)."""
    scan_input: Optional[Tensor] = None
    grid: Optional[Tuple[int, int]] = None
    gate: Optional[Tensor] = None


@contextmanager
def capture_mixer_inputs(mixers: Dict[str, nn.Module]) -> Iterator[Dict[str, MixerRecord]]:
    """Record, with forward hooks, what each mixer's scan receives during the forwards run
    inside the ``with`` block (the hooks are removed on exit).

    Args:
        mixers (dict[str, nn.Module]): Name → SS2D / BiMambaMixer (e.g. from
            :func:`find_mixers`).

    Yields:
        dict[str, MixerRecord]: Filled by the forwards (the last one wins).
    """
    records = {name: MixerRecord() for name in mixers}
    handles = []
    for name, mixer in mixers.items():
        family = _family(mixer)
        record = records[name]

        def on_scan(module, args, output, record=record):
            record.scan_input = args[0].detach()

        def on_conv(module, args, output, record=record):
            record.grid = tuple(int(s) for s in output.shape[-2:])

        def on_in_proj(module, args, output, record=record, mixer=mixer, family=family):
            if family == 'bidirectional':
                record.gate = output.detach().chunk(2, dim=-1)[1]
            elif mixer.gated:
                dim = 1 if mixer.channel_first else -1
                record.gate = output.detach().chunk(2, dim=dim)[1]

        handles.append(mixer.ssm.register_forward_hook(on_scan))
        handles.append(mixer.in_proj.register_forward_hook(on_in_proj))
        if family == 'ss2d':
            handles.append(mixer.conv.register_forward_hook(on_conv))
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


def find_mixers(backbone: nn.Module) -> Dict[str, nn.Module]:
    """Every SS2D / BiMambaMixer inside ``backbone``, by module name, in forward order."""
    from mmmamba.models.backbones.vim import BiMambaMixer
    from mmmamba.models.backbones.vmamba import SS2D
    return {name: m for name, m in backbone.named_modules() if isinstance(m, (SS2D, BiMambaMixer))}


# ---- comparators: a ViT-style attention layer on the same tokens -----------------------------
def _queries_keys(attn: nn.Module, x: Tensor) -> Tuple[Tensor, Tensor]:
    if x.dim() != 3 or x.shape[-1] != attn.qkv.in_features:
        raise ValueError(f'tokens must be (batch, L, {attn.qkv.in_features}) for this attention '
                         f'layer, got {tuple(x.shape)}')
    B, L, _ = x.shape
    qkv = attn.qkv(x).reshape(B, L, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, _ = qkv.unbind(0)  # each (B, heads, L, head_dim)
    return attn.q_norm(q), attn.k_norm(k)


@torch.no_grad()
def softmax_attention_matrix(attn: nn.Module, x: Tensor) -> Tensor:
    """``softmax(q kᵀ · scale)`` of a timm ``vision_transformer.Attention`` on tokens ``x``
    ``(batch, L, C)``; returns ``(batch, heads, L, L)``, rows summing to 1."""
    q, k = _queries_keys(attn, x)
    return torch.softmax((q * attn.scale) @ k.transpose(-2, -1), dim=-1)


@torch.no_grad()
def linear_attention_matrix(attn: nn.Module, x: Tensor) -> Tensor:
    """Linear attention (Katharopoulos et al., https://arxiv.org/abs/2006.16236) with the same
    queries and keys: ``φ(q_t)·φ(k_s) / Σ_s' φ(q_t)·φ(k_s')``, ``φ = elu + 1``, non-causal,
    without the softmax scale; ``(batch, heads, L, L)``, rank at most ``head_dim`` per head."""
    q, k = _queries_keys(attn, x)
    scores = (F.elu(q) + 1) @ (F.elu(k) + 1).transpose(-2, -1)
    return scores / scores.sum(-1, keepdim=True)
