# UperNet + auxiliary FCN head, VMamba-B backbone, ADE20K 512x512, 160k iterations,
# 4 GPUs x 4 images, FP16.
# Release (MzeroMiko/VMamba README, VMamba-B[s2l15] UperNet@160k): 122M params, 1170G FLOPs
# at 512x2048.
#   bash tools/dist_train.sh configs/upernet_vmamba_b.py 4
_base_ = ['./_base_/upernet_vmamba.py']
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
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
