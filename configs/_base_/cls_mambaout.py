# ImageNet-1k classification with MambaOut: the recipe of the official training scripts
# (https://github.com/yuweihao/MambaOut, train.py defaults + scripts/train_mambaout_*.sh):
# 300 epochs, AdamW lr 4e-3 at total batch 4096, wd 0.05 (none on 1-D parameters), cosine
# decay to 1e-5 after 20 linear warm-up epochs from 1e-6, RandAugment rand-m9-mstd0.5-inc1,
# Mixup 0.8 / CutMix 1.0 (switch prob 0.5), random erasing 0.25 (pixel mode), label
# smoothing 0.1, bicubic, test crop ratio 1.0, no EMA. The data part is the shared one of
# ./cls_imagenet.py; optimizer, schedule and test crop are MambaOut's own.
# The size configs (configs/cls_mambaout_{femto,kobe,t,s,b}.py) set arch, drop path and
# the head width.
_base_ = ['./cls_imagenet.py']

model = dict(
    backbone=dict(
        type='mmmamba.MambaOut',
        arch='tiny',
        out_indices=(3, ),
        drop_path_rate=0.2,
        gap_before_final_norm=True),
    neck=None,
    head=dict(type='mmmamba.MambaOutHead', in_channels=576))

# crop ratio 1.0: resize the short side to 224, then take the centre 224x224
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=224, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

# 32 GPUs x 128 images = 4096. The authors ran 8 GPUs x 128 images x 4 accumulation steps:
# add `optim_wrapper.accumulative_counts=4` for that; with fewer images in total, pass
# `--auto-scale-lr` to tools/train.py to scale lr 4e-3 linearly.
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# No weight decay on 1-D parameters (norm weights, biases), as timm does.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0., flat_decay_mult=0.))

param_scheduler = [
    # warm up from 1e-6 (= 4e-3 x 2.5e-4), updated every iteration
    dict(
        type='LinearLR',
        start_factor=2.5e-4,
        by_epoch=True,
        end=20,
        convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=20),
]

train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)

auto_scale_lr = dict(base_batch_size=4096)

# EMA is not part of the paper's recipe; to keep one, add
# custom_hooks = [dict(type='mmmamba.InputCheckHook'),
#                 dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL')]
