"""Pure-PyTorch selective scan with a hand-written, chunked backward.

The recurrence of Mamba-1 (per batch ``b``, channel ``d`` and state ``n``)::

    h_t = a_t * h_{t-1} + x_t,   a_t = exp(dt_t * A),   x_t = dt_t * u_t * B_t
    y_t = sum_n C_t * h_t

is a first-order linear recurrence, so it is evaluated with a two-level scan:
the sequence is cut into *blocks*; a block is cut into ``nc`` *chunks* of
``T`` steps laid out as ``(T, batch, nc, groups, dim/groups, N)`` so that step
``j`` of every chunk is one contiguous slice.

1. a loop over ``j`` runs all chunks at once from a zero state;
2. a loop over chunks carries the true state across chunk ends;
3. a loop over ``j`` adds each chunk's carried state, decayed by the running
   product of ``a`` (never by ``1 / a``, so nothing can overflow).

That is ``O(T + nc)`` Python steps per block instead of ``O(L)``. Backward is
the same scan run in reverse time on the adjoint ``g_t = dL/dh_t``::

    g_t = a_{t+1} * g_{t+1} + C_t * dy_t

with ``h`` recomputed block by block from the states saved at block starts, so
only ``(batch, dim, N)`` per block (not ``(batch, dim, L, N)``) is kept alive
between forward and backward. All arithmetic is float32 (float64 inputs stay
float64) with autocast disabled.
"""
import math
from typing import List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['selective_scan_torch', 'compute_dtype']

# Elements (batch * dim * N * block length) of one working buffer. Three such
# buffers are alive in backward (two in forward), so this bounds the transient
# memory to ~3 * 4 * 2**23 bytes = 96 MiB in float32. Chosen by measurement on a
# 2-core CPU: larger blocks gave no further speed-up (see benchmark_scan.py).
BLOCK_ELEMENTS = 2**23
SOFTPLUS_THRESHOLD = 20.0


class _Plan(NamedTuple):
    """How a sequence of length ``L`` is cut: ``K`` blocks of ``nc`` chunks of ``T`` steps."""
    num_blocks: int
    num_chunks: int
    chunk_len: int

    @property
    def block_len(self) -> int:
        return self.num_chunks * self.chunk_len

    @property
    def padded_len(self) -> int:
        return self.num_blocks * self.block_len


def _make_plan(length: int, state_elems: int, block_len: Optional[int],
               chunk_len: Optional[int]) -> _Plan:
    """Choose block and chunk lengths; ``state_elems`` is batch * dim * N."""
    if block_len is None:
        block_len = max(1, BLOCK_ELEMENTS // max(state_elems, 1))
    block_len = max(1, min(block_len, length))
    num_blocks = math.ceil(length / block_len)
    block_len = math.ceil(length / num_blocks)  # even out the blocks
    if chunk_len is None:
        chunk_len = math.ceil(math.sqrt(block_len))
    chunk_len = max(1, min(chunk_len, block_len))
    num_chunks = math.ceil(block_len / chunk_len)
    return _Plan(num_blocks, num_chunks, chunk_len)


def _scan_chunks_(a: Tensor, x: Tensor, h0: Tensor,
                  reverse: bool) -> Tuple[Tensor, Tensor]:
    """Run a linear recurrence over one block, in place.

    Args:
        a (Tensor): decays, ``(T, b, nc, S)``; sequence position ``c * T + j``
            is ``a[j, :, c]``. ``S`` is the flattened state (``dim * N``).
        x (Tensor): inputs, same shape; overwritten with the states.
        h0 (Tensor): ``(b, S)``. Forward: the state before the block.
            Reverse: ``a * g`` at the first position after the block.
        reverse (bool): ``False``: ``x_t <- a_t x_{t-1} + x_t``.
            ``True``: ``x_t <- a_{t+1} x_{t+1} + x_t`` (the adjoint recurrence).

    Returns:
        tuple[Tensor, Tensor]: ``carried`` ``(b, nc, S)``, the value entering
        each chunk (forward: state before the chunk; reverse: ``a * g`` after
        it), and the value leaving the block in the scan direction.
    """
    T, _, nc, _ = a.shape
    decay = a.prod(dim=0)  # (b, nc, S): product of a over each chunk
    carried = torch.empty_like(decay)
    if not reverse:
        # 1. every chunk from a zero state
        for j in range(1, T):
            torch.addcmul(x[j], a[j], x[j - 1], out=x[j])
        # 2. carry the state over chunk ends
        state = h0
        for c in range(nc):
            carried[:, c] = state
            state = torch.addcmul(x[T - 1, :, c], decay[:, c], state)
        # 3. add the carried state, decayed by prod(a[0..j])
        run = a[0] * carried
        x[0] += run
        for j in range(1, T):
            run.mul_(a[j])
            x[j] += run
    else:
        for j in range(T - 2, -1, -1):
            torch.addcmul(x[j], a[j + 1], x[j + 1], out=x[j])
        state = h0
        for c in range(nc - 1, -1, -1):
            carried[:, c] = state
            # a * g at the chunk's first position: a_0 (g_loc_0 + prod(a_1..a_{T-1}) state)
            state = torch.addcmul(a[0, :, c] * x[0, :, c], decay[:, c], state)
        run = carried.clone()
        x[T - 1] += run
        for j in range(T - 2, -1, -1):
            run.mul_(a[j + 1])
            x[j] += run
    return carried, state


def _to_blocks(t: Tensor, plan: _Plan, groups: int) -> Tensor:
    """``(b, rows, L)`` -> ``(K, T, b, nc, groups, rows / groups)``, zero-padded, contiguous."""
    b, rows, length = t.shape
    t = F.pad(t, (0, plan.padded_len - length))
    t = t.view(b, groups, rows // groups, plan.num_blocks, plan.num_chunks, plan.chunk_len)
    # (b, g, r, K, nc, T) -> (K, T, b, nc, g, r)
    return t.permute(3, 5, 0, 4, 1, 2).contiguous()


def _from_blocks(t: Tensor, length: int) -> Tensor:
    """Inverse of :func:`_to_blocks`: ``(K, T, b, nc, g, r)`` -> ``(b, g * r, L)``."""
    K, T, b, nc, g, r = t.shape
    # (K, T, b, nc, g, r) -> (b, g, r, K, nc, T)
    t = t.permute(2, 4, 5, 0, 3, 1).reshape(b, g * r, K * nc * T)
    return t[..., :length]


class _Core:
    """Block-wise forward / backward of ``y = scan(dt, A, B, C, u)`` (no D, z)."""

    def __init__(self, u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor,
                 plan: _Plan) -> None:
        # u, dt: (b, d, L); A: (d, N); B, C: (b, g, N, L)
        b, d, self.length = u.shape
        self.groups = g = B.shape[1]
        self.plan = plan
        self.state_shape = (b, d, A.shape[1])
        self.A = A.reshape(g, d // g, A.shape[1])  # (g, dg, N)
        self.dt = _to_blocks(dt, plan, g)  # (K, T, b, nc, g, dg)
        self.u = _to_blocks(u, plan, g)
        self.dtu = self.dt * self.u
        self.B = _to_blocks(B.flatten(1, 2), plan, g)  # (K, T, b, nc, g, N)
        self.C = _to_blocks(C.flatten(1, 2), plan, g)

    def _buffer(self) -> Tensor:
        K, T, b, nc, g, dg = self.dt.shape
        return self.dt.new_empty(T, b, nc, g, dg, self.A.shape[-1])

    def _states(self, k: int, h0: Tensor, a: Tensor, h: Tensor) -> Tensor:
        """Fill ``a`` (decays) and ``h`` (states) for block ``k``; return states entering each chunk."""
        T, b, nc = a.shape[:3]
        torch.mul(self.dt[k].unsqueeze(-1), self.A, out=a).exp_()
        # x_t = dt_t u_t B_t: (T, b, nc, g, dg, 1) * (T, b, nc, g, 1, N)
        torch.mul(self.dtu[k].unsqueeze(-1), self.B[k].unsqueeze(-2), out=h)
        carried, _ = _scan_chunks_(a.view(T, b, nc, -1), h.view(T, b, nc, -1),
                                   h0.reshape(b, -1), reverse=False)
        return carried

    def forward(self) -> Tuple[Tensor, Tensor, Tensor]:
        """Returns ``y`` ``(b, d, L)``, block-entry states ``(K, b, d, N)`` and the last state."""
        K = self.plan.num_blocks
        a, h = self._buffer(), self._buffer()
        y = torch.empty_like(self.dt)
        # entry[k]: state before block k; entry[K]: the last state
        entry = self.dt.new_zeros((K + 1, ) + self.state_shape)
        for k in range(K):
            self._states(k, entry[k], a, h)
            # y_t = sum_n h_t C_t: (T, b, nc, g, dg, N) @ (T, b, nc, g, N, 1)
            y[k] = torch.matmul(h, self.C[k].unsqueeze(-1)).squeeze(-1)
            entry[k + 1] = h[-1, :, -1].reshape(self.state_shape)
        return _from_blocks(y, self.length), entry[:K], entry[K].clone()

    def backward(self, dy: Tensor, entry: Tensor,
                 d_last: Optional[Tensor]) -> Tuple[Tensor, ...]:
        """Gradients ``(du, ddt, dA, dB, dC)`` given ``dy`` ``(b, d, L)``."""
        K, T, b, nc, g, dg = self.dt.shape
        dy = _to_blocks(dy, self.plan, g)
        a, h, adj = self._buffer(), self._buffer(), self._buffer()
        d_dtu = torch.empty_like(self.dt)
        d_dtw = torch.empty_like(self.dt)
        dB = torch.empty_like(self.B)
        dC = torch.empty_like(self.C)
        dA = torch.zeros_like(self.A)
        # a * g just after the current block; the last state's grad enters undecayed
        carry = (d_last if d_last is not None else entry.new_zeros(self.state_shape)).reshape(b, -1)
        for k in range(K - 1, -1, -1):
            carried = self._states(k, entry[k], a, h)
            # dC_t = sum_dg dy_t h_t: (T, b, nc, g, 1, dg) @ (T, b, nc, g, dg, N)
            dC[k] = torch.matmul(dy[k].unsqueeze(-2), h).squeeze(-2)
            # adjoint input C_t dy_t: (T, b, nc, g, dg, 1) * (T, b, nc, g, 1, N)
            torch.mul(dy[k].unsqueeze(-1), self.C[k].unsqueeze(-2), out=adj)
            _, carry = _scan_chunks_(a.view(T, b, nc, -1), adj.view(T, b, nc, -1), carry,
                                     reverse=True)
            # adj is now g_t = dL/dx_t
            dB[k] = torch.matmul(self.dtu[k].unsqueeze(-2), adj).squeeze(-2)
            d_dtu[k] = torch.matmul(adj, self.B[k].unsqueeze(-1)).squeeze(-1)
            # dL/d(dt A)_t = g_t a_t h_{t-1}; h_{t-1} of a chunk's first step is carried in
            adj.mul_(a)
            adj[1:].mul_(h[:-1])
            adj[0].mul_(carried.view(b, nc, g, dg, -1))
            torch.mul(adj, self.A, out=h)
            d_dtw[k] = h.sum(-1)
            torch.mul(adj, self.dt[k].unsqueeze(-1), out=h)
            dA += h.sum((0, 1, 2))
        du = d_dtu * self.dt
        ddt = torch.addcmul(d_dtw, d_dtu, self.u)
        return (_from_blocks(du, self.length), _from_blocks(ddt, self.length),
                dA.flatten(0, 1), _from_blocks(dB, self.length).unflatten(1, (g, -1)),
                _from_blocks(dC, self.length).unflatten(1, (g, -1)))


def compute_dtype(*tensors: Optional[Tensor]) -> torch.dtype:
    """float64 if any input is float64, else float32."""
    if any(t is not None and t.dtype == torch.float64 for t in tensors):
        return torch.float64
    return torch.float32


def _delta(delta: Tensor, delta_bias: Optional[Tensor], softplus: bool) -> Tuple[Tensor, Tensor]:
    """Returns ``(pre, dt)``: ``delta + bias`` and the step size after optional softplus."""
    pre = delta if delta_bias is None else delta + delta_bias.unsqueeze(-1)
    dt = F.softplus(pre, threshold=SOFTPLUS_THRESHOLD) if softplus else pre
    return pre, dt


class SelectiveScanTorch(torch.autograd.Function):
    """Autograd function behind :func:`selective_scan_torch`."""

    @staticmethod
    def forward(ctx, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                D: Optional[Tensor], z: Optional[Tensor], delta_bias: Optional[Tensor],
                delta_softplus: bool, return_last_state: bool, block_len: Optional[int],
                chunk_len: Optional[int]):
        cdt = compute_dtype(u, delta, A, B, C, D, z, delta_bias)
        with torch.autocast(u.device.type, enabled=False):
            u_, delta_, A_, B_, C_ = (t.to(cdt) for t in (u, delta, A, B, C))
            grouped = B.dim() == 4
            if not grouped:
                B_, C_ = B_.unsqueeze(1), C_.unsqueeze(1)  # (b, N, L) -> (b, 1, N, L)
            bias = None if delta_bias is None else delta_bias.to(cdt)
            _, dt = _delta(delta_, bias, delta_softplus)
            b, d, length = u.shape
            plan = _make_plan(length, b * d * A.shape[1], block_len, chunk_len)
            core = _Core(u_, dt, A_, B_, C_, plan)
            y, entry, last = core.forward()
            if D is not None:
                y = torch.addcmul(y, u_, D.to(cdt).unsqueeze(-1))
            out = y if z is None else y * F.silu(z.to(cdt))
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, entry,
                              y if z is not None else None)
        ctx.config = (delta_softplus, grouped, plan, cdt)
        out = out.to(u.dtype)
        if return_last_state:
            return out, last
        return out

    @staticmethod
    def backward(ctx, d_out: Tensor, *rest: Optional[Tensor]):
        u, delta, A, B, C, D, z, delta_bias, entry, y = ctx.saved_tensors
        softplus, grouped, plan, cdt = ctx.config
        d_last = rest[0] if rest else None
        with torch.autocast(u.device.type, enabled=False):
            u_, delta_, A_, B_, C_ = (t.to(cdt) for t in (u, delta, A, B, C))
            if not grouped:
                B_, C_ = B_.unsqueeze(1), C_.unsqueeze(1)
            bias = None if delta_bias is None else delta_bias.to(cdt)
            pre, dt = _delta(delta_, bias, softplus)
            dy = d_out.to(cdt)
            dz = None
            if z is not None:
                z_ = z.to(cdt)
                sig = torch.sigmoid(z_)
                # d silu(z) / dz = sig * (1 + z * (1 - sig))
                dz = dy * y * sig * (1 + z_ * (1 - sig))
                dy = dy * z_ * sig
            core = _Core(u_, dt, A_, B_, C_, plan)
            du, ddt, dA, dB, dC = core.backward(
                dy, entry, None if d_last is None else d_last.to(cdt))
            dD = None
            if D is not None:
                du = torch.addcmul(du, dy, D.to(cdt).unsqueeze(-1))
                dD = (dy * u_).sum((0, 2))
            if softplus:
                ddt = ddt * torch.where(pre > SOFTPLUS_THRESHOLD, 1.0, torch.sigmoid(pre))
            d_bias = None if delta_bias is None else ddt.sum((0, 2))
            if not grouped:
                dB, dC = dB.squeeze(1), dC.squeeze(1)

        def cast(grad: Optional[Tensor], like: Optional[Tensor]) -> Optional[Tensor]:
            return None if grad is None or like is None else grad.to(like.dtype)

        return (cast(du, u), cast(ddt, delta), cast(dA, A), cast(dB, B), cast(dC, C),
                cast(dD, D), cast(dz, z), cast(d_bias, delta_bias), None, None, None, None)


def selective_scan_torch(u: Tensor,
                         delta: Tensor,
                         A: Tensor,
                         B: Tensor,
                         C: Tensor,
                         D: Optional[Tensor] = None,
                         z: Optional[Tensor] = None,
                         delta_bias: Optional[Tensor] = None,
                         delta_softplus: bool = False,
                         return_last_state: bool = False,
                         block_len: Optional[int] = None,
                         chunk_len: Optional[int] = None):
    """Chunked pure-PyTorch selective scan (the ``torch`` backend).

    Arguments and result as :func:`mmmamba.ops.selective_scan`; inputs are
    assumed validated. ``block_len`` / ``chunk_len`` override the automatic
    cut of the sequence (used by tests to exercise several blocks and chunks).
    """
    return SelectiveScanTorch.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                                    return_last_state, block_len, chunk_len)
