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

That is ``O(T + nc)`` Python steps per block instead of ``O(L)``. The forward
saves the state entering every chunk, ``L / T`` states of ``(batch, dim, N)``
(not one per step). Backward replays each chunk from its saved state, one
block at a time, and runs the same two-level scan in reverse time on the
adjoint ``g_t = dL/dh_t``::

    g_t = a_{t+1} * g_{t+1} + C_t * dy_t

All arithmetic is float32 (float64 inputs stay float64) with autocast
disabled. Decays are evaluated as ``exp2(dt * A log2(e))`` (torch's CPU
``exp2`` is some 3x faster than its ``exp``) and floored at the smallest
normal float (see :func:`_exp2_floor`) unless the extremes of ``dt`` and
``A`` show that no decay can get there.
"""
import math
from typing import NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from ._tracing import traced_outputs, untraced

__all__ = ['selective_scan_torch', 'compute_dtype']

# Elements (batch * dim * N * block length) of one working buffer. Three such
# buffers are alive in backward (two in forward): 3 * 4 * 2**19 bytes = 6 MiB
# in float32, well inside the 32 MiB L3 of the 2-core CPU this was tuned on.
# There, at (1, 192, 3136, 16), fwd+bwd took 67-73 ms with blocks of 2**18.5
# to 2**20 elements, 77 ms at 2**18 and 95 ms at 2**21 (min of 8, 1 thread);
# chunks from sqrt(block) / 2 to 2 sqrt(block) steps timed within noise.
BLOCK_ELEMENTS = 2**19
# Elements of one step of all chunks of a block, (batch, chunks, dim, N). Kept
# at or below torch's intra-op grain (at::internal::GRAIN_SIZE = 32768), the
# hundreds of per-step ops of the scan loops run without an OpenMP region: on
# a busy CPU each region can wait a scheduler slice for a descheduled worker.
# Measured on the 2-core CPU next to a 2-thread training job, this cut a 2-thread
# forward at (1, 192, 3136, 16) from 3.7 s to 0.56 s (1 thread: 0.04 s). The few
# large ops (exp, products, contractions) stay parallel.
STEP_ELEMENTS = 32768
SOFTPLUS_THRESHOLD = 20.0
LOG2_E = 1.0 / math.log(2.0)


class _Plan(NamedTuple):
    """How a sequence of length ``L`` is cut: ``K`` blocks of ``nc`` chunks of ``T`` steps."""
    num_blocks: int
    num_chunks: int
    chunk_len: int

    @property
    def block_len(self) -> int:
        return self.num_chunks * self.chunk_len


def _make_plan(length: int, state_elems: int, block_len: Optional[int],
               chunk_len: Optional[int]) -> _Plan:
    """Choose block and chunk lengths; ``state_elems`` is batch * dim * N."""
    if block_len is None:
        block_len = max(1, BLOCK_ELEMENTS // max(state_elems, 1))
    block_len = max(1, min(block_len, length))
    num_blocks = math.ceil(length / block_len)
    block_len = math.ceil(length / num_blocks)  # even out the blocks
    if chunk_len is None:
        # about sqrt(block) chunks, but few enough that one step of all of them
        # stays below torch's parallel grain
        num_chunks = min(math.ceil(math.sqrt(block_len)), STEP_ELEMENTS // max(state_elems, 1))
        chunk_len = math.ceil(block_len / max(num_chunks, 1))
    chunk_len = max(1, min(chunk_len, block_len))
    num_chunks = math.ceil(block_len / chunk_len)
    # rounding the block up to whole chunks may leave fewer blocks needed
    return _Plan(math.ceil(length / (num_chunks * chunk_len)), num_chunks, chunk_len)


def _steps(buffer: Tensor) -> Tuple[Tensor, ...]:
    """The ``T`` steps ``(b, nc, S)`` of a ``(T, b, nc, g, dg, N)`` working buffer, as views.

    Made once per buffer: every block reuses the buffer, and the views cost as much to make as
    the small per-step ops that use them.
    """
    return buffer.flatten(3).unbind(0)


def _scan_chunks_(steps_a: Sequence[Tensor], steps_x: Sequence[Tensor], decay: Optional[Tensor],
                  h0: Tensor, reverse: bool) -> Tuple[Tensor, Tensor]:
    """Run a linear recurrence over one block, in place.

    Args:
        steps_a (Sequence[Tensor]): decays, ``T`` steps ``(b, nc, S)``; sequence position
            ``c * T + j`` is ``steps_a[j][:, c]``. ``S`` is the flattened state (``dim * N``).
        steps_x (Sequence[Tensor]): inputs, same shapes; overwritten with the states.
        decay (Tensor, optional): ``(b, nc, S)``, the product of ``a`` over each chunk;
            not needed (None) for one chunk.
        h0 (Tensor): ``(b, S)``. Forward: the state before the block.
            Reverse: ``a * g`` at the first position after the block.
        reverse (bool): ``False``: ``x_t <- a_t x_{t-1} + x_t``.
            ``True``: ``x_t <- a_{t+1} x_{t+1} + x_t`` (the adjoint recurrence).

    Returns:
        tuple[Tensor, Tensor]: ``carried`` ``(b, nc, S)``, the value entering
        each chunk (forward: state before the chunk; reverse: ``a * g`` after
        it), and the value leaving the block in the scan direction.
    """
    T, nc = len(steps_a), steps_a[0].shape[1]
    carried = torch.empty_like(steps_x[0])  # (b, nc, S)
    if nc == 1:
        # One chunk (wide states leave no room for more, see _make_plan): run the recurrence
        # from the carried state directly, one op per step instead of three.
        carried[:, 0] = h0
        h0 = h0.unsqueeze(1)  # (b, 1, S)
        if not reverse:
            steps_x[0].addcmul_(steps_a[0], h0)
            for j in range(1, T):
                torch.addcmul(steps_x[j], steps_a[j], steps_x[j - 1], out=steps_x[j])
            return carried, steps_x[T - 1][:, 0].clone()
        steps_x[T - 1].add_(h0)
        for j in range(T - 2, -1, -1):
            torch.addcmul(steps_x[j], steps_a[j + 1], steps_x[j + 1], out=steps_x[j])
        return carried, (steps_a[0] * steps_x[0])[:, 0]
    if not reverse:
        # 1. every chunk from a zero state
        for j in range(1, T):
            torch.addcmul(steps_x[j], steps_a[j], steps_x[j - 1], out=steps_x[j])
        # 2. carry the state over chunk ends
        last = steps_x[T - 1]
        carried[:, 0] = h0
        for c in range(nc - 1):
            torch.addcmul(last[:, c], decay[:, c], carried[:, c], out=carried[:, c + 1])
        state = torch.addcmul(last[:, -1], decay[:, -1], carried[:, -1])
        # 3. add the carried state, decayed by prod(a[0..j])
        run = carried * steps_a[0]
        steps_x[0].add_(run)
        for j in range(1, T):
            steps_x[j].add_(run.mul_(steps_a[j]))
    else:
        for j in range(T - 2, -1, -1):
            torch.addcmul(steps_x[j], steps_a[j + 1], steps_x[j + 1], out=steps_x[j])
        # a * g at each chunk's first step: a_0 (g_loc_0 + prod(a_1..a_{T-1}) carried)
        first = steps_a[0] * steps_x[0]
        carried[:, -1] = h0
        for c in range(nc - 1, 0, -1):
            torch.addcmul(first[:, c], decay[:, c], carried[:, c], out=carried[:, c - 1])
        state = torch.addcmul(first[:, 0], decay[:, 0], carried[:, 0])
        run = carried.clone()
        steps_x[T - 1].add_(run)
        for j in range(T - 2, -1, -1):
            steps_x[j].add_(run.mul_(steps_a[j + 1]))
    return carried, state


def _time_major(t: Tensor) -> Tensor:
    """``t`` ``(b, g, r, L)`` as a contiguous ``(b, L, g, r)``: sequence-major memory.

    The blocks are cut from this layout (see :func:`_block`). A ``t`` whose memory is already
    ordered so (a transposed view of a ``(b, L, d)`` tensor, as the Vim mixer passes) is
    returned as a view, without a copy; any other is copied once.
    """
    return t.permute(0, 3, 1, 2).contiguous()


def _block_view(t: Tensor, k: int, plan: _Plan) -> Tensor:
    """Block ``k`` (not the last of a padded plan) of a :func:`_time_major` tensor as a
    ``(T, b, nc, g, r)`` view."""
    b, _, g, r = t.shape
    t = t[:, k * plan.block_len:(k + 1) * plan.block_len]
    return t.view(b, plan.num_chunks, plan.chunk_len, g, r).permute(2, 0, 1, 3, 4)


def _block(t: Tensor, k: int, plan: _Plan) -> Tensor:
    """Block ``k`` of a :func:`_time_major` tensor as a contiguous ``(T, b, nc, g, r)``,
    zero-padded past the end of the sequence.

    A view, not a copy, for a full block of a batch of one in one chunk (step ``j`` is then
    row ``j``).
    """
    b, length, g, r = t.shape
    start = k * plan.block_len
    if start + plan.block_len <= length:
        return _block_view(t, k, plan).contiguous()
    last = t.new_zeros(b, plan.block_len, g, r)
    last[:, :length - start] = t[:, start:]
    return _block_view(last, 0, plan).contiguous()


def _write_block_(out: Tensor, k: int, plan: _Plan, block: Tensor) -> None:
    """Write ``block`` ``(T, b, nc, g, r)`` to block ``k`` of ``out`` ``(b, L, g, r)``,
    dropping steps past the end of the sequence."""
    b, length, g, r = out.shape
    start = k * plan.block_len
    if start + plan.block_len <= length:
        _block_view(out, k, plan).copy_(block)
        return
    steps = block.permute(1, 2, 0, 3, 4).reshape(b, plan.block_len, g, r)
    out[:, start:] = steps[:, :length - start]


def _from_time_major(t: Tensor) -> Tensor:
    """Inverse of :func:`_time_major`: ``t`` ``(b, L, g, r)`` as a ``(b, g, r, L)`` view."""
    return t.permute(0, 2, 3, 1)


def _exp2_floor(dtype: torch.dtype) -> float:
    """Lowest base-2 exponent whose ``exp2`` is a normal number.

    ``exp2`` of anything lower is below the smallest normal float, and torch's
    CPU exponentials take a path some 50x slower for such arguments. Decays are
    therefore floored at ``2 ** floor`` (about 2e-38 in float32), which moves a
    state by less than that fraction of itself.
    """
    return math.log2(torch.finfo(dtype).tiny) + 1.0


def _matvec(x: Tensor, v: Tensor) -> Tensor:
    """``sum_n x[m, d, n] * v[m, n]`` as ``(m, d)``, for ``x`` ``(m, d, n)``.

    One batched ``(1, n) @ (n, d)`` product against the transposed view of
    ``x``: no copy of ``x``, and some 3x faster on CPU than ``x @ v[..., None]``
    or a multiply-and-sum over the short last dimension. For ``n = 1`` (VMamba's v2 models)
    the product is a broadcast multiply, which is far faster than ``m`` 1x1 products.
    """
    if x.shape[-1] == 1:
        return x.squeeze(-1) * v
    return torch.bmm(v.unsqueeze(1), x.transpose(1, 2)).squeeze(1)


def _vecmat(v: Tensor, x: Tensor) -> Tensor:
    """``sum_d v[m, d] * x[m, d, n]`` as ``(m, n)``, for ``x`` ``(m, d, n)`` (for ``n = 1`` a
    multiply and sum, as in :func:`_matvec`)."""
    if x.shape[-1] == 1:
        return (v * x.squeeze(-1)).sum(-1, keepdim=True)
    return torch.bmm(v.unsqueeze(1), x).squeeze(1)


def _softplus_grad(dt: Tensor) -> Tensor:
    """d softplus(x) / dx from ``dt = softplus(x)``.

    ``sigmoid(x) = 1 - exp(-softplus(x))``, and 1 above the threshold, where :func:`F.softplus`
    is linear (``dt = x``).
    """
    return torch.neg(dt).expm1_().neg_().masked_fill_(dt > SOFTPLUS_THRESHOLD, 1.0)


class _Core:
    """Block-wise forward and backward of the scan proper (``D`` and ``z`` excluded).

    Every ``(b, d, L)`` or ``(b, g, N, L)`` input is viewed as ``(b, g, r, L)``.
    ``u``, ``dt`` (bias and softplus done once) and the output gradient are laid out
    sequence-major once (:func:`_time_major`: no copy for inputs that already are, such as
    the Vim mixer's), as are ``B`` and ``C``; every block of ``T`` steps is cut from that
    layout. The results are written sequence-major and returned as views in the inputs'
    shapes. The ``(T, b, nc, g, dg, N)`` working buffers hold one block.
    """

    def __init__(self, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                 delta_bias: Optional[Tensor], softplus: bool, plan: _Plan) -> None:
        # u, delta: (b, d, L); A: (d, N); B, C: (b, g, N, L); delta_bias: (d,)
        d = u.shape[1]
        g, state = B.shape[1], A.shape[1]
        self.plan = plan
        self.A = A.reshape(g, d // g, state)  # (g, dg, N)
        self.A2 = self.A * LOG2_E  # exp(dt A) = exp2(dt A2)
        self.u = u.unflatten(1, (g, -1))  # (b, g, dg, L)
        self.u_steps = _time_major(self.u)  # (b, L, g, dg)
        self.B, self.C = _time_major(B), _time_major(C)  # (b, L, g, N)
        self.softplus = softplus
        self.has_bias = delta_bias is not None
        # dt = softplus(delta + bias), sequence-major (b, L, g, dg), one pass over delta; the
        # steps that pad the last block get dt = 0 (a = 1, x = 0): they leave the state alone
        delta = delta.unflatten(1, (g, -1)).permute(0, 3, 1, 2)
        dt = torch.empty_like(delta, memory_format=torch.contiguous_format)
        if delta_bias is not None:
            torch.add(delta, delta_bias.reshape(g, -1), out=dt)
        else:
            dt.copy_(delta)
        self.dt = F.softplus(dt, threshold=SOFTPLUS_THRESHOLD) if softplus else dt
        # Flooring the per-step decays costs a pass over every block; on CPU
        # (where it would not force a device sync) skip it when the extremes of
        # dt and A show that no dt * A can reach the floor.
        self.floor = _exp2_floor(dt.dtype)
        self.clamp = True
        if dt.device.type == 'cpu' and dt.numel() and self.A2.numel():
            corners = torch.stack(dt.aminmax()).unsqueeze(1) * torch.stack(self.A2.aminmax())
            self.clamp = not bool(corners.min() >= self.floor)  # NaN: clamp

    def _buffer(self) -> Tensor:
        b, _, g, dg = self.dt.shape
        plan = self.plan
        return self.dt.new_empty(plan.chunk_len, b, plan.num_chunks, g, dg, self.A.shape[-1])

    def _decays(self, a: Tensor, x: Tensor, dt: Tensor, dtu: Tensor,
                B: Tensor) -> Optional[Tensor]:
        """Fill ``a`` with the decays and ``x`` with the inputs of one block.

        Returns the decay over each chunk, ``(b, nc, S)``; None for one chunk, whose scan
        starts from the carried state and needs none.
        """
        T, b, nc = a.shape[:3]
        torch.mul(dt.unsqueeze(-1), self.A2, out=a)
        if self.clamp:
            a.clamp_(min=self.floor)
        a.exp2_()
        # x_t = dt_t u_t B_t: (T, b, nc, g, dg, 1) * (T, b, nc, g, 1, N)
        torch.mul(dtu.unsqueeze(-1), B.unsqueeze(-2), out=x)
        if nc == 1:
            return None
        # prod_j exp(dt_j A) = exp(A sum_j dt_j): (b, nc, g, dg, 1) * (g, dg, N)
        return (dt.sum(0).unsqueeze(-1) * self.A2).clamp_(min=self.floor).exp2_().view(b, nc, -1)

    def forward(self) -> Tuple[Tensor, Tensor]:
        """Returns ``y`` ``(b, d, L)`` and the states entering every chunk, ``(K, b, nc, S)``.

        The last of those is followed by the last state, at ``[K, :, 0]``.
        """
        plan = self.plan
        K, nc = plan.num_blocks, plan.num_chunks
        a, h = self._buffer(), self._buffer()
        steps_a, steps_h = _steps(a), _steps(h)
        b = a.shape[1]
        y = torch.empty_like(self.dt)  # (b, L, g, dg)
        chunk_states = a.new_empty(K + 1, b, nc, a[0, 0, 0].numel())
        state = a.new_zeros(b, chunk_states.shape[-1])
        for k in range(K):
            dt = _block(self.dt, k, plan)
            decay = self._decays(a, h, dt, dt * _block(self.u_steps, k, plan),
                                 _block(self.B, k, plan))
            chunk_states[k], state = _scan_chunks_(steps_a, steps_h, decay, state, reverse=False)
            # y_t = sum_n h_t C_t (t: step, b, c: chunk, g: group, d: dim in group)
            y_k = _matvec(h.flatten(0, 3), _block(self.C, k, plan).flatten(0, 3))
            _write_block_(y, k, plan, y_k.view_as(dt))
        chunk_states[K, :, 0] = state
        return _from_time_major(y).flatten(1, 2), chunk_states

    @staticmethod
    def _replay(steps_a: Sequence[Tensor], steps_h: Sequence[Tensor],
                chunk_states: Tensor) -> None:
        """States of a block from the states entering its chunks; ``steps_h`` holds the
        inputs."""
        steps_h[0].addcmul_(steps_a[0], chunk_states)
        for j in range(1, len(steps_h)):
            steps_h[j].addcmul_(steps_a[j], steps_h[j - 1])

    def backward(self, dy: Tensor, chunk_states: Tensor) -> Tuple[Optional[Tensor], ...]:
        """Gradients ``(du, d_delta, d_bias, dA, dB, dC)`` given ``dy`` ``(b, d, L)``.

        ``d_delta`` is taken through the softplus; ``d_bias`` is ``None``
        without a bias. The last state is a constant output (see
        :func:`mmmamba.ops.selective_scan`), so no gradient enters at the end.
        """
        plan = self.plan
        b, g, dg, _ = self.u.shape
        nc = plan.num_chunks
        dy = _time_major(dy.unflatten(1, (g, -1)))  # (b, L, g, dg)
        a, h, adj = self._buffer(), self._buffer(), self._buffer()
        steps_a, steps_h, steps_adj = _steps(a), _steps(h), _steps(adj)
        du, d_delta = torch.empty_like(self.dt), torch.empty_like(self.dt)
        dB, dC = torch.empty_like(self.B), torch.empty_like(self.C)
        dA = torch.zeros_like(self.A)
        ones = self.A.new_ones(self.A.shape[-1])
        # a * g just after the current block: zero after the last one, (b, S)
        carry = chunk_states.new_zeros(chunk_states.shape[1:2] + chunk_states.shape[3:])
        for k in range(plan.num_blocks - 1, -1, -1):
            dt, u = _block(self.dt, k, plan), _block(self.u_steps, k, plan)
            dy_k, B, C = _block(dy, k, plan), _block(self.B, k, plan), _block(self.C, k, plan)
            dtu = dt * u
            decay = self._decays(a, h, dt, dtu, B)
            self._replay(steps_a, steps_h, chunk_states[k])
            # dC_t = sum_d dy_t h_t
            _write_block_(dC, k, plan, _vecmat(dy_k.flatten(0, 3), h.flatten(0, 3)).view_as(C))
            # adjoint input C_t dy_t: (T, b, nc, g, dg, 1) * (T, b, nc, g, 1, N)
            torch.mul(dy_k.unsqueeze(-1), C.unsqueeze(-2), out=adj)
            _, carry = _scan_chunks_(steps_a, steps_adj, decay, carry, reverse=True)
            # adj is now g_t = dL/dx_t = dL/dh_t
            _write_block_(dB, k, plan, _vecmat(dtu.flatten(0, 3), adj.flatten(0, 3)).view_as(B))
            d_dtu = _matvec(adj.flatten(0, 3), B.flatten(0, 3)).view_as(dt)
            # dL/d(dt A)_t = g_t a_t h_{t-1}; h_{t-1} of a chunk's first step is carried in
            adj.mul_(a)
            adj[1:].mul_(h[:-1])
            adj[0].mul_(chunk_states[k].view(b, nc, g, dg, -1))
            # sum over N as a product with ones: 2x faster than .sum(-1) over 16 elements
            torch.mul(adj, self.A, out=h)
            d_dt = h.view(-1, h.shape[-1]).mv(ones).view_as(dt)
            dA += torch.mul(adj, dt.unsqueeze(-1), out=h).sum((0, 1, 2))
            d_dt.addcmul_(d_dtu, u)
            if self.softplus:
                d_dt.mul_(_softplus_grad(dt))
            _write_block_(du, k, plan, d_dtu.mul_(dt))
            _write_block_(d_delta, k, plan, d_dt)
        du, d_delta = _from_time_major(du).flatten(1, 2), _from_time_major(d_delta).flatten(1, 2)
        d_bias = d_delta.sum((0, 2)) if self.has_bias else None
        return (du, d_delta, d_bias, dA.flatten(0, 1),
                _from_time_major(dB), _from_time_major(dC))


def compute_dtype(*tensors: Optional[Tensor]) -> torch.dtype:
    """float64 if any input is float64, else float32."""
    if any(t is not None and t.dtype == torch.float64 for t in tensors):
        return torch.float64
    return torch.float32


def _cast_inputs(cdt: torch.dtype, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                 delta_bias: Optional[Tensor]) -> Tuple[Optional[Tensor], ...]:
    """Inputs in the compute dtype, with ``B``, ``C`` as ``(b, g, N, L)``."""
    if B.dim() == 3:
        B, C = B.unsqueeze(1), C.unsqueeze(1)  # (b, N, L) -> (b, 1, N, L)
    return tuple(None if t is None else t.to(cdt) for t in (u, delta, A, B, C, delta_bias))


class SelectiveScanTorch(torch.autograd.Function):
    """Autograd function behind :func:`selective_scan_torch`."""

    @staticmethod
    def forward(ctx, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                D: Optional[Tensor], z: Optional[Tensor], delta_bias: Optional[Tensor],
                delta_softplus: bool, return_last_state: bool, block_len: Optional[int],
                chunk_len: Optional[int]):
        # one node in a torch.jit trace: the ops below stay out of the graph (see ._tracing)
        with untraced():
            cdt = compute_dtype(u, delta, A, B, C, D, z, delta_bias)
            b, d, length = u.shape
            plan = _make_plan(length, b * d * A.shape[1], block_len, chunk_len)
            with torch.autocast(u.device.type, enabled=False):
                core = _Core(*_cast_inputs(cdt, u, delta, A, B, C, delta_bias), delta_softplus,
                             plan)
                y, chunk_states = core.forward()
                if D is not None:
                    y.addcmul_(core.u.flatten(1, 2), D.to(cdt).unsqueeze(-1))
                out = y if z is None else y * F.silu(z.to(cdt))
            # (K, b, nc, S) is (L / chunk_len) states: what backward replays chunks from
            ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, chunk_states[:-1],
                                  y if z is not None else None)
            ctx.config = (delta_softplus, plan, cdt)
            results = (out.to(u.dtype), )
            if return_last_state:
                results += (chunk_states[-1, :, 0].view(b, d, -1).clone(), )
        results = traced_outputs(u, *results)
        if return_last_state:
            # a constant, as mamba-ssm's kernel treats it (it has no gradient for it)
            ctx.mark_non_differentiable(results[1])
            return results
        return results[0]

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out: Tensor, *d_last_state: Optional[Tensor]):
        # d_last_state: the (zero) gradient of the non-differentiable last state, unused
        u, delta, A, B, C, D, z, delta_bias, chunk_states, y = ctx.saved_tensors
        softplus, plan, cdt = ctx.config
        with torch.autocast(u.device.type, enabled=False):
            core = _Core(*_cast_inputs(cdt, u, delta, A, B, C, delta_bias), softplus, plan)
            dy = d_out.to(cdt)
            dz = None
            if z is not None:
                z_ = z.to(cdt)
                sig = torch.sigmoid(z_)
                # d silu(z) / dz = sig * (1 + z * (1 - sig))
                dz = dy * y * sig * (1 + z_ * (1 - sig))
                dy = dy * z_ * sig
            du, d_delta, d_bias, dA, dB, dC = core.backward(dy, chunk_states)
            dD = None
            if D is not None:
                du.addcmul_(dy, D.to(cdt).unsqueeze(-1))
                dD = (dy * core.u.flatten(1, 2)).sum((0, 2))
            if B.dim() == 3:
                dB, dC = dB.squeeze(1), dC.squeeze(1)

        def cast(grad: Optional[Tensor], like: Optional[Tensor]) -> Optional[Tensor]:
            return None if grad is None or like is None else grad.to(like.dtype)

        return (cast(du, u), cast(d_delta, delta), cast(dA, A), cast(dB, B), cast(dC, C),
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
