"""SimpleFeaturePyramid: shapes on odd sizes, equality with the pyramid written out with
functional ops, gradients, and building by its scoped name under mmdet's and mmseg's registries."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope

from mmmamba.models.necks import SimpleFeaturePyramid


def layer_norm_channels(x, norm):
    """LayerNorm over dim 1 of an NCHW map, written without our LayerNorm2d."""
    mean = x.mean(dim=1, keepdim=True)
    var = x.var(dim=1, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + norm.eps) * norm.weight[:, None, None] \
        + norm.bias[:, None, None]


def conv_norm(x, module):
    """ConvModule(conv, norm, no activation) by hand."""
    x = F.conv2d(x, module.conv.weight, module.conv.bias, padding=module.conv.padding)
    return layer_norm_channels(x, module.norm)


def reference_pyramid(neck, x):
    """ViTDet's pyramid written out from the neck's parameters."""
    r4, r2 = neck.resamplers[0], neck.resamplers[1]
    up4 = F.conv_transpose2d(x, r4[0].weight, r4[0].bias, stride=2)
    up4 = F.gelu(layer_norm_channels(up4, r4[1]))
    up4 = F.conv_transpose2d(up4, r4[3].weight, r4[3].bias, stride=2)
    up2 = F.conv_transpose2d(x, r2.weight, r2.bias, stride=2)
    # 2x2 max-pool that covers a ragged last row/column (ceil mode): pad with -inf.
    padded = F.pad(x, (0, x.shape[3] % 2, 0, x.shape[2] % 2), value=float('-inf'))
    b, c, h, w = padded.shape
    down = padded.reshape(b, c, h // 2, 2, w // 2, 2).amax(dim=(3, 5))
    return [
        conv_norm(conv_norm(level, neck.lateral_convs[i]), neck.output_convs[i])
        for i, level in enumerate([up4, up2, x, down])
    ]


def randomise_norms(neck):
    """Non-trivial affine norm parameters, so the comparison sees them."""
    with torch.no_grad():
        for module in neck.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)


def test_shapes_on_odd_sizes():
    neck = SimpleFeaturePyramid(in_channels=32, out_channels=16)
    outs = neck((torch.randn(2, 32, 14, 15), ))
    assert [tuple(o.shape) for o in outs] == [(2, 16, 56, 60), (2, 16, 28, 30), (2, 16, 14, 15),
                                              (2, 16, 7, 8)]


def test_equals_pyramid_written_with_functional_ops():
    torch.manual_seed(0)
    neck = SimpleFeaturePyramid(in_channels=16, out_channels=8)
    randomise_norms(neck)
    x = torch.randn(2, 16, 5, 7)
    for out, expected in zip(neck((x, )), reference_pyramid(neck, x)):
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


def test_one_map_per_scale_makes_its_own_level():
    torch.manual_seed(0)
    neck = SimpleFeaturePyramid(in_channels=8, out_channels=8)
    maps = [torch.randn(1, 8, 6, 6) for _ in range(4)]
    outs = neck(maps)
    for i in range(4):
        torch.testing.assert_close(outs[i], reference_pyramid(neck, maps[i])[i], atol=1e-5,
                                   rtol=1e-4)
    assert not torch.allclose(outs[2], neck(maps[:1])[2])


def test_subset_of_scales_and_group_norm():
    neck = SimpleFeaturePyramid(in_channels=8, out_channels=4, scales=(2, 0.5),
                                norm_cfg=dict(type='GN', num_groups=2))
    outs = neck([torch.randn(1, 8, 3, 3)])
    assert [tuple(o.shape) for o in outs] == [(1, 4, 6, 6), (1, 4, 2, 2)]
    assert isinstance(neck.output_convs[0].norm, torch.nn.GroupNorm)


def test_gradient_reaches_every_parameter():
    neck = SimpleFeaturePyramid(in_channels=16, out_channels=8)
    x = torch.randn(2, 16, 4, 5, requires_grad=True)
    sum(o.square().mean() for o in neck((x, ))).backward()
    no_grad = [n for n, p in neck.named_parameters() if p.grad is None or not p.grad.any()]
    assert not no_grad
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_builds_in_mmdet_before_fpn():
    from mmdet.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        neck = MODELS.build([
            dict(type='mmmamba.SimpleFeaturePyramid', in_channels=32, out_channels=16),
            dict(type='FPN', in_channels=[16] * 4, out_channels=8, num_outs=5),
        ])
    assert isinstance(neck[0], SimpleFeaturePyramid)
    outs = neck((torch.randn(1, 32, 8, 10), ))
    # strides 4..64 of a 128x160 image
    assert [tuple(o.shape[2:]) for o in outs] == [(32, 40), (16, 20), (8, 10), (4, 5), (2, 3)]
    assert all(o.shape[1] == 8 for o in outs)


def test_builds_in_mmseg_before_uperhead():
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        neck = MODELS.build(
            dict(type='mmmamba.SimpleFeaturePyramid', in_channels=32, out_channels=16))
        head = MODELS.build(
            dict(type='UPerHead', in_channels=[16] * 4, in_index=[0, 1, 2, 3],
                 pool_scales=(1, 2), channels=8, num_classes=3,
                 norm_cfg=dict(type='BN', requires_grad=True)))
    assert isinstance(neck, SimpleFeaturePyramid)
    logits = head(neck((torch.randn(2, 32, 7, 9), )))
    assert logits.shape == (2, 3, 28, 36)  # stride 4


def test_bad_arguments_and_inputs_raise():
    with pytest.raises(ValueError, match=r'scales must be taken from .*got \[3\]'):
        SimpleFeaturePyramid(in_channels=8, out_channels=8, scales=(3, ))
    with pytest.raises(ValueError, match='in_channels=6 must be divisible by 4'):
        SimpleFeaturePyramid(in_channels=6, out_channels=8)
    with pytest.raises(ValueError, match=r"in_channels must be a positive int .*got \[8, 8\]"):
        SimpleFeaturePyramid(in_channels=[8, 8], out_channels=8)
    neck = SimpleFeaturePyramid(in_channels=8, out_channels=8)
    with pytest.raises(TypeError, match=r'got a single tensor of shape \(1, 8, 4, 4\)'):
        neck(torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match='1 map or one per scale \\(4\\), got 2 maps'):
        neck([torch.randn(1, 8, 4, 4)] * 2)
    with pytest.raises(ValueError, match=r'expects \(B, 8, H, W\) .*got shapes \[\(1, 6, 4, 4\)\]'):
        neck([torch.randn(1, 6, 4, 4)])
