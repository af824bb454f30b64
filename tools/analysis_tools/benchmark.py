"""Benchmark backbones: forward and forward+backward time and peak memory, side by side.

Every model named with ``--models`` is built through mmmamba's ``MODELS`` registry, e.g.
``vmamba:tiny:channel_first=True`` builds ``dict(type='mmmamba.VMamba', arch='tiny',
out_indices=(0, 1, 2, 3), channel_first=True)``: ``FAMILY:ARCH`` followed by any number of
``:KEY=VALUE`` keyword arguments of the backbone (values are Python literals, anything else is
a string; ``out_indices`` may be overridden too). For every input size (``--sizes``, square,
batch ``--batch``) and model, fresh Python processes measure, as
``tools/analysis_tools/benchmark_scan.py`` does (see :mod:`mmmamba.utils.benchmark`):

- **peak memory** of the first forward+backward (train mode) in the process and then of a
  forward (eval mode, ``torch.no_grad()``): peak resident set size above the one before the
  call on CPU, ``torch.cuda.max_memory_allocated`` on CUDA. The backward includes allocating
  the parameters' gradients, as a training step with ``zero_grad(set_to_none=True)`` does;
- **time**: the best of ``--repeat`` runs of a forward (eval mode, ``torch.no_grad()``) and of
  a forward+backward (train mode; backward of the sum of all outputs) after one untimed
  forward+backward at that size. A timing stops repeating once its runs took ``--budget``
  seconds together (the ``runs`` column says how many were made).

Before that, each process runs one forward+backward at a small size to load the code paths.
The table gives, at each size, every model's time and memory relative to the **first** model
named (``x`` columns: value / value of the first model); then, for each model, the growth from
each size to the next (value at the larger size / value at the smaller) next to the growth in
pixels. Initialisation is the model's own (``init_weights()``), seed 0.

Examples::

    python tools/analysis_tools/benchmark.py --models mambaout:tiny vmamba:tiny vmamba:vanilla-tiny
    OMP_NUM_THREADS=1 python tools/analysis_tools/benchmark.py --threads 1 \\
        --models mambaout:tiny vmamba:tiny vmamba:tiny:channel_first=True --sizes 224 512 1024
    python tools/analysis_tools/benchmark.py --quick --models mambaout:tiny vmamba:tiny

``--quick`` is a smoke run of the same command: every model's arch becomes the test-only
``'atto'``, the sizes default to 32 and 64, and each timing runs once.
"""
import argparse
import ast
import json
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmmamba.utils.benchmark import (environment_line, load_average, measure_peak, run_worker,
                                     time_forward_backward)

DEFAULT_SIZES = (224, 512, 1024)
QUICK_SIZES = (32, 64)
QUICK_ARCH = 'atto'
DEFAULT_OUT_INDICES = (0, 1, 2, 3)
# Size of the untimed forward+backward that loads the code paths before measuring.
WARMUP_SIZE = 64
SPEC_FORMAT = "FAMILY:ARCH[:KEY=VALUE...], e.g. 'mambaout:tiny' or 'vmamba:tiny:channel_first=True'"


def backbone_families() -> Dict[str, str]:
    """Lower-case family name -> registered class name, for every mmmamba backbone."""
    from mmmamba.models import backbones
    from mmmamba.registry import MODELS
    return {name.lower(): name for name in backbones.__all__ if name in MODELS.module_dict}


def _parse_value(text: str) -> Any:
    """A Python literal (``True``, ``0.1``, ``(0, 3)``), or the text itself as a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_model_spec(text: str, arch: Optional[str] = None) -> Tuple[str, Dict]:
    """``'FAMILY:ARCH[:KEY=VALUE...]'`` -> (label, backbone config).

    ``arch``, when given, replaces the arch written in ``text`` (``--quick``); the label is
    ``text`` with that replacement.
    """
    parts = text.split(':')
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError(f'--models entry {text!r} is not {SPEC_FORMAT}')
    family, written_arch, overrides = parts[0], parts[1], parts[2:]
    families = backbone_families()
    if family.lower() not in families:
        raise ValueError(f'--models entry {text!r}: unknown backbone family {family!r}; '
                         f'registered families: {sorted(families)}')
    arch = written_arch if arch is None else arch
    cfg = dict(type=f'mmmamba.{families[family.lower()]}', arch=arch,
               out_indices=DEFAULT_OUT_INDICES)
    for item in overrides:
        key, sep, value = item.partition('=')
        if not sep or not key.isidentifier():
            raise ValueError(f'--models entry {text!r}: {item!r} is not KEY=VALUE (a keyword '
                             f'argument of the backbone, e.g. channel_first=True)')
        if key in ('type', 'arch'):
            raise ValueError(f'--models entry {text!r}: set {key} with FAMILY:ARCH, not as '
                             f'{item!r}')
        cfg[key] = _parse_value(value)
    return ':'.join([family, arch] + overrides), cfg


def build_backbone(cfg: Dict):
    """The backbone of ``cfg``, built through mmmamba's registry (the worker's own call)."""
    from mmmamba.registry import MODELS
    return MODELS.build(dict(cfg))


def worker(spec: Dict) -> Dict:
    """Measure one (model, size) in this process; times in s, peaks in bytes."""
    import torch

    if spec['threads']:
        torch.set_num_threads(spec['threads'])
    device = torch.device(spec['device'])
    torch.manual_seed(0)
    model = build_backbone(spec['cfg'])
    model.init_weights()
    model.to(device)
    gen = torch.Generator().manual_seed(0)

    def image(size: int):
        return torch.randn(spec['batch'], 3, size, size, generator=gen).to(device)

    def outputs(x) -> Sequence:
        out = model(x)
        return out if isinstance(out, (tuple, list)) else (out, )

    def forward(x):
        model.train(False)
        return outputs(x)

    def forward_backward(x):
        model.train(True)
        model.zero_grad(set_to_none=True)
        sum(out.sum() for out in outputs(x)).backward()

    forward_backward(image(min(WARMUP_SIZE, spec['size'])))
    model.zero_grad(set_to_none=True)  # the measured call allocates the gradients itself
    x = image(spec['size'])
    if spec['measure'] == 'memory':
        peak_fwd_bwd = measure_peak(lambda: forward_backward(x), device)
        with torch.no_grad():
            peak_fwd = measure_peak(lambda: forward(x), device)
        return dict(peak_fwd=peak_fwd, peak_fwd_bwd=peak_fwd_bwd)
    return time_forward_backward(lambda: forward(x), lambda: forward_backward(x), spec['repeat'],
                                 device, budget_s=spec['budget'])


def run_case(spec: Dict) -> Optional[Dict]:
    """Memory and time of one (model, size), each in a fresh interpreter; ``None`` on failure."""
    result = {}
    for measure in ('memory', 'time'):
        res, error = run_worker(__file__, spec, measure)
        if res is None:
            print(f'  ! {spec["label"]} at {spec["size"]} ({measure}) failed:\n{error}', flush=True)
            return None
        result.update(res)
    return result


def _ratio(value: float, reference: float) -> str:
    return f'{value / reference:.2f}' if reference > 0 else '-'


def print_table(labels: List[str], sizes: List[int], batch: int, params: Dict[str, int],
                results: Dict[Tuple[str, int], Dict]) -> None:
    """The comparison at each size and the growth with size (see the module docstring)."""
    width = max(len('model'), *(len(label) for label in labels))
    header = (f'{"model":{width}s} {"params":>7s} {"size":>5s} {"fwd ms":>10s} '
              f'{"fwd+bwd ms":>11s} {"fwd MiB":>9s} {"fwd+bwd MiB":>11s} {"runs":>5s} '
              f'{"fwd x":>6s} {"fwd+bwd x":>9s} {"mem x":>6s}')
    print('\n' + header + '\n' + '-' * len(header))
    first = labels[0]
    for size in sizes:
        ref = results.get((first, size))
        for label in labels:
            res = results.get((label, size))
            if res is None:
                continue
            ratios = ['-', '-', '-']
            if ref is not None:
                ratios = [_ratio(res['fwd'], ref['fwd']), _ratio(res['fwd_bwd'], ref['fwd_bwd']),
                          _ratio(res['peak_fwd_bwd'], ref['peak_fwd_bwd'])]
            runs = f'{res["fwd_runs"]}/{res["fwd_bwd_runs"]}'
            print(f'{label:{width}s} {params[label] / 1e6:6.2f}M {size:5d} '
                  f'{res["fwd"] * 1e3:10.2f} {res["fwd_bwd"] * 1e3:11.2f} '
                  f'{res["peak_fwd"] / 2**20:9.1f} {res["peak_fwd_bwd"] / 2**20:11.1f} '
                  f'{runs:>5s} {ratios[0]:>6s} {ratios[1]:>9s} {ratios[2]:>6s}')
    print(f'batch {batch}; x: value / value of {first} at the same size; mem: fwd+bwd peak; '
          'runs: timed fwd/fwd+bwd runs (the best is shown)')

    header = (f'{"model":{width}s} {"sizes":>11s} {"pixels x":>8s} {"fwd x":>6s} '
              f'{"fwd+bwd x":>9s} {"mem x":>6s}')
    print('\ngrowth with input size (value at the larger size / value at the smaller):')
    print(header + '\n' + '-' * len(header))
    for label in labels:
        for small, large in zip(sizes, sizes[1:]):
            a, b = results.get((label, small)), results.get((label, large))
            if a is None or b is None:
                continue
            print(f'{label:{width}s} {f"{small}->{large}":>11s} {(large / small)**2:8.2f} '
                  f'{_ratio(b["fwd"], a["fwd"]):>6s} {_ratio(b["fwd_bwd"], a["fwd_bwd"]):>9s} '
                  f'{_ratio(b["peak_fwd_bwd"], a["peak_fwd_bwd"]):>6s}')


def _cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='model format: ' + SPEC_FORMAT)
    parser.add_argument('--models', nargs='+', metavar='FAMILY:ARCH[:KEY=VALUE...]',
                        help='backbones to compare; ratios are relative to the first. Default '
                        'with --quick: every registered family')
    parser.add_argument('--sizes', nargs='+', type=int, metavar='S',
                        help=f'square input sizes (default {DEFAULT_SIZES}, --quick {QUICK_SIZES})')
    parser.add_argument('--batch', type=int, default=1, help='images per batch (default 1)')
    parser.add_argument('--quick', action='store_true',
                        help=f"smoke run: arch '{QUICK_ARCH}' for every model, small "
                        'sizes, one run')
    parser.add_argument('--device', default='cuda' if _cuda_available() else 'cpu')
    parser.add_argument('--repeat', type=int, default=3, help='runs per timing (best is kept)')
    parser.add_argument('--budget', type=float, default=60.,
                        help='stop repeating a timing once its runs took this many seconds')
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: default)')
    parser.add_argument('--json', help='also write the results to this file')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    if args.models is None:
        if not args.quick:
            parser.error(f'--models is required: one or more {SPEC_FORMAT}')
        args.models = [f'{family}:{QUICK_ARCH}' for family in sorted(backbone_families())]
    sizes = args.sizes or list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    for name, value in (('--sizes', min(sizes)), ('--batch', args.batch),
                        ('--repeat', args.repeat)):
        if value < 1:
            parser.error(f'{name} must be at least 1, got {value}')
    repeat = 1 if args.quick else args.repeat

    labels, cfgs, params = [], {}, {}
    for text in args.models:
        try:
            label, cfg = parse_model_spec(text, QUICK_ARCH if args.quick else None)
            # built here once so that a bad arch or keyword fails before any measurement
            params[label] = sum(p.numel() for p in build_backbone(cfg).parameters())
        except (ValueError, TypeError, KeyError) as err:
            parser.error(f'--models {text!r}: {err}')
        if label in cfgs:
            parser.error(f'--models names {label!r} twice')
        labels.append(label)
        cfgs[label] = cfg

    print(environment_line(args.device, args.threads), flush=True)
    results = {}
    for size in sizes:
        for label in labels:
            spec = dict(label=label, cfg=cfgs[label], size=size, batch=args.batch,
                        device=args.device, repeat=repeat, budget=args.budget,
                        threads=args.threads)
            start = time.perf_counter()
            res = run_case(spec)
            if res is None:
                continue
            res.update(cfg=cfgs[label], size=size, batch=args.batch, params=params[label])
            results[(label, size)] = res
            print(f'  {label} {size}: fwd {res["fwd"] * 1e3:.2f} ms, fwd+bwd '
                  f'{res["fwd_bwd"] * 1e3:.2f} ms, peak fwd+bwd {res["peak_fwd_bwd"] / 2**20:.1f} '
                  f'MiB ({time.perf_counter() - start:.0f} s)', flush=True)

    if results:
        print_table(labels, sizes, args.batch, params, results)
    print(f'load average at the end: {load_average()} (other processes on the machine skew '
          'timings)')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({f'{label}@{size}': res for (label, size), res in results.items()}, f,
                      indent=1)
    failed = len(labels) * len(sizes) - len(results)
    if failed:
        print(f'{failed} of {len(labels) * len(sizes)} measurements failed (see above)')
    return 1 if failed else 0


if __name__ == '__main__':
    raise SystemExit(main())
