# UperNet + auxiliary FCN head with a MambaOut backbone, ADE20K 512x512, 160k iterations.
#
# Recipe of the MambaOut paper (Yu & Wang, https://arxiv.org/abs/2405.07992, Sec. 4.3):
# ImageNet-1k initialisation, 160k iterations, AdamW lr 1e-4, total batch 16 (4 GPUs x 4
# images), FP16. The paper gives no weight decay or lr schedule; those below are the
# Swin / VMamba UperNet ones (wd 0.01, 1500 linear warm-up iterations, then linear decay).
# The size configs (configs/upernet_mambaout_{t,s,b}.py) set arch, drop path, head widths
# and the pretrained checkpoint.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/schedules/schedule_160k.py',
    'mmseg::_base_/default_runtime.py',
]

data_root = '{{$ADE_ROOT:data/ade/ADEChallengeData2016/}}'
crop_size = (512, 512)

model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmmamba.MambaOut',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.3),
    decode_head=dict(in_channels=[96, 192, 384, 576], num_classes=150),
    # the auxiliary FCN head reads stage 3
    auxiliary_head=dict(in_channels=384, in_index=2, num_classes=150))

# 4 GPUs x 4 images = 16
train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=1, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

# No weight decay on 1-D parameters (norm weights, biases), as timm does for the backbone.
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0., flat_decay_mult=0.))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False),
]

# lr 1e-4 is for a total batch of 16; `tools/train.py --auto-scale-lr` rescales it.
auto_scale_lr = dict(enable=False, base_batch_size=16)

# Stop early with a clear message on bad data roots, missing images, a class-count mismatch
# or a load_from checkpoint of another model (see mmmamba/engine/hooks/input_check_hook.py).
custom_hooks = [dict(type='mmmamba.InputCheckHook')]
