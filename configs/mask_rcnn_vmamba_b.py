# Mask R-CNN + FPN, VMamba-B backbone, COCO 1x (12 epochs), 4 GPUs x 4 images, FP16.
# Release (MzeroMiko/VMamba README, VMamba-B[s2l15] MaskRCNN@1x): 108M params, 485G FLOPs
# at 800x1280.
#   bash tools/dist_train.sh configs/mask_rcnn_vmamba_b.py 4
_base_ = ['./_base_/mask_rcnn_vmamba.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

# ImageNet-1k weights: by default the release's VMamba-B[s2l15] classifier
# (vssm_base_0229_ckpt_epoch_237.pth, 83.9% top-1, tag #v2cls of MzeroMiko/VMamba);
# VMAMBA_B_CKPT may name any other file the backbone loads (an mmmamba classifier
# checkpoint from configs/cls_vmamba_b.py or another official VMamba file of this size).
pretrained = '{{$VMAMBA_B_CKPT:https://github.com/MzeroMiko/VMamba/releases/download/%23v2cls/vssm_base_0229_ckpt_epoch_237.pth}}'  # noqa: E501

model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.6,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=[128, 256, 512, 1024]))
