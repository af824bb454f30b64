"""Evaluate a checkpoint with an mmmamba config: mmdet, mmseg and mmpretrain configs alike.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR] [--out results.pkl]
    bash tools/dist_test.sh CONFIG CHECKPOINT 4
"""
import argparse
import json
import logging
import math
import os
import os.path as osp
from typing import Any

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.evaluator import DumpResults
from mmengine.logging import print_log

from mmmamba.utils.launch import build_runner, load_config, shutdown_distributed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a checkpoint with an mmmamba config')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', help='dump the raw predictions to this pickle file')
    parser.add_argument(
        '--show-dir',
        help='save the painted predictions here, relative to the work_dir (det: work_dir/timestamp)')
    parser.add_argument('--show', action='store_true', help='show predictions in a window')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds between shown images')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='override settings of the config')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def enable_visualization(cfg: Config, args: argparse.Namespace) -> None:
    """Turn the config's visualization hook on, the way each task library's own test.py does."""
    hook = cfg.default_hooks.get('visualization', None)
    if hook is None:
        raise RuntimeError('--show/--show-dir need a `visualization` hook in `default_hooks`')
    hook.draw = True
    if args.show:
        hook.show = True
        hook.wait_time = args.wait_time
    if args.show_dir:
        scope = cfg.get('default_scope', None)
        if scope == 'mmdet':
            hook.test_out_dir = args.show_dir
        elif scope == 'mmpretrain':
            hook.out_dir = args.show_dir
        else:  # mmseg's hook writes through the visualizer; keep the pictures in the work_dir
            hook.interval = 1
            cfg.visualizer.save_dir = osp.join(cfg.work_dir, args.show_dir)


def metric_to_json(value: Any, name: str) -> Any:
    """A metric value as JSON data, whatever its shape.

    Scalars stay numbers; numpy arrays and torch tensors (per-class precision, confusion
    matrices) become nested lists; dicts, lists and tuples keep their structure. NaN and
    infinities (a class absent from the test set) become ``null``, so the file is strict JSON.
    Anything else is written as its ``str()``, with a warning naming the metric.
    """
    if isinstance(value, (np.ndarray, torch.Tensor)):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dict):
        return {str(k): metric_to_json(v, f'{name}.{k}') for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [metric_to_json(v, f'{name}[{i}]') for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    print_log(f'metric {name} is a {type(value).__name__}, not a number, array or table; '
              'test_metrics.json holds its str()', logger='current', level=logging.WARNING)
    return str(value)


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.launcher, args.cfg_options, args.work_dir)
    if not osp.isfile(args.checkpoint) and '://' not in args.checkpoint:
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        enable_visualization(cfg, args)
    runner = build_runner(cfg)
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl or .pickle file, got {args.out}')
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    metrics = runner.test()
    if runner.rank == 0:
        # Machine-readable copy of every final metric, tables included (read by tools/demo.py).
        with open(osp.join(cfg.work_dir, 'test_metrics.json'), 'w') as f:
            json.dump({k: metric_to_json(v, k) for k, v in metrics.items()}, f, indent=2,
                      allow_nan=False)
    shutdown_distributed()


if __name__ == '__main__':
    main()
