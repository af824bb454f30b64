import importlib
import itertools
from functools import partial

import pytest
import torch

from mmmamba.ops import (BACKEND_ENV, available_backends, last_backend, selective_scan,
                         selective_scan_reference)
from mmmamba.ops.selective_scan_torch import (BLOCK_ELEMENTS, STEP_ELEMENTS, _make_plan,
                                              selective_scan_torch)

# the module, not the function of the same name that mmmamba.ops exports
scan_module = importlib.import_module('mmmamba.ops.selective_scan')


def make_inputs(batch=2, dim=4, length=13, state=3, groups=None, dtype=torch.float64,
                delta_scale=0.5, seed=0):
    """Random scan inputs as a dict; every tensor requires grad."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype)

    bc_shape = (batch, state, length) if groups is None else (batch, groups, state, length)
    inputs = dict(
        u=rand(batch, dim, length),
        delta=rand(batch, dim, length) * delta_scale,
        A=-torch.rand(dim, state, generator=gen, dtype=dtype) * 2 - 0.05,
        B=rand(*bc_shape),
        C=rand(*bc_shape),
        D=rand(dim),
        z=rand(batch, dim, length),
        delta_bias=rand(dim) * 0.5,
    )
    for t in inputs.values():
        t.requires_grad_()
    return inputs


def outputs_and_grads(fn, inputs, seed=1, **options):
    """Run ``fn`` and return its outputs and the grads of a random projection of them.

    A returned last state enters the projection too; it is a constant, so it adds nothing
    to the grads (see test_last_state_is_a_constant_on_every_backend).
    """
    outs = fn(**inputs, **options)
    outs = outs if isinstance(outs, tuple) else (outs, )
    gen = torch.Generator().manual_seed(seed)
    loss = sum((o * torch.randn(o.shape, generator=gen, dtype=torch.float64).to(o)).sum()
               for o in outs)
    names = [k for k, v in inputs.items() if v is not None]
    grads = torch.autograd.grad(loss, [inputs[k] for k in names])
    return outs, dict(zip(names, grads))


def assert_matches_reference(inputs, rtol=1e-9, atol=1e-10, **options):
    torch_options = {k: options.pop(k) for k in ('block_len', 'chunk_len') if k in options}
    ref_outs, ref_grads = outputs_and_grads(selective_scan_reference, inputs, **options)
    outs, grads = outputs_and_grads(selective_scan_torch, inputs, **options, **torch_options)
    assert len(outs) == len(ref_outs)
    for out, ref in zip(outs, ref_outs):
        assert out.shape == ref.shape and out.dtype == ref.dtype
        torch.testing.assert_close(out, ref, rtol=rtol, atol=atol)
    assert grads.keys() == ref_grads.keys()
    for name in ref_grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=rtol, atol=atol,
                                   msg=lambda m: f'grad of {name}: {m}')


@pytest.fixture(autouse=True)
def no_backend_env(monkeypatch):
    monkeypatch.delenv(BACKEND_ENV, raising=False)


# (length, state, groups, block_len, chunk_len): L = 1, a prime L, L not a
# multiple of the chunk, several blocks, N = 1 and N = 16, grouped B/C (also with N = 1, as
# VMamba's v2 models run); blocks of one chunk (the path of wide states), several of them
# with a padded last one, and a single one.
SHAPES = [
    (41, 16, 2, 6, 6),
    (23, 4, None, 23, 23),
    (1, 1, None, None, None),
    (1, 16, 2, None, None),
    (37, 16, None, None, None),
    (37, 1, None, 10, 3),
    (29, 4, 2, 8, 5),
    (64, 16, 4, 16, 4),
    (50, 3, None, 50, 7),
    (40, 1, 4, 12, 4),
]


@pytest.mark.parametrize('length,state,groups,block_len,chunk_len', SHAPES)
def test_matches_reference_all_options(length, state, groups, block_len, chunk_len):
    inputs = make_inputs(length=length, state=state, groups=groups)
    before = {k: v.detach().clone() for k, v in inputs.items()}
    assert_matches_reference(inputs, delta_softplus=True, return_last_state=True,
                             block_len=block_len, chunk_len=chunk_len)
    for name, value in before.items():  # no input was modified in place
        assert torch.equal(inputs[name], value), name


# Each optional input on/off, softplus, return_last_state.
OPTIONS = list(itertools.product([False, True], repeat=5))


@pytest.mark.parametrize('with_D,with_z,with_bias,softplus,last_state', OPTIONS)
def test_matches_reference_option_combinations(with_D, with_z, with_bias, softplus, last_state):
    inputs = make_inputs(length=23, state=5, groups=2 if with_z else None)
    inputs.update({k: None for k, on in (('D', with_D), ('z', with_z), ('delta_bias', with_bias))
                   if not on})
    assert_matches_reference(inputs, delta_softplus=softplus, return_last_state=last_state,
                             block_len=12, chunk_len=5)


# (batch, block_len, chunk_len): several chunks; one chunk per block with a padded last block,
# for one sequence (blocks are then views of the inputs) and for two
@pytest.mark.parametrize('batch,block_len,chunk_len', [(2, 9, 4), (1, 8, 8), (2, 8, 8)])
def test_sequence_major_inputs(batch, block_len, chunk_len):
    """As in the Vim mixer, u, delta, z, B and C are transposed views of (batch, L, channels):
    same results as the reference, and y keeps the sequence-major memory order."""
    base = make_inputs(batch=batch, length=21, state=4)
    inputs = {k: v.detach().clone() for k, v in base.items()}
    for name in ('u', 'delta', 'z', 'B', 'C'):
        inputs[name] = inputs[name].transpose(1, 2).contiguous().transpose(1, 2)
        assert not inputs[name].is_contiguous()
    inputs = {k: v.requires_grad_() for k, v in inputs.items()}
    before = {k: v.detach().clone() for k, v in inputs.items()}
    assert_matches_reference(inputs, delta_softplus=True, block_len=block_len,
                             chunk_len=chunk_len)
    for name, value in before.items():  # blocks may be views of the inputs: none was changed
        assert torch.equal(inputs[name], value), name
    y = selective_scan_torch(**{**inputs, 'z': None}, delta_softplus=True, block_len=block_len,
                             chunk_len=chunk_len)
    assert y.transpose(1, 2).is_contiguous()


def test_public_function_dispatches_to_torch_on_cpu():
    inputs = make_inputs(length=19)
    out = selective_scan(**inputs, delta_softplus=True)
    assert last_backend() == 'torch'
    ref = selective_scan(**inputs, delta_softplus=True, backend='reference')
    assert last_backend() == 'reference'
    torch.testing.assert_close(out, ref)


def test_large_delta_and_positive_tail_stay_exact():
    # per-step log-decays down to ~ -200: exp(-cumsum) would overflow at once
    inputs = make_inputs(length=41, state=4, delta_scale=30.0)
    assert_matches_reference(inputs, delta_softplus=True, return_last_state=True,
                             block_len=20, chunk_len=6)


def test_float32_matches_float64_reference():
    inputs64 = make_inputs(length=200, dim=8, state=16)
    inputs32 = {k: v.detach().float().requires_grad_() for k, v in inputs64.items()}
    ref_outs, ref_grads = outputs_and_grads(selective_scan_reference, inputs64,
                                            delta_softplus=True, return_last_state=True)
    outs, grads = outputs_and_grads(selective_scan, inputs32, delta_softplus=True,
                                    return_last_state=True)
    assert outs[0].dtype == torch.float32 and outs[1].dtype == torch.float32
    for out, ref in zip(outs, ref_outs):
        torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-4)
    for name, ref in ref_grads.items():
        assert grads[name].dtype == torch.float32
        torch.testing.assert_close(grads[name].double(), ref, rtol=1e-4, atol=1e-3)


def test_bf16_autocast_keeps_float32_math():
    inputs = make_inputs(length=64, dim=8, state=16, dtype=torch.float32)
    ref = selective_scan_reference(**inputs, delta_softplus=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = selective_scan(**inputs, delta_softplus=True)
    # fp32 inputs under autocast: fp32 out, computed in fp32 (not bf16)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_bf16_inputs_give_bf16_output_within_bf16_tolerance():
    inputs = make_inputs(length=64, dim=8, state=16, dtype=torch.bfloat16)
    exact = {k: v.detach().double().requires_grad_() for k, v in inputs.items()}
    ref_outs, ref_grads = outputs_and_grads(selective_scan_reference, exact,
                                            delta_softplus=True, return_last_state=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        outs, grads = outputs_and_grads(selective_scan, inputs, delta_softplus=True,
                                        return_last_state=True)
    out, last = outs
    assert out.dtype == torch.bfloat16 and last.dtype == torch.float32
    assert torch.isfinite(out).all() and torch.isfinite(last).all()
    # the only bf16 rounding is of the output itself
    torch.testing.assert_close(out.double(), ref_outs[0], rtol=1.6e-2, atol=1e-2)
    torch.testing.assert_close(last.double(), ref_outs[1], rtol=1e-5, atol=1e-5)
    for name, ref in ref_grads.items():
        assert grads[name].dtype == torch.bfloat16 and torch.isfinite(grads[name]).all()
        # the incoming gradient itself is bf16-rounded, so compare loosely
        scale = ref.abs().max()
        assert (grads[name].double() - ref).abs().max() <= 3e-2 * scale + 1e-2, name


def test_fp16_inputs_keep_a_state_beyond_fp16_range():
    """fp16 in and out, but the state is fp32: it may exceed fp16's 65504 on the way."""
    length, dim, state = 2048, 4, 2
    gen = torch.Generator().manual_seed(0)
    u = (torch.rand(1, dim, length, generator=gen) * 10 + 20).half()
    delta = torch.ones(1, dim, length).half()
    A = torch.full((dim, state), -1e-4).half()  # almost no decay: h grows like sum(u * B)
    B = (torch.rand(1, state, length, generator=gen) * 10 + 20).half()
    C = torch.full((1, state, length), 1e-3).half()
    out, last = selective_scan(u, delta, A, B, C, return_last_state=True)
    assert out.dtype == torch.float16
    assert last.abs().max() > 1e6  # an fp16 state would have overflowed to inf
    ref, ref_last = selective_scan_reference(*(t.double() for t in (u, delta, A, B, C)),
                                             return_last_state=True)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), ref, rtol=1e-3, atol=1e-2)
    torch.testing.assert_close(last.double(), ref_last, rtol=1e-5, atol=0)


def test_long_sequence_with_large_delta_is_finite():
    length = 65536
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(1, 2, length, generator=gen)
    # softplus(delta) up to ~60 with A down to -16: log-decays per step of -1000
    delta = (torch.rand(1, 2, length, generator=gen) * 60).requires_grad_()
    A = torch.tensor([[-1.0, -4.0, -16.0], [-0.01, -0.5, -2.0]], requires_grad=True)
    B = torch.randn(1, 3, length, generator=gen, requires_grad=True)
    C = torch.randn(1, 3, length, generator=gen, requires_grad=True)
    u.requires_grad_()
    out, last = selective_scan(u, delta, A, B, C, delta_softplus=True, return_last_state=True)
    assert torch.isfinite(out).all() and torch.isfinite(last).all()
    out.square().mean().backward()
    for t in (u, delta, A, B, C):
        assert torch.isfinite(t.grad).all()
    # agrees with a run cut into different blocks and chunks
    out2 = selective_scan_torch(u, delta, A, B, C, delta_softplus=True, block_len=5000,
                                chunk_len=37)
    torch.testing.assert_close(out2, out, rtol=1e-4, atol=1e-4)


def test_backward_keeps_states_only_at_chunk_starts():
    batch, dim, length, state = 1, 8, 512, 16
    inputs = make_inputs(batch, dim, length, state, dtype=torch.float32)
    inputs['z'] = None  # with z, the pre-gate output (batch, dim, L) is saved as well
    out = selective_scan_torch(**inputs, delta_softplus=True, block_len=128, chunk_len=16)
    saved = [t for t in out.grad_fn.saved_tensors if t is not None]
    inputs_numel = sum(t.numel() for t in inputs.values() if t is not None)
    states_numel = sum(t.numel() for t in saved) - inputs_numel
    # one (batch, dim, N) state per chunk of 16 steps, not one per step
    assert states_numel == batch * dim * state * length // 16


@pytest.mark.parametrize('length', [1, 2, 197, 3136, 16384, 65536])
@pytest.mark.parametrize('state_elems', [1, 384, 3072, 24576, 200000])
def test_plan_covers_sequence_within_budgets(length, state_elems):
    plan = _make_plan(length, state_elems, None, None)
    blocks_len = plan.num_blocks * plan.block_len
    assert length <= blocks_len < length + plan.block_len  # no empty block
    # rounding up to whole chunks may add less than one chunk
    assert plan.block_len * state_elems < BLOCK_ELEMENTS + state_elems * plan.chunk_len
    assert plan.num_chunks * state_elems <= max(STEP_ELEMENTS, state_elems)


def test_gradcheck_tiny():
    inputs = make_inputs(batch=1, dim=2, length=5, state=2, groups=2)

    def fn(*args):
        return selective_scan_torch(*args, delta_softplus=True, return_last_state=True,
                                    block_len=3, chunk_len=2)

    assert torch.autograd.gradcheck(fn, tuple(inputs.values()))


def test_double_backward_is_refused():
    inputs = make_inputs(length=6)
    out = selective_scan_torch(**inputs)
    (grad_u, ) = torch.autograd.grad(out.sum(), inputs['u'], create_graph=True)
    with pytest.raises(RuntimeError):
        grad_u.sum().backward()


def test_env_var_selects_backend(monkeypatch):
    inputs = make_inputs(length=7)
    monkeypatch.setenv(BACKEND_ENV, 'reference')
    ref = selective_scan(**inputs)
    assert last_backend() == 'reference'
    monkeypatch.setenv(BACKEND_ENV, 'torch')
    out = selective_scan(**inputs)
    assert last_backend() == 'torch'
    torch.testing.assert_close(out, ref)
    # the argument wins over the environment
    selective_scan(**inputs, backend='reference')
    assert last_backend() == 'reference'
    monkeypatch.setenv(BACKEND_ENV, 'auto')
    selective_scan(**inputs)
    assert last_backend() == 'torch'
    monkeypatch.setenv(BACKEND_ENV, 'triton')
    with pytest.raises(ValueError, match=BACKEND_ENV):
        selective_scan(**inputs)


def test_forcing_unavailable_cuda_backend_raises(monkeypatch):
    inputs = make_inputs(length=5)
    with pytest.raises(RuntimeError, match='"cuda" selective-scan backend') as info:
        selective_scan(**inputs, backend='cuda')
    assert 'CUDA tensors' in str(info.value)
    monkeypatch.setenv(BACKEND_ENV, 'cuda')
    with pytest.raises(RuntimeError, match='cuda'):
        selective_scan(**inputs)
    assert 'cuda' not in available_backends('cpu')
    assert available_backends('cpu') == ['torch', 'reference']


def test_missing_kernel_error_says_how_to_install(monkeypatch):
    # simulate CUDA tensors with no importable kernel
    monkeypatch.setattr(scan_module, '_load_cuda_scan', lambda: None)
    monkeypatch.setattr(scan_module, '_cuda_error', "ImportError: No module named 'x'")
    with pytest.raises(RuntimeError, match='MAMBA_KEEP_CUDA_BUILD=TRUE'):
        scan_module._resolve_backend('cuda', torch.device('cuda'))
    assert scan_module._resolve_backend(None, torch.device('cuda')) == 'torch'


def test_backend_is_logged_once(monkeypatch):
    monkeypatch.setattr(scan_module, '_logged', set())
    messages = []
    monkeypatch.setattr(scan_module, '_emit_log', messages.append)
    inputs = make_inputs(length=3)
    selective_scan(**inputs, backend='torch')
    selective_scan(**inputs, backend='torch')
    selective_scan(**inputs, backend='reference')
    assert len(messages) == 2
    assert "'torch'" in messages[0] and "'reference'" in messages[1]


@pytest.mark.parametrize('bad', [
    dict(u=torch.zeros(2, 4)),
    dict(delta=torch.zeros(2, 4, 5)),
    dict(A=torch.zeros(3, 3)),
    dict(B=torch.zeros(2, 3, 3, 7)),
    dict(C=torch.zeros(2, 2, 3, 7)),
    dict(D=torch.zeros(3)),
    dict(z=torch.zeros(2, 4, 6)),
])
def test_bad_shapes_raise(bad):
    inputs = {k: v.detach().float() for k, v in make_inputs(length=7).items()}
    inputs.update(bad)
    with pytest.raises(ValueError):
        selective_scan(**inputs)


# ---------------------------------------------------------------------------------------------
# One semantics on every backend: the last state is a constant. mamba-ssm's kernel (the "cuda"
# backend) has no gradient input for it, so the other backends return it detached as well.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize('backend', ['torch', 'reference'])
def test_last_state_is_a_constant_on_every_backend(backend):
    inputs = make_inputs(length=17, state=3, groups=2)
    out, last = selective_scan(**inputs, delta_softplus=True, return_last_state=True,
                               backend=backend)
    assert last_backend() == backend
    assert out.requires_grad
    assert not last.requires_grad and last.grad_fn is None
    with pytest.raises(RuntimeError, match='does not require grad'):
        last.sum().backward()
    # a loss on out and the last state has exactly the grads of its out part
    gen = torch.Generator().manual_seed(1)
    out_weight = torch.randn(out.shape, generator=gen, dtype=out.dtype)
    last_weight = torch.randn(last.shape, generator=gen, dtype=last.dtype)
    tensors = list(inputs.values())
    with_last = torch.autograd.grad((out * out_weight).sum() + (last * last_weight).sum(),
                                    tensors, retain_graph=True)
    out_only = torch.autograd.grad((out * out_weight).sum(), tensors)
    for name, grad, expected in zip(inputs, with_last, out_only):
        assert torch.equal(grad, expected), name


# ---------------------------------------------------------------------------------------------
# CUDA (mamba-ssm's kernel) against the torch backend
# ---------------------------------------------------------------------------------------------
def model_like_inputs(device, dtype, batch=2, dim=8, length=97, state=4, groups=2, seed=0):
    """Scan inputs as a model feeds the kernel: activations ``u, delta, B, C, z`` in ``dtype``
    (B, C grouped), parameters ``A, D, delta_bias`` in float32; every tensor requires grad."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=gen)

    activations = dict(
        u=rand(batch, dim, length),
        delta=rand(batch, dim, length) * 0.5,
        B=rand(batch, groups, state, length),
        C=rand(batch, groups, state, length),
        z=rand(batch, dim, length))
    parameters = dict(
        A=-torch.rand(dim, state, generator=gen) * 2 - 0.05, D=rand(dim),
        delta_bias=rand(dim) * 0.5)
    inputs = {k: v.to(device, dtype) for k, v in activations.items()}
    inputs.update({k: v.to(device) for k, v in parameters.items()})
    return {k: v.requires_grad_() for k, v in inputs.items()}


def assert_close_to_scale(actual, expected, tol, what):
    """``|actual - expected| <= tol * max|expected|`` elementwise (bf16 rounds each element)."""
    assert actual.shape == expected.shape, what
    actual, expected = actual.detach().double().cpu(), expected.detach().double().cpu()
    bound = tol * max(float(expected.abs().max()), 1e-3)
    error = float((actual - expected).abs().max())
    assert error <= bound, f'{what}: max error {error:.3g} > {bound:.3g}'


def assert_backends_agree(first, second, inputs, tol, reference_tol=None):
    """Out, last state and the grads of all eight inputs agree between two backends.

    With ``reference_tol``, both also agree with the float64 reference on the CPU.
    """
    results = {}
    for backend in (first, second):
        fresh = {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}
        (out, last), grads = outputs_and_grads(
            partial(selective_scan, backend=backend), fresh, delta_softplus=True,
            return_last_state=True)
        assert last_backend() == backend
        assert out.dtype == inputs['u'].dtype and last.dtype == torch.float32, backend
        assert not last.requires_grad, f'{backend}: the last state must be a constant'
        assert grads.keys() == inputs.keys()
        for name, grad in grads.items():
            assert grad.dtype == inputs[name].dtype, (backend, name)
        results[backend] = (out, last, grads)
    if reference_tol is not None:
        exact = {k: v.detach().double().cpu().requires_grad_() for k, v in inputs.items()}
        (out, last), grads = outputs_and_grads(selective_scan_reference, exact,
                                               delta_softplus=True, return_last_state=True)
        results['reference float64'] = (out, last, grads)
    (out, last, grads) = results[second]
    for backend, (other_out, other_last, other_grads) in results.items():
        if backend == second:
            continue
        tol_here = tol if backend == first else reference_tol
        assert_close_to_scale(out, other_out, tol_here, f'{second} vs {backend}: out')
        assert_close_to_scale(last, other_last, tol_here, f'{second} vs {backend}: last state')
        for name in grads:
            assert_close_to_scale(grads[name], other_grads[name], tol_here,
                                  f'{second} vs {backend}: grad of {name}')


# bf16 outputs and activation grads are rounded to bf16 (8 bits) at the end; all else is fp32
PARITY_TOL = {torch.float32: 1e-3, torch.bfloat16: 2e-2}


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_backend_parity_check_on_cpu(dtype):
    """The check the CUDA parity test runs, here between the CPU backends."""
    assert_backends_agree('reference', 'torch', model_like_inputs('cpu', dtype),
                          tol=PARITY_TOL[dtype], reference_tol=PARITY_TOL[dtype])


def _cuda_kernel_missing() -> str:
    if not torch.cuda.is_available():
        return 'no CUDA device'
    if 'cuda' not in available_backends('cuda'):
        return f"mamba-ssm's selective_scan_cuda does not import ({scan_module._cuda_error})"
    return ''


CUDA_KERNEL_MISSING = _cuda_kernel_missing()


@pytest.mark.skipif(
    bool(CUDA_KERNEL_MISSING),
    reason='the CUDA-vs-torch parity test needs a CUDA device and mamba-ssm\'s kernel '
    f'(install: see mmmamba.ops.selective_scan); here: {CUDA_KERNEL_MISSING}')
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
@pytest.mark.parametrize('length', [97, 2100])  # 2100: more than one 2048-step kernel chunk
def test_cuda_kernel_matches_torch_backend(dtype, length):
    inputs = model_like_inputs('cuda', dtype, length=length)
    # the float64 reference loop (L**2 backward) only at the short length
    assert_backends_agree('cuda', 'torch', inputs, tol=PARITY_TOL[dtype],
                          reference_tol=PARITY_TOL[dtype] if length < 1000 else None)
