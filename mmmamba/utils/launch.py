"""Make a GPU-oriented config runnable on the machine at hand (used by ``tools/train.py``).

The shipped configs target 4 GPUs with FP16 and NCCL. On a machine without CUDA,
:func:`adapt_to_device` changes only what cannot work there, and says so:

- AMP (``AmpOptimWrapper``) needs CUDA: training falls back to fp32 ``OptimWrapper``;
- distributed runs use the ``gloo`` backend, and DDP wraps the CPU model without ``device_ids``
  (mmengine would otherwise call ``torch.cuda.set_device`` and pass a CUDA device id).
"""
import os
from typing import List

import torch
import torch.distributed as dist
from mmengine.config import Config


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
