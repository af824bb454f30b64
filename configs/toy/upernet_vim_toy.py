# Toy variant of configs/upernet_vim_ti.py for a CPU demo on the generated toy ADE20K set
# (tools/dataset_converters/make_toy_data.py). It inherits the real config and overrides only
# data, image size, schedule and model width; it trains from scratch in fp32, with the real
# config's simple feature pyramid and layer-wise lr decay.
_base_ = '../upernet_vim_ti.py'

data_root = '{{$TOY_ADE_ROOT:data/toy/ade/}}'
# The toy set uses ADE20K's first five classes, so pixel values are real ADE ids.
metainfo = dict(
    classes=('wall', 'building', 'sky', 'floor', 'tree'),
    palette=[(120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3)])
num_classes = 5
crop_size = (128, 128)

# A small Vim: the release's patch embedding, middle class token and bidirectional layers,
# narrower (64 channels) and shallower (8 layers, outputs of layers 1, 3, 5, 7 in place of the
# real config's 5, 11, 17, 23), with 8 states per channel; `_delete_` because a dict
# replaces the base's arch name.
embed_dims = 64
backbone_arch = dict(_delete_=True, embed_dims=embed_dims, num_layers=8, d_state=8)

# Narrow heads (64 channels): cheap on a CPU.
width = 64
model = dict(
    data_preprocessor=dict(size=crop_size),
    # from scratch: the release's initialisation instead of the checkpoint
    backbone=dict(
        arch=backbone_arch,
        img_size=crop_size,
        out_indices=(1, 3, 5, 7),
        drop_path_rate=0.0,
        init_cfg=dict(_delete_=True, type='TruncNormal', layer='Linear', std=0.02, bias=0.)),
    neck=dict(in_channels=embed_dims, out_channels=width),
    decode_head=dict(in_channels=[width] * 4, channels=width, num_classes=num_classes),
    auxiliary_head=dict(in_channels=width, channels=width // 2, num_classes=num_classes),
    # whole-image inference: the toy images are the crop size
    test_cfg=dict(_delete_=True, mode='whole'))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 300
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=30, end=max_iters, by_epoch=False),
]
# fp32 on CPU (AmpOptimWrapper needs CUDA); from scratch, so a higher lr than the 1e-4 fine-tune.
# Layer decay and parameter-wise settings as in the real config.
optim_wrapper = dict(
    type='OptimWrapper',
    _delete_=True,
    constructor='mmmamba.LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(
        layer_decay_rate=0.92,
        norm_decay_mult=0., bias_decay_mult=0., flat_decay_mult=0.,
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
            'dt_proj_bias': dict(decay_mult=0.),
        }))
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(by_epoch=False, interval=100, max_keep_ckpts=2))
# A progress bar while evaluating, besides the logger's lines.
custom_hooks = [dict(type='mmmamba.InputCheckHook'), dict(type='mmmamba.EvalProgressBarHook')]
