# Mask R-CNN + FPN, COCO instance segmentation, 1x schedule: what every mmmamba backbone family
# shares. The family bases (configs/_base_/mask_rcnn_<family>.py) put their backbone in
# (`_delete_=True` over mmdet's ResNet) and set the FPN input widths.
#
# The Swin recipe that MambaOut and VMamba both follow: ImageNet-1k initialisation, 12 epochs,
# shorter side 800 / longer side <= 1333 (the stock mmdet pipeline), AdamW lr 1e-4 wd 0.05,
# total batch 16 (4 GPUs x 4 images), FP16.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]

data_root = '{{$COCO_ROOT:data/coco/}}'

# 4 GPUs x 4 images = 16
train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

# No weight decay on 1-D parameters (norm weights, biases), as timm does for the backbone.
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0., flat_decay_mult=0.))

# lr 1e-4 is for a total batch of 16; `tools/train.py --auto-scale-lr` rescales it.
auto_scale_lr = dict(enable=False, base_batch_size=16)

# Stop early with a clear message on bad data roots, missing images, a class-count mismatch
# or a load_from checkpoint of another model (see mmmamba/engine/hooks/input_check_hook.py).
custom_hooks = [dict(type='mmmamba.InputCheckHook')]
