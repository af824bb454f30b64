"""Benchmark backbones: forward and forward+backward time and peak memory, side by side.

Every model named with ``--models`` is built through mmmamba's ``MODELS`` registry, e.g.
``vmamba:tiny:channel_first=True`` builds ``dict(type='mmmamba.VMamba', arch='tiny',
out_indices=(0, 1, 2, 3), channel_first=True)``: ``FAMILY:ARCH`` followed by any number of
``:KEY=VALUE`` keyword arguments of the backbone (values are Python literals, anything else is
a string; ``out_indices`` may be overridden too). Vim and MambaReg default to
``out_type='featmap', out_indices=(-1,)``, their dense output (the last layer's patch tokens
as a map); the hierarchical families to all four stages. The benchmarked output is what the
backbone's ``forward`` returns.

``timm:NAME[:KEY=VALUE...]`` names a timm model instead, e.g. ``timm:vit_small_patch16_224``
or ``timm:vit_small_patch16_224:depth=24``, built by ``timm.create_model(NAME,
pretrained=False, num_classes=0, dynamic_img_size=True, **overrides)`` (the last so that a
ViT runs at any input size, its position embedding resized to the grid); the benchmarked
output is its ``forward_features`` (for a ViT the normed token sequence, class token included).
Its weights are timm's initialisation at construction, seed 0.

For every input size (``--sizes``, square, batch ``--batch``) and model, fresh Python
processes measure, as ``tools/analysis_tools/benchmark_scan.py`` does (see
:mod:`mmmamba.utils.benchmark`):

- **peak memory** of the first forward+backward (train mode) in the process and then of a
  forward (eval mode, ``torch.no_grad()``): peak resident set size above the one before the
  call on CPU, ``torch.cuda.max_memory_allocated`` on CUDA. The backward includes allocating
  the parameters' gradients, as a training step with ``zero_grad(set_to_none=True)`` does;
- **time**: the best of ``--repeat`` runs of a forward (eval mode, ``torch.no_grad()``) and of
  a forward+backward (train mode; backward of the sum of all outputs) after one untimed
  forward+backward at that size, as wall time (``ms`` columns) and as CPU time of the timed
  process (``cpu ms`` columns: ``time.process_time``, all its threads, best of the same runs).
  On a loaded machine the wall time includes waiting for a core and the CPU time does not:
  compare CPU times there. A timing stops repeating once its runs took ``--budget`` seconds
  of wall time together (the ``runs`` column says how many were made).

Before that, each process runs one forward+backward at a small size to load the code paths.
The table gives, at each size, every model's wall time, CPU time and memory relative to the
**first** model named (``x`` columns: value / value of the first model; ``cpu`` ones on CPU
time); then, for each model, the growth of each from each size to the next (value at the
larger size / value at the smaller) next to the growth in pixels. Initialisation is the
model's own (``init_weights()``; timm's at construction), seed 0.

Examples::

    python tools/analysis_tools/benchmark.py --models mambaout:tiny vmamba:tiny vmamba:vanilla-tiny
    OMP_NUM_THREADS=1 python tools/analysis_tools/benchmark.py --threads 1 \\
        --models mambaout:tiny vmamba:tiny vmamba:tiny:channel_first=True --sizes 224 512 1024
    python tools/analysis_tools/benchmark.py --quick --models mambaout:tiny vmamba:tiny

    OMP_NUM_THREADS=1 python tools/analysis_tools/benchmark.py --threads 1 --models vim:small \\
        timm:vit_small_patch16_224:depth=24 mambareg:small --sizes 224 512 1024

``--quick`` is a smoke run of the same command: every mmmamba model's arch becomes the
test-only ``'atto'`` (a timm model keeps its name: pick a small one, or shrink it with
overrides such as ``depth=2``), the sizes default to 32 and 64, and each timing runs once.
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
# Families whose outputs are not the four stages: the isotropic Vim stack's dense output.
FAMILY_DEFAULTS = {
    'vim': dict(out_type='featmap', out_indices=(-1, )),
    'mambareg': dict(out_type='featmap', out_indices=(-1, )),
}
TIMM = 'timm'
# timm.create_model arguments every timm model gets (overridable with KEY=VALUE).
TIMM_DEFAULTS = dict(pretrained=False, num_classes=0, dynamic_img_size=True)
# Size of the untimed forward+backward that loads the code paths before measuring.
WARMUP_SIZE = 64
SPEC_FORMAT = ("FAMILY:ARCH[:KEY=VALUE...] or timm:NAME[:KEY=VALUE...], e.g. 'mambaout:tiny', "
               "'vmamba:tiny:channel_first=True' or 'timm:vit_small_patch16_224:depth=24'")


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
    """``'FAMILY:ARCH[:KEY=VALUE...]'`` or ``'timm:NAME[:KEY=VALUE...]'`` -> (label, config).

    ``arch``, when given, replaces the arch written in ``text`` (``--quick``) of an mmmamba
    backbone; the label is ``text`` with that replacement. A timm model keeps its name. The
    config of a timm model is ``dict(type='timm', model_name=NAME, **TIMM_DEFAULTS,
    **overrides)``, the keyword arguments of ``timm.create_model``.
    """
    parts = text.split(':')
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError(f'--models entry {text!r} is not {SPEC_FORMAT}')
    family, written_arch, overrides = parts[0], parts[1], parts[2:]
    if family.lower() == TIMM:
        import timm
        if not timm.is_model(written_arch):
            raise ValueError(f'--models entry {text!r}: timm has no model {written_arch!r}; '
                             f"timm.list_models('*{written_arch[:4]}*') lists similar names")
        cfg = dict(type=TIMM, model_name=written_arch, **TIMM_DEFAULTS)
        fixed, argument = ('type', 'model_name'), 'a keyword argument of timm.create_model'
        example = 'depth=24'
    else:
        families = backbone_families()
        if family.lower() not in families:
            raise ValueError(f'--models entry {text!r}: unknown backbone family {family!r}; '
                             f'registered families: {sorted(families)}, or timm:NAME')
        written_arch = written_arch if arch is None else arch
        cfg = dict(type=f'mmmamba.{families[family.lower()]}', arch=written_arch,
                   out_indices=DEFAULT_OUT_INDICES)
        cfg.update(FAMILY_DEFAULTS.get(family.lower(), {}))
        fixed, argument = ('type', 'arch'), 'a keyword argument of the backbone'
        example = 'channel_first=True'
    for item in overrides:
        key, sep, value = item.partition('=')
        if not sep or not key.isidentifier():
            raise ValueError(f'--models entry {text!r}: {item!r} is not KEY=VALUE ({argument}, '
                             f'e.g. {example})')
        if key in fixed:
            raise ValueError(f'--models entry {text!r}: set {key} with '
                             f'{parts[0]}:{parts[1]}, not as {item!r}')
        cfg[key] = _parse_value(value)
    return ':'.join([family, written_arch] + overrides), cfg


def build_backbone(cfg: Dict):
    """The model of ``cfg`` (the worker's own call): an mmmamba backbone through mmmamba's
    registry, or a timm model through ``timm.create_model``."""
    if cfg['type'] == TIMM:
        import timm
        kwargs = dict(cfg)
        del kwargs['type']
        return timm.create_model(**kwargs)
    from mmmamba.registry import MODELS
    return MODELS.build(dict(cfg))


def model_outputs(model, cfg: Dict, x) -> Tuple:
    """The benchmarked outputs of ``model`` for ``x`` as a tuple: ``forward_features`` of a
    timm model, ``forward`` of an mmmamba backbone."""
    out = model.forward_features(x) if cfg['type'] == TIMM else model(x)
    return tuple(out) if isinstance(out, (tuple, list)) else (out, )


def worker(spec: Dict) -> Dict:
    """Measure one (model, size) in this process; times in s, peaks in bytes."""
    import torch

    if spec['threads']:
        torch.set_num_threads(spec['threads'])
    device = torch.device(spec['device'])
    torch.manual_seed(0)
    model = build_backbone(spec['cfg'])
    if spec['cfg']['type'] != TIMM:  # timm initialises at construction
        model.init_weights()
    model.to(device)
    gen = torch.Generator().manual_seed(0)

    def image(size: int):
        return torch.randn(spec['batch'], 3, size, size, generator=gen).to(device)

    def outputs(x) -> Sequence:
        return model_outputs(model, spec['cfg'], x)

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


# (header, result key, scale, format) of the value columns of the comparison table
VALUE_COLUMNS = (('fwd ms', 'fwd', 1e3, '.2f'), ('fwd+bwd ms', 'fwd_bwd', 1e3, '.2f'),
                 ('fwd cpu ms', 'fwd_cpu', 1e3, '.2f'),
                 ('fwd+bwd cpu ms', 'fwd_bwd_cpu', 1e3, '.2f'),
                 ('fwd MiB', 'peak_fwd', 2**-20, '.1f'),
                 ('fwd+bwd MiB', 'peak_fwd_bwd', 2**-20, '.1f'))
# (header, result key) of the ratio columns, in both tables
RATIO_COLUMNS = (('fwd x', 'fwd'), ('fwd+bwd x', 'fwd_bwd'), ('cpu fwd x', 'fwd_cpu'),
                 ('cpu fwd+bwd x', 'fwd_bwd_cpu'), ('mem x', 'peak_fwd_bwd'))


def _row(cells: Sequence[Tuple[str, str]]) -> str:
    """Cells right-aligned under their headers (each column as wide as its header)."""
    return ' '.join(f'{text:>{len(header)}s}' for header, text in cells)


def print_table(labels: List[str], sizes: List[int], batch: int, params: Dict[str, int],
                results: Dict[Tuple[str, int], Dict]) -> None:
    """The comparison at each size and the growth with size (see the module docstring)."""
    width = max(len('model'), *(len(label) for label in labels))
    value_heads = [head if len(head) >= 9 else f'{head:>9s}' for head, *_ in VALUE_COLUMNS]
    ratio_heads = [head if len(head) >= 6 else f'{head:>6s}' for head, _ in RATIO_COLUMNS]
    header = ' '.join([f'{"model":{width}s}', f'{"params":>7s}', f'{"size":>5s}', *value_heads,
                       f'{"runs":>5s}', *ratio_heads])
    print('\n' + header + '\n' + '-' * len(header))
    first = labels[0]
    for size in sizes:
        ref = results.get((first, size))
        for label in labels:
            res = results.get((label, size))
            if res is None:
                continue
            values = [(head, format(res[key] * scale, fmt))
                      for head, (_, key, scale, fmt) in zip(value_heads, VALUE_COLUMNS)]
            ratios = [(head, '-' if ref is None else _ratio(res[key], ref[key]))
                      for head, (_, key) in zip(ratio_heads, RATIO_COLUMNS)]
            runs = f'{res["fwd_runs"]}/{res["fwd_bwd_runs"]}'
            print(f'{label:{width}s} {params[label] / 1e6:6.2f}M {size:5d} '
                  f'{_row(values)} {runs:>5s} {_row(ratios)}')
    print(f'batch {batch}; x: value / value of {first} at the same size (cpu: on CPU time); '
          'mem: fwd+bwd peak; runs: timed fwd/fwd+bwd runs (the best wall and the best CPU '
          'time are shown)')

    header = ' '.join([f'{"model":{width}s}', f'{"sizes":>11s}', f'{"pixels x":>8s}',
                       *ratio_heads])
    print('\ngrowth with input size (value at the larger size / value at the smaller):')
    print(header + '\n' + '-' * len(header))
    for label in labels:
        for small, large in zip(sizes, sizes[1:]):
            a, b = results.get((label, small)), results.get((label, large))
            if a is None or b is None:
                continue
            ratios = [(head, _ratio(b[key], a[key]))
                      for head, (_, key) in zip(ratio_heads, RATIO_COLUMNS)]
            print(f'{label:{width}s} {f"{small}->{large}":>11s} {(large / small)**2:8.2f} '
                  f'{_row(ratios)}')


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
            print(f'  {label} {size}: fwd {res["fwd"] * 1e3:.2f} ms (cpu '
                  f'{res["fwd_cpu"] * 1e3:.2f}), fwd+bwd {res["fwd_bwd"] * 1e3:.2f} ms (cpu '
                  f'{res["fwd_bwd_cpu"] * 1e3:.2f}), peak fwd+bwd '
                  f'{res["peak_fwd_bwd"] / 2**20:.1f} MiB ({time.perf_counter() - start:.0f} s)',
                  flush=True)

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
