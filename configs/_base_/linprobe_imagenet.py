# Linear probing on ImageNet-1k: the DINO evaluation protocol (Caron et al., arXiv 2104.14294,
# eval_linear.py of the release) on a frozen backbone, with a BatchNorm (no affine, as MAE's
# ClsBatchNormNeck) before the linear layer. Shared by configs/linprobe_<family>_<size>.py,
# which set the backbone, its global representation and the checkpoint (supervised or DINO:
# both keep the backbone under `backbone.`).
#
# - 100 epochs, SGD momentum 0.9, no weight decay, lr 1e-3 x total batch / 256 (4e-3 at
#   8 GPUs x 128 images = 1024), cosine to 0 stepped once per epoch; linear layer initialised
#   N(0, 0.01), zero bias.
# - Train: RandomResizedCrop 224 (scale 0.08-1, bilinear), horizontal flip; test: short side
#   256 (bicubic), centre crop 224. Top-1/top-5 accuracy.
# - The backbone is frozen whole (mmmamba.LinearProbeClassifier: no gradients, eval mode, so no
#   drop path and no BatchNorm statistics updates).
# DINO's ViT-S protocol concatenates the class tokens of the last 4 blocks and sweeps the lr;
# we probe the one global representation each family defines, at the default lr.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/default_runtime.py',
]

data_root = '{{$IMAGENET_ROOT:data/imagenet/}}'

model = dict(
    type='mmmamba.LinearProbeClassifier',
    # backbone and neck: set by each size config; the neck ends in
    # dict(type='ClsBatchNormNeck', input_features=<width>)
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=None,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5),
        init_cfg=dict(type='Normal', layer='Linear', std=0.01, bias=0.)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=8,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

# 8 GPUs x 128 images = 1024: lr 1e-3 x 1024 / 256. With another total batch pass
# `--auto-scale-lr` to tools/train.py (lr x batch / 1024, the same rule).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=1e-3 * 1024 / 256, momentum=0.9, weight_decay=0.))
auto_scale_lr = dict(base_batch_size=1024)

max_epochs = 100
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=0., by_epoch=True, begin=0,
         end=max_epochs),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=10)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
# Stop early with a clear message on bad data roots, missing images or a class-count mismatch.
custom_hooks = [dict(type='mmmamba.InputCheckHook')]
