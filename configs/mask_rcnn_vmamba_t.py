# Mask R-CNN + FPN, VMamba-T backbone, COCO 1x (12 epochs), 4 GPUs x 4 images, FP16.
# Release (MzeroMiko/VMamba README, VMamba-T[s1l8] MaskRCNN@1x): 50M params, 271G FLOPs
# at 800x1280.
#   bash tools/dist_train.sh configs/mask_rcnn_vmamba_t.py 4
_base_ = ['./_base_/mask_rcnn_vmamba.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

# ImageNet-1k weights: by default the release's VMamba-T[s1l8] classifier
# (vssm1_tiny_0230s_ckpt_epoch_264.pth, 82.6% top-1, tag #v2cls of MzeroMiko/VMamba);
# VMAMBA_T_CKPT may name any other file the backbone loads (an mmmamba classifier
# checkpoint from configs/cls_vmamba_t.py or another official VMamba file of this size).
pretrained = '{{$VMAMBA_T_CKPT:https://github.com/MzeroMiko/VMamba/releases/download/%23v2cls/vssm1_tiny_0230s_ckpt_epoch_264.pth}}'  # noqa: E501

model = dict(
    backbone=dict(
        arch='tiny',
        drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=[96, 192, 384, 768]))
