"""Selective scan (the Mamba-1 SSM operator) with backend dispatch.

:func:`selective_scan` keeps the interface of mamba-ssm's ``selective_scan_fn``
and runs on one of three backends:

- ``cuda``: mamba-ssm's fused kernel (``selective_scan_cuda``), for CUDA
  tensors when the extension imports;
- ``torch``: our chunked pure-PyTorch scan with a hand-written backward
  (:mod:`mmmamba.ops.selective_scan_torch`), for every other case (CPU, CUDA
  without mamba-ssm, MPS);
- ``reference``: a plain sequential loop over time, differentiated by autograd.
  Slow; for tests and benchmarks only.

The default (``auto``) is ``cuda`` for CUDA tensors when the kernel is
available, else ``torch``. Force one with ``backend=`` or the environment
variable ``MMMAMBA_SCAN_BACKEND=cuda|torch|reference`` (the argument wins);
forcing one that cannot run raises ``RuntimeError``. The first use of each
backend is logged once, and :func:`last_backend` tells which one ran last.

The last state is a constant
----------------------------
With ``return_last_state=True`` every backend returns the last state
``h_{L-1}`` detached (``requires_grad`` False): no gradient flows back from
it. That is what mamba-ssm's kernel can do (its backward has no input for the
state's gradient), and the other backends follow it, so a model trains the
same on every backend. The state is meant for inference caches; to train
through a state, use ``out`` (``y_t = C_t . h_t``).

Tracing (FLOP counting)
-----------------------
Under ``torch.jit`` tracing ``auto`` picks ``torch`` on every device: its
autograd Function is recorded as one node, ``prim::PythonOp.SelectiveScanTorch``,
which :mod:`mmmamba.ops.flops` counts for mmengine's ``FlopAnalyzer``. Forcing
``reference`` under tracing raises ``RuntimeError`` (its loop would be recorded
step by step and not counted as a scan).

Installing the ``cuda`` backend
-------------------------------
mamba-ssm builds its Mamba-1 kernel ``selective_scan_cuda`` only on request:
since state-spaces/mamba#977 a default ``pip install mamba-ssm`` skips the
CUDA extension (and the lookup of a prebuilt wheel) unless
``MAMBA_KEEP_CUDA_BUILD=TRUE`` is set at install time. ``MAMBA_FORCE_BUILD=TRUE``
additionally compiles from source instead of fetching a prebuilt wheel; that
needs ``nvcc`` from a CUDA toolkit matching ``torch.version.cuda``, and
``MAX_JOBS`` bounds the parallel compile jobs::

    MAMBA_KEEP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE MAX_JOBS=4 \\
        pip install --no-build-isolation "mamba-ssm>=2.3"
    python -c "import selective_scan_cuda"   # must succeed

Without the extension, ``mamba_ssm`` itself still imports (its
``selective_scan_interface`` sets ``selective_scan_cuda = None``), so this
module checks for ``selective_scan_cuda`` directly.
"""
import logging
import os
from typing import Callable, List, Optional, Set, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .selective_scan_torch import compute_dtype, selective_scan_torch

__all__ = [
    'selective_scan', 'selective_scan_reference', 'available_backends', 'last_backend',
    'BACKENDS', 'BACKEND_ENV'
]

BACKENDS = ('cuda', 'torch', 'reference')
BACKEND_ENV = 'MMMAMBA_SCAN_BACKEND'
_CUDA_INSTALL_HINT = ('install mamba-ssm with its Mamba-1 kernel: MAMBA_KEEP_CUDA_BUILD=TRUE '
                      'MAMBA_FORCE_BUILD=TRUE pip install --no-build-isolation "mamba-ssm>=2.3" '
                      '(see the docstring of mmmamba.ops.selective_scan)')

ScanOutput = Union[Tensor, Tuple[Tensor, Tensor]]

_last_backend: Optional[str] = None
_logged: Set[str] = set()
_cuda_fn: Optional[Callable] = None
_cuda_error: Optional[str] = None


def _load_cuda_scan() -> Optional[Callable]:
    """mamba-ssm's ``selective_scan_fn`` if its CUDA extension imports, else ``None``."""
    global _cuda_fn, _cuda_error
    if _cuda_fn is None and _cuda_error is None:
        try:
            import selective_scan_cuda  # noqa: F401  (absent unless built on request)
            from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
        except ImportError as exc:
            _cuda_error = f'{type(exc).__name__}: {exc}'
        else:
            _cuda_fn = selective_scan_fn
    return _cuda_fn


def available_backends(device: Union[str, torch.device, None] = None) -> List[str]:
    """Backends that can run on ``device``.

    Args:
        device (str | torch.device, optional): where the tensors live.
            ``None`` means "any device of this machine".

    Returns:
        list[str]: a subset of ``['cuda', 'torch', 'reference']``.
    """
    names = []
    on_cuda = (torch.cuda.is_available() if device is None else
               torch.device(device).type == 'cuda')
    if on_cuda and _load_cuda_scan() is not None:
        names.append('cuda')
    return names + ['torch', 'reference']


def last_backend() -> Optional[str]:
    """Name of the backend the last :func:`selective_scan` call ran on (``None`` before any)."""
    return _last_backend


def _emit_log(msg: str) -> None:
    try:
        from mmengine.logging import print_log
    except ImportError:
        logging.getLogger(__name__).info(msg)
    else:
        print_log(msg, logger='current', level=logging.INFO)


def _log_once(name: str, device: torch.device) -> None:
    if name not in _logged:
        _logged.add(name)
        _emit_log(f'mmmamba selective_scan: using the {name!r} backend '
                  f'(tensors on {device.type})')


def _resolve_backend(backend: Optional[str], device: torch.device) -> str:
    requested = backend if backend is not None else os.environ.get(BACKEND_ENV, '')
    requested = requested.strip().lower() or 'auto'
    if requested not in BACKENDS + ('auto', ):
        source = 'backend=' if backend is not None else f'${BACKEND_ENV}='
        raise ValueError(f'{source}{requested!r} is not a selective-scan backend; '
                         f'choose one of {BACKENDS + ("auto", )}')
    tracing = torch.jit.is_tracing()
    if requested == 'auto':
        if device.type == 'cuda' and _load_cuda_scan() is not None and not tracing:
            return 'cuda'
        return 'torch'
    if requested == 'reference' and tracing:
        if backend is not None:
            source, fix = f'backend={backend!r}', "pass backend='torch' (or leave it None)"
        else:
            source = f'${BACKEND_ENV}={os.environ[BACKEND_ENV]!r}'
            fix = f'unset ${BACKEND_ENV} or set it to torch'
        raise RuntimeError(
            f'the "reference" selective-scan backend ({source}) cannot be traced by torch.jit, '
            'as FLOP counting does: it is a Python loop over L steps, which a trace records op '
            f'by op and a FLOP counter cannot see as one scan; {fix}')
    if requested == 'cuda':
        problems = []
        if device.type != 'cuda':
            problems.append(f'it needs CUDA tensors, got tensors on {device.type}')
        if _load_cuda_scan() is None:
            problems.append(f'mamba-ssm\'s kernel does not import ({_cuda_error}); '
                            f'{_CUDA_INSTALL_HINT}')
        if problems:
            raise RuntimeError('the "cuda" selective-scan backend is unavailable: ' +
                               '; '.join(problems))
    return requested


def _check_inputs(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                  D: Optional[Tensor], z: Optional[Tensor], delta_bias: Optional[Tensor]) -> None:
    if u.dim() != 3 or u.shape[-1] < 1:
        raise ValueError(f'u must be (batch, dim, L) with L >= 1, got {tuple(u.shape)}')
    batch, dim, length = u.shape
    if delta.shape != u.shape:
        raise ValueError(f'delta must match u {tuple(u.shape)}, got {tuple(delta.shape)}')
    if A.dim() != 2 or A.shape[0] != dim or A.is_complex():
        raise ValueError(f'A must be real (dim={dim}, N), got {tuple(A.shape)} {A.dtype}')
    state = A.shape[1]
    for name, t in (('B', B), ('C', C)):
        ok = (t.dim() == 3 and t.shape == (batch, state, length)) or (
            t.dim() == 4 and t.shape[0] == batch and t.shape[2:] == (state, length)
            and dim % t.shape[1] == 0)
        if not ok:
            raise ValueError(f'{name} must be (batch, N, L)={batch, state, length} or '
                             f'(batch, G, N, L) with G dividing dim={dim}, got {tuple(t.shape)}')
    if B.shape != C.shape:
        raise ValueError(f'B and C must have the same shape, got {tuple(B.shape)} and '
                         f'{tuple(C.shape)}')
    for name, t in (('D', D), ('delta_bias', delta_bias)):
        if t is not None and t.shape != (dim, ):
            raise ValueError(f'{name} must be (dim,)=({dim},), got {tuple(t.shape)}')
    if z is not None and z.shape != u.shape:
        raise ValueError(f'z must match u {tuple(u.shape)}, got {tuple(z.shape)}')


def selective_scan_reference(u: Tensor,
                             delta: Tensor,
                             A: Tensor,
                             B: Tensor,
                             C: Tensor,
                             D: Optional[Tensor] = None,
                             z: Optional[Tensor] = None,
                             delta_bias: Optional[Tensor] = None,
                             delta_softplus: bool = False,
                             return_last_state: bool = False) -> ScanOutput:
    """The recurrence written out step by step (the ``reference`` backend).

    Differentiated by autograd through the loop, so it keeps every step's
    state for backward, and its backward grows as ``L**2``: the gradient of
    each step's slice ``u[:, :, t]`` is a full-length tensor. For tests and
    benchmarks only. Same arguments and result as :func:`selective_scan`.
    """
    cdt = compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    with torch.autocast(u.device.type, enabled=False):
        u_, delta_, A_, B_, C_ = (t.to(cdt) for t in (u, delta, A, B, C))
        if delta_bias is not None:
            delta_ = delta_ + delta_bias.to(cdt).unsqueeze(-1)
        if delta_softplus:
            delta_ = F.softplus(delta_)
        if B_.dim() == 3:
            B_, C_ = B_.unsqueeze(1), C_.unsqueeze(1)  # (b, N, L) -> (b, 1, N, L)
        batch, dim, length = u.shape
        groups, state = B_.shape[1], A.shape[1]
        A_ = A_.reshape(groups, dim // groups, state)
        h = u_.new_zeros(batch, groups, dim // groups, state)
        ys = []
        for t in range(length):
            dt = delta_[:, :, t].reshape(batch, groups, -1, 1)  # (b, g, dg, 1)
            ut = u_[:, :, t].reshape(batch, groups, -1, 1)
            # h_t = exp(dt A) h_{t-1} + dt B_t u_t;  (b, g, dg, N)
            h = torch.exp(dt * A_) * h + dt * ut * B_[:, :, None, :, t]
            # y_t = C_t . h_t;  (b, g, dg)
            ys.append((h * C_[:, :, None, :, t]).sum(-1).reshape(batch, dim))
        y = torch.stack(ys, dim=-1)  # (b, d, L)
        if D is not None:
            y = y + D.to(cdt).unsqueeze(-1) * u_
        if z is not None:
            y = y * F.silu(z.to(cdt))
    out = y.to(u.dtype)
    if return_last_state:
        return out, h.reshape(batch, dim, state).detach()  # a constant, as in every backend
    return out


def _selective_scan_cuda(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                         D: Optional[Tensor], z: Optional[Tensor], delta_bias: Optional[Tensor],
                         delta_softplus: bool, return_last_state: bool) -> ScanOutput:
    """mamba-ssm's fused kernel; it keeps its state in float32 itself.

    Its backward ignores any gradient of the last state; the state is detached
    here so that this shows (``requires_grad`` is False) instead of a gradient
    silently dropped.
    """
    fn = _load_cuda_scan()
    result = fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    if return_last_state:
        out, last_state = result
        return out, last_state.detach()
    return result


_IMPLS = {
    'cuda': _selective_scan_cuda,
    'torch': selective_scan_torch,
    'reference': selective_scan_reference,
}


def selective_scan(u: Tensor,
                   delta: Tensor,
                   A: Tensor,
                   B: Tensor,
                   C: Tensor,
                   D: Optional[Tensor] = None,
                   z: Optional[Tensor] = None,
                   delta_bias: Optional[Tensor] = None,
                   delta_softplus: bool = False,
                   return_last_state: bool = False,
                   backend: Optional[str] = None) -> ScanOutput:
    """Selective scan with the semantics of mamba-ssm's ``selective_scan_fn``.

    With ``dt = softplus(delta + delta_bias)`` (softplus and bias optional)::

        h_t = exp(dt_t A) * h_{t-1} + dt_t B_t u_t     # (batch, dim, N), h_{-1} = 0
        y_t = C_t . h_t + D u_t
        out = y * silu(z)

    The state and all accumulation are float32 (float64 for float64 inputs)
    whatever the input dtype or autocast.

    Args:
        u (Tensor): input, ``(batch, dim, L)``.
        delta (Tensor): step sizes before bias/softplus, ``(batch, dim, L)``.
        A (Tensor): real state matrix (diagonal per channel), ``(dim, N)``.
        B (Tensor): input projection, ``(batch, N, L)`` or grouped
            ``(batch, G, N, L)`` where channel ``d`` uses group ``d // (dim / G)``.
        C (Tensor): output projection, same shape as ``B``.
        D (Tensor, optional): skip weight, ``(dim,)``. Defaults to None.
        z (Tensor, optional): gate, ``(batch, dim, L)``. Defaults to None.
        delta_bias (Tensor, optional): ``(dim,)``, added to ``delta``. Defaults to None.
        delta_softplus (bool): apply softplus to ``delta``. Defaults to False.
        return_last_state (bool): also return ``h_{L-1}``, detached: its
            gradient is not propagated on any backend. Defaults to False.
        backend (str, optional): ``'cuda'``, ``'torch'``, ``'reference'`` or
            ``'auto'``. Defaults to None: ``$MMMAMBA_SCAN_BACKEND``, else auto.

    Returns:
        Tensor | tuple[Tensor, Tensor]: ``out`` ``(batch, dim, L)`` in the dtype
        of ``u``; with ``return_last_state`` also the last state
        ``(batch, dim, N)`` in the compute dtype (float32 or float64), with
        ``requires_grad`` False on every backend.
    """
    _check_inputs(u, delta, A, B, C, D, z, delta_bias)
    name = _resolve_backend(backend, u.device)
    global _last_backend
    _last_backend = name
    _log_once(name, u.device)
    return _IMPLS[name](u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
