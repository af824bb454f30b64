# Toy variant of configs/upernet_mambaout_t.py for a CPU demo on the generated toy ADE20K set
# (tools/dataset_converters/make_toy_data.py). It inherits the real config and overrides only
# data, image size, schedule and model width; it trains from scratch in fp32.
_base_ = '../upernet_mambaout_t.py'

data_root = '{{$TOY_ADE_ROOT:data/toy/ade/}}'
# The toy set uses ADE20K's first five classes, so pixel values are real ADE ids: ADE_CLASSES
# and ADE_PALETTE of make_toy_data.py, the generator of the set (the source of truth;
# tests/test_tools/test_make_toy_data.py checks that these copies match it).
metainfo = dict(
    classes=('wall', 'building', 'sky', 'floor', 'tree'),
    palette=[(120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3)])
num_classes = 5
crop_size = (128, 128)

# Narrow heads (64 channels instead of 512/256): ~10x cheaper on a CPU.
width = 64
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(arch='femto', drop_path_rate=0.0, init_cfg=None),
    decode_head=dict(
        in_channels=[48, 96, 192, 288], channels=width, num_classes=num_classes),
    auxiliary_head=dict(in_channels=192, channels=width // 2, num_classes=num_classes))

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
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0., flat_decay_mult=0.))
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(by_epoch=False, interval=100, max_keep_ckpts=2))
# A progress bar while evaluating, besides the logger's lines.
custom_hooks = [dict(type='mmmamba.InputCheckHook'), dict(type='mmmamba.EvalProgressBarHook')]
