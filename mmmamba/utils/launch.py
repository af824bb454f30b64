"""Config loading and runner building for ``tools/train.py`` and ``tools/test.py``.

They make a GPU-oriented config runnable on the machine at hand.

The shipped configs target 4 GPUs with FP16 and NCCL. On a machine without CUDA,
:func:`adapt_to_device` changes only what cannot work there, and says so:

- AMP (``AmpOptimWrapper``) needs CUDA: training falls back to fp32 ``OptimWrapper``;
- distributed runs use the ``gloo`` backend, and DDP wraps the CPU model without ``device_ids``
  (mmengine would otherwise call ``torch.cuda.set_device`` and pass a CUDA device id).
"""
import os
import os.path as osp
from typing import List, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner


def load_config(config: str,
                launcher: str = 'none',
                cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None) -> Config:
    """Read ``config`` the way the stock tools do: launcher, overrides, then the work_dir
    (argument > config > ``./work_dirs/<config name>``)."""
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    return cfg


def build_runner(cfg: Config) -> Runner:
    """Adapt ``cfg`` to the machine (logging what changed), then build its runner."""
    for note in adapt_to_device(cfg):
        print_log(note, logger='current')
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)


def shutdown_distributed() -> None:
    """Wait for every rank, then destroy the default process group (no-op when not distributed).

    Called by ``tools/train.py`` and ``tools/test.py`` when the run has finished.
    Leaving the group to interpreter exit lets a rank tear down its gloo
    connections while a peer is still finishing; in the 2-process CPU tests
    that showed up as an occasional ``terminate called without an active
    exception`` (SIGABRT) after training had completed.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def adapt_to_device(cfg: Config) -> List[str]:
    """Adapt ``cfg`` in place for a machine without CUDA; return the notes to log."""
    notes: List[str] = []
    if torch.cuda.is_available():
        return notes

    optim_wrapper = cfg.get('optim_wrapper', None)
    if optim_wrapper is not None and optim_wrapper.get('type') == 'AmpOptimWrapper':
        optim_wrapper.type = 'OptimWrapper'
        for key in ('loss_scale', 'dtype', 'use_fsdp'):
            optim_wrapper.pop(key, None)
        notes.append('No CUDA device: AmpOptimWrapper needs CUDA, training in fp32 with '
                     'OptimWrapper instead.')

    if cfg.get('launcher', 'none') == 'pytorch':
        if not dist.is_initialized():
            # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT.
            dist.init_process_group(backend='gloo')
        find_unused = cfg.get('find_unused_parameters', False)
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=find_unused)
        notes.append(f'No CUDA device: distributed training on CPU with the gloo backend '
                     f'(rank {os.environ.get("RANK")} of {os.environ.get("WORLD_SIZE")}).')
    return notes
