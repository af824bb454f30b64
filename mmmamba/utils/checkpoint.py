"""Loading pretrained weights into a module, with key conversion and a clear report.

Used by the backbones' ``init_weights()`` for ``init_cfg=dict(type='Pretrained', ...)`` and by
the scripts in ``tools/model_converters/``. Unlike a plain ``load_state_dict(strict=False)``, it
never ends in a silent random initialisation: a missing file, a checkpoint none of whose keys
match the module, or a shape mismatch raises.
"""
import logging
from pathlib import Path
from collections import OrderedDict
from typing import Callable, Dict, NamedTuple, Optional, Union

import torch
import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from mmengine.runner.checkpoint import CheckpointLoader

StateDict = Dict[str, torch.Tensor]

# Sub-dicts in which training frameworks store the weights, tried in this order.
STATE_DICT_KEYS = ('state_dict', 'model', 'module')


class LoadResult(NamedTuple):
    """Keys of a :func:`load_pretrained` call.

    Attributes:
        loaded (list[str]): Module keys that received a checkpoint tensor.
        missing (list[str]): Module keys the checkpoint does not have.
        unexpected (list[str]): Checkpoint keys the module does not have.
    """
    loaded: list
    missing: list
    unexpected: list


class KeyReport(NamedTuple):
    """How a checkpoint's keys and shapes compare with a module's (see :func:`compare_state_dicts`).

    Attributes:
        missing (list[str]): Module keys the checkpoint does not have.
        unexpected (list[str]): Checkpoint keys the module does not have.
        mismatched (list[str]): ``'key: checkpoint (shape) vs model (shape)'`` for the keys in
            both whose shapes differ, in the module's key order.
    """
    missing: list
    unexpected: list
    mismatched: list


def compare_state_dicts(model_state: StateDict, state_dict: StateDict) -> KeyReport:
    """Compare a checkpoint's flat state dict with ``module.state_dict()`` by key and shape."""
    mismatched = []
    for key, tensor in model_state.items():
        value = state_dict.get(key)
        if isinstance(value, torch.Tensor) and value.shape != tensor.shape:
            mismatched.append(f'{key}: checkpoint {tuple(value.shape)} vs model '
                              f'{tuple(tensor.shape)}')
    return KeyReport(
        missing=[k for k in model_state if k not in state_dict],
        unexpected=[k for k in state_dict if k not in model_state],
        mismatched=mismatched)


def read_state_dict(checkpoint: Union[str, dict],
                    map_location: str = 'cpu',
                    logger: Optional[Union[MMLogger, str]] = None) -> StateDict:
    """Read a flat state dict from a file, URL or already-loaded checkpoint.

    Files and URLs go through mmengine's ``CheckpointLoader`` (local paths, ``http(s)://``,
    ``torchvision://``, ``open-mmlab://``, ...); a missing local file raises
    ``FileNotFoundError`` naming the path. The weights are taken from the first of the
    ``'state_dict'``, ``'model'`` or ``'module'`` entries that exists (else the dict itself), and a
    ``module.`` prefix left by (Distributed)DataParallel is removed.

    Args:
        checkpoint (str | dict): Path or URL of a checkpoint, or a loaded checkpoint.
        map_location (str): Device to load tensors to. Defaults to 'cpu'.
        logger (MMLogger | str, optional): Logger for mmengine's loader. Defaults to None.

    Returns:
        OrderedDict[str, torch.Tensor]: The flat state dict.
    """
    if isinstance(checkpoint, str):
        checkpoint = CheckpointLoader.load_checkpoint(
            checkpoint, map_location=map_location, logger=logger)
    if not isinstance(checkpoint, dict):
        raise TypeError(f'a checkpoint must hold a dict, got {type(checkpoint).__name__}')
    for key in STATE_DICT_KEYS:
        if isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    state_dict = OrderedDict()
    for key, value in checkpoint.items():
        state_dict[key[len('module.'):] if key.startswith('module.') else key] = value
    return state_dict


def load_pretrained(module: nn.Module,
                    checkpoint: Union[str, dict],
                    prefix: Optional[str] = None,
                    converter: Optional[Callable[[StateDict], StateDict]] = None,
                    map_location: str = 'cpu',
                    logger: Optional[Union[MMLogger, str]] = None) -> LoadResult:
    """Load a checkpoint into ``module``, reporting what did not match.

    Steps: :func:`read_state_dict` → ``converter`` (e.g. ``convert_mambaout``, mapping foreign
    layouts to ours) → ``prefix`` filtering with mmengine's ``Pretrained`` semantics (keep the
    keys that start with ``prefix`` and strip it; none starting with it raises) → shape check →
    ``module.load_state_dict(strict=False)``. Missing and unexpected keys are logged as
    warnings.

    Args:
        module (nn.Module): The module to load into.
        checkpoint (str | dict): Path or URL of a checkpoint, or a loaded checkpoint.
        prefix (str, optional): Load only the keys under this prefix, e.g. ``'backbone.'`` to
            load a backbone from a classifier or detector checkpoint. Defaults to None (all;
            except that a foreign release the converter turned into a classifier layout loads
            its ``backbone.`` part into a module that has none of the classifier's keys, so
            such a file loads the same with or without ``prefix='backbone.'``).
        converter (callable, optional): Maps the flat state dict to ``module``'s layout
            (returning native dicts unchanged). Error messages quote the file's own keys.
            Defaults to None.
        map_location (str): Device to load tensors to. Defaults to 'cpu'.
        logger (MMLogger | str, optional): Where to report. Defaults to None, the current
            mmengine logger.

    Returns:
        LoadResult: The loaded, missing and unexpected keys.

    Raises:
        FileNotFoundError: ``checkpoint`` is a local path that does not exist.
        KeyError: No key starts with ``prefix``, or no key matches the module.
        ValueError: A matched key has a different shape in the checkpoint and in the module.
    """
    logger = logger if logger is not None else 'current'
    source = checkpoint if isinstance(checkpoint, str) else 'the given checkpoint dict'
    file_state = read_state_dict(checkpoint, map_location=map_location, logger=logger)
    file_keys = list(file_state)
    state_dict = converter(file_state) if converter is not None else file_state
    converted = state_dict is not file_state
    own = module.state_dict()
    if converted and not prefix and not any(k in own for k in state_dict):
        # A foreign release converts to a classifier layout (``backbone.*``, ``head.*``); loaded
        # into a bare backbone it means its backbone part, as with prefix='backbone.'.
        prefix = 'backbone.'

    def describe() -> str:
        text = f'the {len(file_keys)} keys of {source} (e.g. {file_keys[:3]})'
        if converted:
            text += f', converted to (e.g.) {list(state_dict)[:3]},'
        return text

    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        state_dict = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items()
                                 if k.startswith(prefix))
        if not state_dict:
            raise KeyError(f'none of {describe()} starts with prefix {prefix!r}')

    loaded = [k for k in state_dict if k in own]
    missing, unexpected, mismatched = compare_state_dicts(own, state_dict)
    name = type(module).__name__
    if not loaded:
        hint = _prefix_hint(list(state_dict), list(own))
        raise KeyError(f'none of {describe()} matches {name} (e.g. {list(own)[:3]}) after '
                       f'prefix {prefix!r}{hint}')
    if mismatched:
        raise ValueError(f'shape mismatch loading {source} into {name}:\n  ' +
                         '\n  '.join(mismatched))

    module.load_state_dict(state_dict, strict=False)
    print_log(f'loaded {len(loaded)}/{len(own)} tensors of {name} from {source}', logger=logger)
    if missing:
        print_log(f'{name}: keys missing from {source} (left as initialised): {missing}',
                  logger=logger, level=logging.WARNING)
    if unexpected:
        print_log(f'{name}: unexpected keys in {source} (ignored): {unexpected}', logger=logger,
                  level=logging.WARNING)
    return LoadResult(loaded, missing, unexpected)


def _prefix_hint(checkpoint_keys: list, module_keys: list) -> str:
    """Suggest the prefix that would make the checkpoint keys match, if there is one."""
    module_keys = set(module_keys)
    for key in checkpoint_keys:
        parts = key.split('.')
        for i in range(1, len(parts)):
            if '.'.join(parts[i:]) in module_keys:
                return f"; did you mean prefix='{'.'.join(parts[:i])}.'?"
    return ''


def convert_checkpoint_file(src: str, dst: str,
                            converter: Callable[[StateDict], StateDict]) -> StateDict:
    """Read ``src`` (path or URL), convert it with ``converter`` and save an mmpretrain-style
    checkpoint ``{'state_dict': ..., 'meta': {'converted_from': src}}`` to ``dst``.

    Used by the scripts in ``tools/model_converters/``; prints what it did.
    """
    state_dict = read_state_dict(src)
    converted = converter(state_dict)
    if converted is state_dict:
        print(f'{src} already has mmmamba keys; saving it unchanged')
    path = Path(dst)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(state_dict=converted, meta=dict(converted_from=str(src))), path)
    print(f'saved {len(converted)} tensors to {path}')
    return converted
