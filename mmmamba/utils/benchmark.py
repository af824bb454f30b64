"""Time and peak-memory measurement shared by the benchmarks in ``tools/analysis_tools/``.

A benchmark script measures every case in fresh Python processes, one for memory and one for
time (:func:`run_worker`), each of which calls back into the script with ``--worker SPEC``:

- **peak memory** (:func:`measure_peak`) of one call: on CUDA,
  ``torch.cuda.max_memory_allocated`` above what was allocated before the call; on CPU, the
  peak resident set size (``VmHWM`` in ``/proc/self/status``) above the resident size just
  before the call, after resetting the peak by writing ``5`` to ``/proc/self/clear_refs``
  (Linux). The memory process runs with ``MALLOC_MMAP_THRESHOLD_=65536`` so that glibc returns
  every freed block of 64 KiB or more to the system at once (by default it raises that
  threshold as blocks are freed and keeps them, so the resident size lags behind what is in
  use). This counts everything the call touches (autograd graph, saved tensors, temporaries,
  gradients), not only what torch reports;
- **time** (:func:`time_forward_backward`): the best of several runs of a forward under
  ``torch.no_grad()`` and of a forward+backward, in a process with glibc's default allocator
  settings (the memory process's setting would add page faults to every large allocation).
  Each run is timed twice: wall time (``time.perf_counter``) and the CPU time of the measuring
  process, all its threads together (``time.process_time``). On a machine shared with other
  work the wall time includes the time the process waited for a core; its CPU time does not,
  so the CPU time is the steadier figure there (with one thread it is close to the wall time
  of an idle machine; with several it is their sum).
"""
import gc
import json
import os
import subprocess
import sys
import time
from typing import Callable, Dict, Optional, Tuple

import torch

# glibc: freed blocks of at least this many bytes go back to the system at once (memory runs).
MEMORY_RUN_MMAP_THRESHOLD = '65536'


def read_proc_status(field: str) -> int:
    """A ``/proc/self/status`` field (``VmRSS``, ``VmHWM``, ...) in bytes."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f'{field} not in /proc/self/status')


def reset_cpu_peak() -> None:
    """Reset ``VmHWM`` (the peak resident set size) to the current resident size (Linux)."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels on CUDA; nothing to wait for on CPU."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def measure_peak(fn: Callable[[], object], device: torch.device) -> int:
    """Peak memory in bytes that one call of ``fn`` adds on ``device`` (see the module docstring).

    Anything ``fn`` returns is dropped before the call returns, so it does not outlive the
    measurement. Unreachable objects are collected first: the garbage collector would otherwise
    be free to run inside the call and release memory counted in the base, which hides the
    call's own growth (a peak of zero after a test that left tensors in reference cycles).

    On CPU the result is faithful only where freed blocks leave the resident set at once, as in
    the memory workers of :func:`run_worker`. With glibc's default settings, a long-running
    process keeps freed heap blocks resident and reuses them, so a call can measure less or
    more than it used.
    """
    gc.collect()
    if device.type == 'cuda':
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    reset_cpu_peak()
    base = read_proc_status('VmRSS')
    fn()
    return read_proc_status('VmHWM') - base


def time_best_of(fn: Callable[[], object],
                 repeat: int,
                 device: torch.device,
                 grad: bool,
                 budget_s: Optional[float] = None) -> Tuple[float, float, int]:
    """The shortest wall and CPU time (s) of up to ``repeat`` timed calls of ``fn``, and how
    many calls were made.

    The two minima are taken independently (each is the best of the same calls). ``grad`` sets
    ``torch.set_grad_enabled`` around each call (False: inference). With ``budget_s``, no
    further call starts once the calls so far took that many seconds of wall time together,
    so slow cases run fewer times; at least one call is always made.
    """
    if repeat < 1:
        raise ValueError(f'repeat must be at least 1, got {repeat}')
    walls, cpus = [], []
    while len(walls) < repeat:
        with torch.set_grad_enabled(grad):
            synchronize(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            fn()
            synchronize(device)
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu_start)
        if budget_s is not None and sum(walls) >= budget_s:
            break
    return min(walls), min(cpus), len(walls)


def time_forward_backward(forward: Callable[[], object],
                          forward_backward: Callable[[], object],
                          repeat: int,
                          device: torch.device,
                          budget_s: Optional[float] = None) -> Dict[str, float]:
    """Best-of-``repeat`` wall and CPU times (s) of ``forward`` (no grad) and
    ``forward_backward``.

    When ``repeat > 1`` one untimed ``forward_backward`` runs first at the measured shape (the
    first call at a new shape pays for page faults and lazy set-up). Returns wall times
    ``fwd`` and ``fwd_bwd``, CPU times ``fwd_cpu`` and ``fwd_bwd_cpu``, and ``fwd_runs`` /
    ``fwd_bwd_runs``, the timed calls made (fewer than ``repeat`` when ``budget_s`` ran out,
    see :func:`time_best_of`).
    """
    if repeat > 1:
        forward_backward()
    fwd, fwd_cpu, fwd_runs = time_best_of(forward, repeat, device, grad=False,
                                          budget_s=budget_s)
    fwd_bwd, fwd_bwd_cpu, fwd_bwd_runs = time_best_of(
        forward_backward, repeat, device, grad=True, budget_s=budget_s)
    return dict(fwd=fwd, fwd_bwd=fwd_bwd, fwd_cpu=fwd_cpu, fwd_bwd_cpu=fwd_bwd_cpu,
                fwd_runs=fwd_runs, fwd_bwd_runs=fwd_bwd_runs)


def run_worker(script: str, spec: Dict, measure: str) -> Tuple[Optional[Dict], str]:
    """Run ``python SCRIPT --worker JSON(spec + measure)`` in a fresh interpreter.

    ``measure`` is ``'memory'`` or ``'time'``; the memory process gets
    ``MALLOC_MMAP_THRESHOLD_`` (unless the caller's environment already sets it). The worker
    must print its result as JSON on the last line of stdout. Returns ``(result, '')``, or
    ``(None, stderr tail)`` when the worker failed.
    """
    if measure not in ('memory', 'time'):
        raise ValueError(f"measure must be 'memory' or 'time', got {measure!r}")
    cmd = [sys.executable, os.path.abspath(script), '--worker',
           json.dumps(dict(spec, measure=measure))]
    env = dict(os.environ)
    if measure == 'memory':
        env.setdefault('MALLOC_MMAP_THRESHOLD_', MEMORY_RUN_MMAP_THRESHOLD)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return None, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), ''


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, e.g. ``'1.02 0.87 0.60'``."""
    return ' '.join(f'{x:.2f}' for x in os.getloadavg())


def environment_line(device: str, threads: int) -> str:
    """One line saying what the numbers were measured on (torch, device, threads, load)."""
    return (f'torch {torch.__version__}, device {device}, '
            f'threads {threads or torch.get_num_threads()}, cpus {os.cpu_count()}, '
            f'load average {load_average()}')
