"""Stop a run early, with one clear message, when its data, class count or checkpoint is wrong.

Without these checks an OpenMMLab run fails late or not at all: a missing image or label map
surfaces from a data-loader worker after the model has been initialised, a head with the wrong
``num_classes`` trains on, and a ``load_from`` checkpoint of another model only makes mmengine
log a warning about mismatched keys before it goes on with random weights.

Add the hook to a config under any default scope::

    custom_hooks = [dict(type='mmmamba.InputCheckHook')]

Everything is checked in ``before_run``: ``Runner.train()``, ``val()`` and ``test()`` build their
loops (so their datasets and evaluators) before they call it, and initialise or load the weights
after it. Datasets whose files or annotation file are missing already stop while they are
built, with a ``FileNotFoundError`` naming the path; the hook catches what they let through.

mmengine internals: ``load_from`` is read from the public ``runner.cfg``. Two facts have no
public API: which of the runner's loops are built (the ``runner.train_loop`` property would build
an unbuilt one, datasets included; mmengine's own ``ParamSchedulerHook`` reads
``Runner._train_loop`` for that reason) and whether a ``lazy_init=True`` dataset has read its
annotation file (``len()`` would read it). The hook reads them from the attributes named in
:data:`RUNNER_LOOP_ATTRIBUTE` and :data:`DATASET_INITIALISED_ATTRIBUTE`; if an mmengine release
renames one, the check that needs it is skipped with a warning naming the attribute, and the run
goes on.
"""
import logging
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import mmengine
from mmengine.dataset import BaseDataset
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop
from torch import nn

from mmmamba.registry import HOOKS
from mmmamba.utils.checkpoint import compare_state_dicts, read_state_dict

#: Modules whose ``num_classes`` must equal the dataset's class count: the classification heads
#: of mmdet (``bbox_head``, ``mask_head``; not the class-agnostic ``rpn_head``), mmseg
#: (``decode_head``, ``auxiliary_head``) and mmpretrain (``head``, and the data preprocessor that
#: one-hot encodes labels for Mixup/CutMix).
DEFAULT_CLASS_MODULES = ('head', 'bbox_head', 'mask_head', 'decode_head', 'auxiliary_head',
                         'data_preprocessor')
#: Keys of a dataset's data info that hold a file the pipeline reads.
DEFAULT_PATH_KEYS = ('img_path', 'seg_map_path')
#: mmengine's ``Runner`` attribute holding a loop, or its config while the loop is unbuilt.
RUNNER_LOOP_ATTRIBUTE = '_{split}_loop'
#: mmengine's ``BaseDataset`` attribute that is False until a lazy dataset has read its data list.
DATASET_INITIALISED_ATTRIBUTE = '_fully_initialized'
_MISSING = object()


def _internal(owner, attribute: str, skipped: str):
    """``owner.attribute``, an mmengine internal; when it does not exist, log a warning that
    ``skipped`` is skipped and return None."""
    value = getattr(owner, attribute, _MISSING)
    if value is _MISSING:
        print_log(f'InputCheckHook: {skipped} skipped: {type(owner).__name__} has no attribute '
                  f'{attribute!r} in this mmengine ({mmengine.__version__}).', logger='current',
                  level=logging.WARNING)
        return None
    return value


def _is_local(path: str) -> bool:
    return '://' not in path


def _listing(items: Sequence[str], max_listed: int) -> str:
    """``a, b, c`` or ``a, b, c, ... (12 more)``."""
    shown = ', '.join(str(item) for item in items[:max_listed])
    more = len(items) - max_listed
    return f'{shown}, ... ({more} more)' if more > 0 else shown


def leaf_datasets(dataset) -> Iterator:
    """The datasets inside dataset wrappers (Concat, Repeat, ClassBalanced, MultiImageMix)."""
    if isinstance(getattr(dataset, 'datasets', None), (list, tuple)):
        for child in dataset.datasets:
            yield from leaf_datasets(child)
    elif getattr(dataset, 'dataset', None) is not None:
        yield from leaf_datasets(dataset.dataset)
    else:
        yield dataset


def describe_dataset(dataset, split: str) -> str:
    """``the train dataset (CocoDataset, ann_file /data/coco/annotations/x.json)``."""
    source = getattr(dataset, 'ann_file', None) or getattr(dataset, 'data_root', None)
    label = 'ann_file' if getattr(dataset, 'ann_file', None) else 'data_root'
    where = f', {label} {source}' if source else ''
    return f'the {split} dataset ({type(dataset).__name__}{where})'


def check_dataset_files(dataset, split: str = 'train',
                        path_keys: Sequence[str] = DEFAULT_PATH_KEYS,
                        max_listed: int = 5) -> int:
    """Check that a dataset's root, annotation file and every file it reads exist.

    Files are checked by listing each folder once (no image is opened); reading the data
    list back takes most of the time, a few seconds for COCO train2017. Remote paths
    (``s3://...``) are skipped.

    Args:
        dataset: A dataset, possibly wrapped (leaves that are not an mmengine
            ``BaseDataset`` are skipped).
        split (str): Name used in the message ('train', 'val', 'test'). Defaults to 'train'.
        path_keys (Sequence[str]): Data-info keys holding file paths.
            Defaults to ``('img_path', 'seg_map_path')``.
        max_listed (int): How many missing files to name. Defaults to 5.

    Returns:
        int: The number of files checked.

    Raises:
        FileNotFoundError: Naming the missing data root, annotation file, folder or files.
    """
    num_checked = 0
    for leaf in leaf_datasets(dataset):
        if not isinstance(leaf, BaseDataset):
            continue
        where = describe_dataset(leaf, split)
        data_root = getattr(leaf, 'data_root', None)
        if data_root and _is_local(data_root) and not osp.isdir(data_root):
            raise FileNotFoundError(f'data_root {data_root} of {where} does not exist')
        ann_file = getattr(leaf, 'ann_file', None)
        if ann_file and _is_local(ann_file) and not osp.isfile(ann_file):
            raise FileNotFoundError(f'ann_file {ann_file} of {where} does not exist')
        initialised = _internal(leaf, DATASET_INITIALISED_ATTRIBUTE,
                                f'the image and label-map check of {where}')
        if not initialised:  # lazy_init=True: its data list is not loaded yet
            continue
        # folder -> {key: [file names]} for every file the pipeline will read
        wanted: Dict[str, Dict[str, List[str]]] = defaultdict(lambda: defaultdict(list))
        for index in range(len(leaf)):
            info = leaf.get_data_info(index)
            for key in path_keys:
                path = info.get(key)
                if isinstance(path, str) and path and _is_local(path):
                    folder, name = osp.split(path)
                    wanted[folder][key].append(name)
        missing_folders: List[str] = []
        missing_files: Dict[str, List[str]] = defaultdict(list)
        num_files_by_key: Dict[str, int] = defaultdict(int)
        for folder, names_by_key in wanted.items():
            num_files = sum(len(names) for names in names_by_key.values())
            num_checked += num_files
            if not osp.isdir(folder or '.'):
                keys = '/'.join(sorted(names_by_key))
                missing_folders.append(f'{folder} ({num_files} {keys} files expected there)')
                continue
            present = set(os.listdir(folder or '.'))
            for key, names in names_by_key.items():
                num_files_by_key[key] += len(names)
                missing_files[key].extend(
                    osp.join(folder, name) for name in names if name not in present)
        if missing_folders:
            raise FileNotFoundError(
                f'{where} reads files from folders that do not exist: '
                f'{_listing(missing_folders, max_listed)}')
        problems = [
            f'{len(paths)} of {num_files_by_key[key]} {key} files are missing: '
            f'{_listing(paths, max_listed)}'
            for key, paths in missing_files.items() if paths
        ]
        if problems:
            raise FileNotFoundError(f'{where} references files that do not exist: '
                                    + '; '.join(problems))
    return num_checked


def _config_key(module_name: str) -> str:
    """``roi_head.bbox_head.0`` -> ``model.roi_head.bbox_head[0]``."""
    key = 'model'
    for part in module_name.split('.'):
        key += f'[{part}]' if part.isdigit() else f'.{part}'
    return key


def class_count_modules(model: nn.Module,
                        module_names: Sequence[str] = DEFAULT_CLASS_MODULES
                        ) -> List[Tuple[str, int]]:
    """``(config key, num_classes)`` of the modules that classify into the dataset's classes.

    A module counts when the last non-index part of its name is in ``module_names``, so
    ``roi_head.bbox_head``, ``roi_head.bbox_head.1`` (Cascade R-CNN) and ``auxiliary_head.0``
    do and ``rpn_head`` does not.
    """
    found = []
    for name, module in model.named_modules():
        num_classes = getattr(module, 'num_classes', None)
        if not name or not isinstance(num_classes, int) or isinstance(num_classes, bool):
            continue
        parts = [part for part in name.split('.') if not part.isdigit()]
        if parts and parts[-1] in module_names:
            found.append((_config_key(name) + '.num_classes', num_classes))
    return found


def check_num_classes(model: nn.Module, dataset, split: str = 'train',
                      module_names: Sequence[str] = DEFAULT_CLASS_MODULES,
                      max_listed: int = 20) -> None:
    """Check that the model's classifying modules have as many classes as the dataset.

    Args:
        model (nn.Module): The built model (unwrapped).
        dataset: A dataset with ``metainfo['classes']``; skipped when it has none.
        split (str): Name used in the message. Defaults to 'train'.
        module_names (Sequence[str]): See :func:`class_count_modules`.
        max_listed (int): How many class names to show. Defaults to 20.

    Raises:
        ValueError: Naming each mismatching config key and the dataset's classes.
    """
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    if not classes:
        return
    wrong = [f'{key} = {value}' for key, value in class_count_modules(model, module_names)
             if value != len(classes)]
    if wrong:
        leaf = next(leaf_datasets(dataset))
        names = _listing([repr(name) for name in classes], max_listed)
        raise ValueError(
            f'{" and ".join(wrong)} in the config, but {describe_dataset(leaf, split)} has '
            f'{len(classes)} classes: {names}. Set num_classes to {len(classes)}, or give the '
            'dataset the metainfo=dict(classes=...) the model was built for.')


def check_checkpoint(model: nn.Module, filename: str, allow_partial_load: bool = False,
                     max_listed: int = 5) -> int:
    """Check that a checkpoint given as ``load_from`` holds exactly this model's weights.

    The checkpoint's weights (read by :func:`~mmmamba.utils.checkpoint.read_state_dict`, which
    strips ``module.`` as ``Runner.load_checkpoint`` does) are compared by key and shape with
    ``model.state_dict()`` (non-persistent buffers, such as a data preprocessor's mean/std, are
    in neither). Renamings that a module's own
    ``_load_from_state_dict`` applies (mmdet: single-stage ``bbox_head`` loaded as a two-stage
    ``rpn_head``, legacy anchor-free heads) are not replayed, so such old checkpoints count as
    not matching; load them with ``allow_partial_load=True`` or convert them.

    Args:
        model (nn.Module): The built model (unwrapped).
        filename (str): Path or URL of the checkpoint.
        allow_partial_load (bool): Log a warning instead of raising when keys are missing or
            unexpected or shapes differ (fine-tuning from another model); still raise when no
            tensor of the checkpoint fits. Defaults to False.
        max_listed (int): How many keys of each kind to name. Defaults to 5.

    Returns:
        int: The number of model tensors the checkpoint provides with the right shape.

    Raises:
        RuntimeError: Naming the file, the missing and unexpected keys and the keys whose
            shapes differ (with both shapes).
    """
    state_dict = read_state_dict(filename)
    model_state = model.state_dict()
    missing, unexpected, mismatched = compare_state_dicts(model_state, state_dict)
    num_fitting = len(model_state) - len(missing) - len(mismatched)
    problems = []
    if missing:
        problems.append(f'{len(missing)} of the model\'s {len(model_state)} keys are missing '
                        f'from it: {_listing(missing, max_listed)}')
    if unexpected:
        problems.append(f'{len(unexpected)} of its {len(state_dict)} keys are not in the model: '
                        f'{_listing(unexpected, max_listed)}')
    if mismatched:
        problems.append(f'{len(mismatched)} shapes differ: {_listing(mismatched, max_listed)}')
    if not problems:
        return num_fitting
    message = (f'checkpoint {filename} (load_from) does not match the model '
               f'{type(model).__name__}: ' + '; '.join(problems))
    if not allow_partial_load:
        raise RuntimeError(
            message + '. load_from must be a checkpoint of this very model; to load part of '
            'another one, use custom_hooks=[dict(type=\'mmmamba.InputCheckHook\', '
            'allow_partial_load=True)].')
    if num_fitting == 0:
        raise RuntimeError(message + '. Not one tensor of it fits, even for a partial load.')
    print_log(f'{message}. Loading it partially (allow_partial_load=True): {num_fitting} of '
              f'{len(model_state)} model tensors come from it.', logger='current',
              level=logging.WARNING)
    return num_fitting


@HOOKS.register_module()
class InputCheckHook(Hook):
    """Check data files, class counts and the ``load_from`` checkpoint before a run starts.

    In ``before_run``, for every loop the runner has built (train and val for ``train()``, val
    for ``val()``, test for ``test()``), and then for ``load_from``:

    1. each classifying head's ``num_classes`` (see :data:`DEFAULT_CLASS_MODULES`) equals the
       dataset's class count (``ValueError`` naming the config key and the classes);
    2. the dataset's ``data_root``, ``ann_file`` and every image / label map it lists exist
       (``FileNotFoundError`` naming them);
    3. the ``load_from`` checkpoint has exactly the model's keys and shapes (``RuntimeError``
       naming the file and the offending keys). An auto-resume (``resume=True`` without
       ``load_from``) is not checked: it reads the run's own last checkpoint.

    It is on in every shipped config (``custom_hooks``), because what it catches otherwise
    costs a whole run or fails late: a ``load_from`` of another model makes mmengine log one
    warning and train on from random weights, a wrong ``num_classes`` trains without error, a
    missing image stops a data-loader worker after the model is initialised. Its cost is one
    listing of each image folder and a second read of ``load_from``, and an mmengine release
    that renames an internal it reads only makes it skip that check, with a warning (see the
    module docstring). To turn it off, leave it out of ``custom_hooks``.

    Args:
        check_files (bool): Run check 2. Defaults to True.
        check_classes (bool): Run check 1. Defaults to True.
        check_checkpoint (bool): Run check 3. Defaults to True.
        allow_partial_load (bool): Only warn when ``load_from`` misses model keys, has
            unexpected ones or different shapes, e.g. when fine-tuning a COCO detector on
            other classes. Defaults to False.
        class_modules (Sequence[str]): Names of the modules whose ``num_classes`` is checked.
            Defaults to :data:`DEFAULT_CLASS_MODULES`.
        path_keys (Sequence[str]): Data-info keys holding files to check.
            Defaults to :data:`DEFAULT_PATH_KEYS`.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 check_files: bool = True,
                 check_classes: bool = True,
                 check_checkpoint: bool = True,
                 allow_partial_load: bool = False,
                 class_modules: Sequence[str] = DEFAULT_CLASS_MODULES,
                 path_keys: Sequence[str] = DEFAULT_PATH_KEYS) -> None:
        self.check_files = check_files
        self.check_classes = check_classes
        self.check_checkpoint = check_checkpoint
        self.allow_partial_load = allow_partial_load
        self.class_modules = tuple(class_modules)
        self.path_keys = tuple(path_keys)
        # what an earlier before_run (train() then test() on one runner) already checked
        self._checked_datasets: set = set()  # ids
        self._checked_checkpoints: set = set()

    @staticmethod
    def built_datasets(runner) -> List[Tuple[str, object]]:
        """``(split, dataset)`` of the loops the runner has built; unbuilt ones stay unbuilt."""
        found = []
        # The public properties (runner.train_loop ...) would build a loop given as a dict.
        for split in ('train', 'val', 'test'):
            loop = _internal(runner, RUNNER_LOOP_ATTRIBUTE.format(split=split),
                             f'the data and class checks of the {split} loop')
            if isinstance(loop, BaseLoop):
                found.append((split, loop.dataloader.dataset))
        return found

    @staticmethod
    def load_from(runner) -> Optional[str]:
        """The runner's ``load_from``: from its config, else (a runner built without one) from
        the runner itself."""
        if 'load_from' in runner.cfg:
            return runner.cfg.load_from
        return _internal(runner, '_load_from', 'the load_from check')

    def before_run(self, runner) -> None:
        """Run the checks; raise on the first kind of problem found."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        done = []
        for split, dataset in self.built_datasets(runner):
            if id(dataset) in self._checked_datasets:
                continue
            if self.check_classes:
                check_num_classes(model, dataset, split, self.class_modules)
            if self.check_files:
                num_files = check_dataset_files(dataset, split, self.path_keys)
                done.append(f'{split}: {len(dataset)} samples, {num_files} files')
            self._checked_datasets.add(id(dataset))
        load_from = self.load_from(runner) if self.check_checkpoint else None
        # a second before_run (train() then test()) finds the checkpoint checked already
        if load_from is not None and load_from not in self._checked_checkpoints:
            num_tensors = check_checkpoint(model, load_from, self.allow_partial_load)
            done.append(f'{load_from}: {num_tensors} tensors fit')
            self._checked_checkpoints.add(load_from)
        if done:
            runner.logger.info('InputCheckHook: inputs found and consistent (' +
                               '; '.join(done) + ')')
