"""Compatibility fixes for the pinned OpenMMLab stack on recent torch, applied on ``import mmmamba``.

torch >= 2.6 loads checkpoints with ``weights_only=True`` by default. mmengine 0.10.7 writes
numpy arrays and scalars (the message hub's ``HistoryBuffer`` of logged scalars, the random seed)
into a checkpoint's ``meta`` and ``message_hub``, so ``--resume`` of a checkpoint that mmengine
itself wrote fails with "Weights only load failed".

Instead of switching weights-only loading off (which would let any downloaded checkpoint run
code), :func:`allow_mmengine_checkpoint_types` adds exactly the types mmengine writes to torch's
allow-list of safe globals. Every other global still makes ``torch.load`` refuse the file.
Call :func:`mmengine_checkpoint_safe_globals` to see the list.

One entry needs care: a ``HistoryBuffer`` pickles its statistics functions
(``HistoryBuffer.min`` ...), which protocol 2 writes as ``getattr(HistoryBuffer, 'min')``.
Allowing the real ``getattr`` would let a crafted file reach arbitrary attributes (and from
there ``eval``), so the allow-list gets :func:`history_buffer_getattr` under that name instead:
it resolves only attributes of ``HistoryBuffer`` that are its registered statistics methods.
"""
import pickle
from typing import Any, List

import numpy as np
import torch


def _numpy_reconstruct_globals() -> list:
    """numpy's pickle helpers; their module moved from ``numpy.core`` to ``numpy._core`` in 2.0."""
    multiarray = getattr(getattr(np, '_core', None), 'multiarray', None)
    if multiarray is None or not hasattr(multiarray, '_reconstruct'):
        multiarray = np.core.multiarray
    return [multiarray._reconstruct, multiarray.scalar]


def history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to the statistics methods of mmengine's ``HistoryBuffer``."""
    from mmengine.logging import HistoryBuffer

    if obj is HistoryBuffer and isinstance(name, str) and name in _history_buffer_methods():
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'weights-only load refused getattr({obj!r}, {name!r}): only the statistics methods of '
        'mmengine.logging.HistoryBuffer are allowed')


def _history_buffer_methods() -> set:
    from mmengine.logging import HistoryBuffer

    names = {'min', 'max', 'current', 'mean'}
    names.update(HistoryBuffer._statistics_methods)
    return {n for n in names if callable(getattr(HistoryBuffer, n, None))}


def mmengine_checkpoint_safe_globals() -> List[object]:
    """The globals an mmengine checkpoint needs besides tensors and builtins."""
    from mmengine.logging import HistoryBuffer

    dtype_classes = [type(np.dtype(name)) for name in (
        'bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64',
        'float16', 'float32', 'float64')]
    return [
        np.ndarray, np.dtype, *dtype_classes, *_numpy_reconstruct_globals(), HistoryBuffer,
        (history_buffer_getattr, 'builtins.getattr')
    ]


def allow_mmengine_checkpoint_types() -> None:
    """Allow-list the types of :func:`mmengine_checkpoint_safe_globals` for ``torch.load``."""
    if hasattr(torch.serialization, 'add_safe_globals'):  # torch >= 2.4
        torch.serialization.add_safe_globals(mmengine_checkpoint_safe_globals())


allow_mmengine_checkpoint_types()
