"""mmmamba's registries: children of mmengine's roots, reachable as ``mmmamba.X`` from a config
run under any default scope, and holding only mmmamba's own modules."""
import ast
import inspect
from pathlib import Path

import pytest
from mmengine.registry import DefaultScope

import mmmamba  # noqa: F401  (registers every module)
from mmmamba.models.backbones.mambaout import MambaOut
from mmmamba.registry import HOOKS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS


@pytest.mark.parametrize('scope, registry_module', [
    ('mmdet', 'mmdet.registry'),
    ('mmseg', 'mmseg.registry'),
    ('mmpretrain', 'mmpretrain.registry'),
])
def test_scoped_type_builds_under_any_default_scope(scope, registry_module):
    registry = __import__(registry_module, fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(dict(type='mmmamba.MambaOut', arch='atto', out_indices=(1, )))
    assert type(model) is MambaOut and model.out_indices == (1, )


def test_registries_are_children_of_mmengine_roots():
    from mmengine import registry as roots
    for ours, root in ((MODELS, roots.MODELS), (HOOKS, roots.HOOKS),
                       (OPTIM_WRAPPER_CONSTRUCTORS, roots.OPTIM_WRAPPER_CONSTRUCTORS)):
        assert ours.parent is root and root.children['mmmamba'] is ours


@pytest.mark.parametrize('registry', [MODELS, HOOKS, OPTIM_WRAPPER_CONSTRUCTORS],
                         ids=['MODELS', 'HOOKS', 'OPTIM_WRAPPER_CONSTRUCTORS'])
def test_registries_hold_only_mmmamba_modules(registry):
    """Nothing else (a test's probe class, say) is registered in them: it would leak into every
    later test and shadow or add names users see."""
    foreign = {name: inspect.getmodule(cls).__name__ for name, cls in registry.module_dict.items()
               if not inspect.getmodule(cls).__name__.startswith('mmmamba.')}
    assert not foreign, f'registered in mmmamba.registry.{registry.name} from outside: {foreign}'
    assert registry.module_dict  # the package registered its modules


def test_package_description_names_the_registered_backbone_families():
    """setup.py's description says which backbone families the package has; keep it true."""
    setup = ast.parse((Path(__file__).resolve().parents[1] / 'setup.py').read_text())
    description = next(kw.value.value for node in ast.walk(setup) if isinstance(node, ast.Call)
                       for kw in node.keywords if kw.arg == 'description')
    named = set(description.split(' backbones ')[0].replace(' and ', ', ').split(', '))
    backbones = {name for name, cls in MODELS.module_dict.items()
                 if cls.__module__.startswith('mmmamba.models.backbones.')}
    assert named == backbones, (description, sorted(backbones))
