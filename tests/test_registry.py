import pytest
import torch
from mmengine.registry import DefaultScope

from mmmamba.registry import MODELS


@MODELS.register_module(name='RegistryProbe', force=True)
class RegistryProbe(torch.nn.Module):

    def __init__(self, width: int = 2) -> None:
        super().__init__()
        self.width = width


@pytest.mark.parametrize('scope, registry_module', [
    ('mmdet', 'mmdet.registry'),
    ('mmseg', 'mmseg.registry'),
    ('mmpretrain', 'mmpretrain.registry'),
])
def test_scoped_type_builds_under_any_default_scope(scope, registry_module):
    registry = __import__(registry_module, fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(dict(type='mmmamba.RegistryProbe', width=5))
    assert isinstance(model, RegistryProbe) and model.width == 5


def test_registries_are_children_of_mmengine_roots():
    from mmengine.registry import MODELS as ROOT
    assert MODELS.parent is ROOT
    assert ROOT.children['mmmamba'] is MODELS
