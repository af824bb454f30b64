# ImageNet-1k classification, 224x224: what every mmmamba backbone family shares. The family
# bases (configs/_base_/cls_<family>.py) put their backbone, neck and head type in and set
# their optimizer and schedule where it differs from Swin's.
#
# The Swin / DeiT data recipe both MambaOut and VMamba train with: random resized crop,
# RandAugment rand-m9-mstd0.5-inc1, random erasing 0.25 (per-pixel random fill), bicubic,
# Mixup 0.8 / CutMix 1.0 (switch prob 0.5), label smoothing 0.1; the schedule of
# mmpretrain's Swin base (AdamW, 20 warm-up epochs, cosine, 300 epochs).
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]

data_root = '{{$IMAGENET_ROOT:data/imagenet/}}'

model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        num_classes=1000,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    head=dict(
        num_classes=1000,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0),
    ]))

train_dataloader = dict(batch_size=128, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=128, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

# Stop early with a clear message on bad data roots, missing images, a class-count mismatch
# or a load_from checkpoint of another model (see mmmamba/engine/hooks/input_check_hook.py).
custom_hooks = [dict(type='mmmamba.InputCheckHook')]
