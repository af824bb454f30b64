"""Benchmark the selective-scan backends: time and peak memory, as ratios to the reference.

For every case and every backend available on the device, fresh Python
subprocesses (one for memory, one for time) build random inputs and measure

- **fwd+bwd peak memory**: on CUDA, ``torch.cuda.max_memory_allocated`` above
  what was allocated before the call. On CPU, the peak resident set size of
  the process (``VmHWM`` in ``/proc/self/status``) above the resident size
  just before the call, after resetting the peak by writing ``5`` to
  ``/proc/self/clear_refs`` (Linux). This is the first fwd+bwd at that shape
  in a fresh process, so memory freed by earlier runs cannot hide in the
  allocator's cache, and the worker runs with ``MALLOC_MMAP_THRESHOLD_=65536``
  so that glibc hands every freed block of 64 KiB or more back to the system
  at once (by default it raises that threshold as blocks are freed and keeps
  them, which makes the resident size lag behind what is really in use). It
  counts everything the call touches (autograd graph, saved tensors,
  temporaries), not just what torch reports;
- **forward time** (under ``torch.no_grad()``, i.e. inference) and
  **fwd+bwd time** (forward with grad, then ``backward`` of a weighted sum):
  the best of ``--repeat`` runs after a warm-up, in a process with glibc's
  default allocator settings. The reference is slow at large shapes, so there
  it runs once, without warm-up (``--ref-budget``).

Ratios compare with the ``reference`` backend measured in the same run:
``speed-up = t_reference / t_backend`` and ``mem = peak_backend / peak_reference``.
The cases ``target`` and ``target-x4`` check linear growth in ``L`` and
``mem-target`` the memory goal of issue 4. Most of the run time is the
reference's backward at ``L = 16384``, which grows as ``L**2`` (see
:func:`mmmamba.ops.selective_scan_reference`).

At ``target`` a second baseline, ``materialized``
(:func:`selective_scan_materialized`), runs once: the same loop with
``exp(dt A)`` and ``dt B u`` precomputed as ``(b, d, L, N)`` tensors, as
mamba-ssm's ``selective_scan_ref`` does. Its backward is ``O(L**2 d N)``:
130-150 s there on the 2-core CPU, while the ``reference`` backend, which
slices only the ``(b, d, L)`` inputs, takes about 1.6 s. Both ratios are
printed.

Examples::

    python tools/analysis_tools/benchmark_scan.py            # all cases, ~40 min on 2 cores
    python tools/analysis_tools/benchmark_scan.py --threads 1 # fewer OpenMP stalls on a busy CPU
    python tools/analysis_tools/benchmark_scan.py --quick    # smoke run, small shapes
    python tools/analysis_tools/benchmark_scan.py --cases target vim-s --backends torch reference
"""
import argparse
import json
import time
from typing import Dict, List, Optional

from mmmamba.utils.benchmark import (environment_line, load_average, measure_peak, run_worker,
                                     time_forward_backward)

# (name, batch, dim, L, N, what it is); the reference is skipped where only
# the backends' own scaling matters.
CASES = [
    ('vim-s', 1, 1536, 197, 16, 'Vim-S 224^2: dim 768 x 2 directions'),
    ('vmamba-t-s1', 1, 384, 3136, 1, 'VMamba-T stage 1 224^2: dim 96 x 4 directions'),
    ('target', 1, 192, 3136, 16, 'speed target of issue 4'),
    ('target-x4', 1, 192, 4 * 3136, 16, 'target with 4x L (linearity; no reference)'),
    ('dense-4k', 1, 192, 4096, 16, 'dense prediction, 64^2 tokens'),
    ('dense-16k', 1, 192, 16384, 16, 'dense prediction, 128^2 tokens'),
    ('mem-target', 1, 384, 16384, 16, 'memory target of issue 4'),
]
NO_REFERENCE = {'target-x4'}
# The materialized baseline costs O(L**2 * dim * N) in backward (2-3 min at
# ``target``), so it runs where the issue quotes it only.
MATERIALIZED_CASES = {'target'}
QUICK_DIVISOR = 16  # --quick: L / 16 (at least 16) and a single repeat


def selective_scan_materialized(u, delta, A, B, C, D=None, z=None, delta_bias=None,
                                delta_softplus=False):
    """The reference loop with its per-step terms computed up front (the ``materialized`` baseline).

    ``exp(dt A)`` and ``dt B u`` are built for the whole sequence as
    ``(b, d, L, N)`` tensors and the loop only reads step ``t`` of them, the
    way mamba-ssm's ``selective_scan_ref`` is organised. Autograd's backward
    of every step's slice is then a full ``(b, d, L, N)`` tensor, so backward
    costs ``O(L**2 d N)``: this is the baseline the issue's "on the order of a
    minute" describes (2-3 min at the target shape here). Benchmark only; float32, no grouped ``B``/``C``.
    """
    import torch
    import torch.nn.functional as F
    if delta_bias is not None:
        delta = delta + delta_bias.unsqueeze(-1)
    if delta_softplus:
        delta = F.softplus(delta)
    batch, dim, length = u.shape
    dA = torch.exp(delta.unsqueeze(-1) * A.unsqueeze(1))  # (b, d, L, N)
    dBu = (delta * u).unsqueeze(-1) * B.transpose(1, 2).unsqueeze(1)  # (b, d, L, N)
    h = u.new_zeros(batch, dim, A.shape[1])
    ys = []
    for t in range(length):
        h = dA[:, :, t] * h + dBu[:, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1))  # (b, d)
    y = torch.stack(ys, dim=-1)
    if D is not None:
        y = y + D.unsqueeze(-1) * u
    if z is not None:
        y = y * F.silu(z)
    return y


def worker(spec: Dict) -> Dict:
    """Measure one (case, backend) in this process; returns times (s) and peak (bytes)."""
    import torch
    from mmmamba.ops import selective_scan

    if spec['threads']:
        torch.set_num_threads(spec['threads'])
    device = torch.device(spec['device'])
    batch, dim, length, state = spec['shape']
    backend = spec['backend']
    gen = torch.Generator().manual_seed(0)

    def make(*shape, scale=1.0, offset=0.0):
        return (torch.randn(*shape, generator=gen) * scale + offset).to(device).requires_grad_()

    # as in a Mamba block: delta before softplus around -4..0, A = -exp(A_log)
    u = make(batch, dim, length)
    delta = make(batch, dim, length, offset=-2.0)
    A = (-torch.arange(1, state + 1, dtype=torch.float32).repeat(dim, 1)).to(device).requires_grad_()
    B = make(batch, state, length)
    C = make(batch, state, length)
    D = make(dim)
    bias = make(dim, scale=0.1)
    weight = torch.randn(batch, dim, length, generator=gen).to(device)

    def forward():
        if backend == 'materialized':
            return selective_scan_materialized(u, delta, A, B, C, D, None, bias, True)
        return selective_scan(u, delta, A, B, C, D, None, bias, True, backend=backend)

    def fwd_bwd():
        (forward() * weight).sum().backward()

    # load code paths on a tiny problem, away from the measured shape
    tiny = [t[..., :4].detach().requires_grad_() if t.dim() == 3 else t for t in (u, delta)]
    if backend != 'materialized':
        selective_scan(tiny[0], tiny[1], A, B[..., :4].detach(), C[..., :4].detach(), D, None,
                       bias, True, backend=backend).sum().backward()

    if spec['measure'] == 'memory':
        return dict(peak=measure_peak(fwd_bwd, device))
    times = time_forward_backward(forward, fwd_bwd, spec['repeat'], device)
    return dict(fwd=times['fwd'], fwd_bwd=times['fwd_bwd'])


def run_case(spec: Dict) -> Optional[Dict]:
    """Run :func:`worker` in fresh interpreters; ``None`` if it failed.

    Memory and time are measured in separate processes
    (:func:`mmmamba.utils.benchmark.run_worker`): the memory run sets
    ``MALLOC_MMAP_THRESHOLD_`` so that freed blocks leave the resident set at
    once, which would also add page faults to every large allocation of a
    timed run.
    """
    result = {}
    for measure in ('memory', 'time'):
        res, error = run_worker(__file__, spec, measure)
        if res is None:
            print(f'  ! {spec["case"]}/{spec["backend"]} ({measure}) failed:\n{error}', flush=True)
            return None
        result.update(res)
    return result


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='small shapes, one repeat')
    parser.add_argument('--cases', nargs='+', choices=[c[0] for c in CASES],
                        default=[c[0] for c in CASES])
    parser.add_argument('--backends', nargs='+',
                        choices=['cuda', 'torch', 'reference', 'materialized'],
                        help='default: every backend available on the device, and the '
                        'materialized baseline at the target shape')
    parser.add_argument('--device', default='cuda' if _cuda_available() else 'cpu')
    parser.add_argument('--repeat', type=int, default=3, help='runs per timing (best is kept)')
    parser.add_argument('--ref-budget', type=float, default=4e7,
                        help='above this batch*dim*L*N the reference runs once')
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: default)')
    parser.add_argument('--json', help='also write the results to this file')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    from mmmamba.ops import available_backends
    backends = args.backends or available_backends(args.device) + ['materialized']
    if 'reference' not in backends:
        backends = backends + ['reference']
    print(environment_line(args.device, args.threads), flush=True)

    results = {}
    for name, batch, dim, length, state, note in CASES:
        if name not in args.cases:
            continue
        if args.quick:
            length = max(16, length // QUICK_DIVISOR)
        shape = [batch, dim, length, state]
        for backend in backends:
            if backend == 'reference' and name in NO_REFERENCE:
                continue
            if backend == 'materialized' and name not in MATERIALIZED_CASES:
                continue
            big = batch * dim * length * state > args.ref_budget
            slow = backend == 'materialized' or (backend == 'reference' and big)
            repeat = 1 if args.quick or slow else args.repeat
            spec = dict(case=name, backend=backend, shape=shape, device=args.device,
                        repeat=repeat, threads=args.threads)
            t0 = time.perf_counter()
            res = run_case(spec)
            if res is not None:
                res.update(shape=shape, note=note, repeat=repeat)
                results[(name, backend)] = res
                print(f'  {name:12s} {backend:9s} fwd {res["fwd"] * 1e3:10.1f} ms  fwd+bwd '
                      f'{res["fwd_bwd"] * 1e3:10.1f} ms  peak {res["peak"] / 2**20:8.1f} MiB  '
                      f'({time.perf_counter() - t0:.0f} s)', flush=True)

    print_table(results)
    print(f'load average at the end: {load_average()} (other processes on the machine skew '
          'timings)')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({f'{k[0]}/{k[1]}': v for k, v in results.items()}, f, indent=1)


def _cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def print_table(results: Dict) -> None:
    header = (f'{"case":12s} {"(batch, dim, L, N)":22s} {"backend":9s} {"fwd ms":>10s} '
              f'{"fwd+bwd ms":>11s} {"peak MiB":>9s} {"fwd x":>7s} {"fwd+bwd x":>9s} '
              f'{"mem/ref":>8s}')
    print('\n' + header + '\n' + '-' * len(header))
    for (name, backend), res in results.items():
        ref = results.get((name, 'reference'))
        ratios = ['-', '-', '-']
        if ref is not None and backend != 'reference':
            ratios = [f'{ref["fwd"] / res["fwd"]:.1f}', f'{ref["fwd_bwd"] / res["fwd_bwd"]:.1f}',
                      f'{res["peak"] / ref["peak"]:.3f}' if ref['peak'] > 0 else '-']
        print(f'{name:12s} {str(tuple(res["shape"])):22s} {backend:9s} {res["fwd"] * 1e3:10.1f} '
              f'{res["fwd_bwd"] * 1e3:11.1f} {res["peak"] / 2**20:9.1f} {ratios[0]:>7s} '
              f'{ratios[1]:>9s} {ratios[2]:>8s}')
    print('fwd x / fwd+bwd x: speed-up over the reference; mem/ref: peak memory over the '
          "reference's.")
    for (name, backend), res in results.items():
        mat = results.get((name, 'materialized'))
        if mat is not None and backend not in ('reference', 'materialized'):
            print(f'{name}: {backend} fwd+bwd is {mat["fwd_bwd"] / res["fwd_bwd"]:.0f}x faster '
                  f'than the materialized baseline ({mat["fwd_bwd"]:.1f} s)')
    for backend in sorted({k[1] for k in results} - {'reference', 'materialized'}):
        base, long = results.get(('target', backend)), results.get(('target-x4', backend))
        if base and long:
            print(f'{backend}: 4x L costs {long["fwd"] / base["fwd"]:.2f}x (fwd), '
                  f'{long["fwd_bwd"] / base["fwd_bwd"]:.2f}x (fwd+bwd)')


if __name__ == '__main__':
    main()
