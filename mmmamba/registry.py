"""Registries of mmmamba, children of mmengine's root registries.

Because each registry is a child of the root with the scope ``mmmamba``, a config run under any
default scope (``mmdet``, ``mmseg``, ``mmpretrain``) can name our modules with the scope prefix,
e.g. ``backbone=dict(type='mmmamba.MambaOut', arch='tiny')``.
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='mmmamba', locations=['mmmamba.models'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='mmmamba', locations=['mmmamba.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    scope='mmmamba',
    locations=['mmmamba.engine'])
METRICS = Registry(
    'metric', parent=MMENGINE_METRICS, scope='mmmamba', locations=['mmmamba.analysis'])
