# UperNet + auxiliary FCN head with a Vim backbone, ADE20K 512x512, 160k iterations.
#
# Where each setting comes from:
# - The Vim release (https://github.com/hustvl/Vim, seg/configs/vim/upernet/
#   upernet_vim_{tiny,small}_24_512_slide_60k.py, built on BEiT's segmentation code): the
#   outputs of layers 5, 11, 17 and 23 brought to strides 4/8/16/32 (one layer per scale),
#   decode and auxiliary widths equal to the backbone's, AdamW lr 1e-4 betas (0.9, 0.999)
#   wd 0.05, layer-wise lr decay 0.92, 1500 linear warm-up iterations from lr x 1e-6 then poly
#   (power 1) decay to 0, slide inference with 512 crops and stride 341, 4 GPUs, FP16.
# - ./upernet_ade20k_160k.py (shared by all our families): ADE20K data and pipeline, 160k
#   iterations at a total batch of 16 (4 GPUs x 4 images). The release trains 60k iterations at
#   4 GPUs x 8 images instead.
# - Ours: mmmamba's SimpleFeaturePyramid in place of the release's in-backbone deconvolutions
#   (the same scales, with a 1x1 + 3x3 conv and LayerNorm per level); drop path 0.1; no weight
#   decay on the position embedding and class token, the SSMs' A_log and D (mamba-ssm's
#   `_no_weight_decay`), dt_proj_bias, norms and biases.
# The size configs (configs/upernet_vim_{ti,s}.py) set arch, widths and the checkpoint.
_base_ = ['./upernet_ade20k_160k.py']

crop_size = (512, 512)
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmamba.Vim',
        arch='tiny',
        out_indices=(5, 11, 17, 23),
        out_type='featmap',
        drop_path_rate=0.1),
    neck=dict(type='mmmamba.SimpleFeaturePyramid', in_channels=192, out_channels=192),
    decode_head=dict(in_channels=[192, 192, 192, 192], channels=192),
    auxiliary_head=dict(in_channels=192),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

optim_wrapper = dict(
    constructor='mmmamba.LayerDecayOptimWrapperConstructor',
    optimizer=dict(lr=1e-4, weight_decay=0.05),
    paramwise_cfg=dict(
        layer_decay_rate=0.92,
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
            'dt_proj_bias': dict(decay_mult=0.),
        }))
