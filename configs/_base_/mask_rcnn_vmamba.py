# Mask R-CNN + FPN with a VMamba backbone, COCO instance segmentation, 1x schedule.
#
# Recipe of the VMamba release (https://github.com/MzeroMiko/VMamba, detection/configs/vssm1/,
# which inherit mmdet's configs/swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py): ImageNet-1k
# initialisation, 12 epochs (lr x0.1 after epochs 8 and 11), 1000 linear warm-up iterations,
# shorter side 800 / longer side <= 1333, AdamW lr 1e-4 wd 0.05, total batch 16 (4 GPUs x 4
# images); the shared parts are in ./mask_rcnn_coco_1x.py. FP16 as for MambaOut.
# The size configs (configs/mask_rcnn_vmamba_{t,s,b}.py) set arch, drop path, FPN widths and
# the pretrained checkpoint.
_base_ = ['./mask_rcnn_coco_1x.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmamba.VMamba',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.2),
    neck=dict(in_channels=[96, 192, 384, 768]))

# The SSM's A_log (2-D: channels x states) gets no weight decay, as in the release; D, norms
# and biases are 1-D and covered by flat_decay_mult.
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'A_log': dict(decay_mult=0.)}))

# Swin's warm-up (1000 iterations from lr x 0.001) instead of mmdet's 500.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
