import pytest
import torch
import torch.nn as nn

from mmmamba.utils.checkpoint import load_pretrained, read_state_dict


class TwoLayers(nn.Module):

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)


def saved(tmp_path, checkpoint, name='ckpt.pth') -> str:
    path = tmp_path / name
    torch.save(checkpoint, path)
    return str(path)


@pytest.mark.parametrize('wrapper', [None, 'state_dict', 'model', 'module'])
def test_read_state_dict_unwraps_and_strips_module_prefix(tmp_path, wrapper):
    state = {'module.fc.weight': torch.ones(2), 'fc.bias': torch.zeros(2)}
    checkpoint = state if wrapper is None else {wrapper: state, 'meta': {'epoch': 3}}
    loaded = read_state_dict(saved(tmp_path, checkpoint))
    assert list(loaded) == ['fc.weight', 'fc.bias']
    assert list(read_state_dict(checkpoint)) == ['fc.weight', 'fc.bias']


def test_prefix_selects_and_strips_keys(tmp_path):
    source = TwoLayers()
    checkpoint = {f'backbone.{k}': v for k, v in source.state_dict().items()}
    checkpoint['head.fc.weight'] = torch.zeros(3, 3)
    target = TwoLayers()
    path = saved(tmp_path, dict(state_dict=checkpoint))
    result = load_pretrained(target, path, prefix='backbone')  # '.' is added
    assert sorted(result.loaded) == sorted(source.state_dict())
    assert result.missing == [] and result.unexpected == []
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value)


def test_missing_and_unexpected_keys_are_reported():
    source = TwoLayers().state_dict()
    checkpoint = {'fc.weight': source['fc.weight'], 'extra.weight': torch.zeros(1)}
    result = load_pretrained(TwoLayers(), checkpoint)
    assert result.loaded == ['fc.weight']
    assert sorted(result.missing) == ['fc.bias', 'norm.bias', 'norm.weight']
    assert result.unexpected == ['extra.weight']


def test_converter_runs_before_prefix_filtering():
    source = TwoLayers().state_dict()
    checkpoint = {f'old_{k}': v for k, v in source.items()}
    result = load_pretrained(
        TwoLayers(),
        checkpoint,
        prefix='backbone.',
        converter=lambda sd: {'backbone.' + k[len('old_'):]: v for k, v in sd.items()})
    assert sorted(result.loaded) == sorted(source)


def test_missing_file_raises_naming_the_path(tmp_path):
    path = tmp_path / 'missing_weights.pth'
    with pytest.raises(FileNotFoundError, match='missing_weights.pth'):
        load_pretrained(TwoLayers(), str(path))


def test_no_matching_key_raises_and_suggests_a_prefix():
    checkpoint = {f'model.backbone.{k}': v for k, v in TwoLayers().state_dict().items()}
    with pytest.raises(KeyError, match=r"none of the 4 keys.*prefix='model\.backbone\.'"):
        load_pretrained(TwoLayers(), checkpoint)
    with pytest.raises(KeyError, match='none of the 1 keys'):
        load_pretrained(TwoLayers(), {'conv.weight': torch.zeros(1)})


def test_prefix_without_match_raises():
    with pytest.raises(KeyError, match="prefix 'backbone.'"):
        load_pretrained(TwoLayers(), TwoLayers().state_dict(), prefix='backbone.')


def test_shape_mismatch_raises_and_leaves_module_untouched():
    target = TwoLayers(width=4)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(ValueError, match=r'fc\.weight: checkpoint \(8, 8\) vs model \(4, 4\)'):
        load_pretrained(target, TwoLayers(width=8).state_dict())
    for key, value in target.state_dict().items():
        torch.testing.assert_close(value, before[key])
