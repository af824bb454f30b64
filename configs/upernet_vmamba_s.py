# UperNet + auxiliary FCN head, VMamba-S backbone, ADE20K 512x512, 160k iterations,
# 4 GPUs x 4 images, FP16.
# Release (MzeroMiko/VMamba README, VMamba-S[s2l15] UperNet@160k): 82M params, 1028G FLOPs
# at 512x2048.
#   bash tools/dist_train.sh configs/upernet_vmamba_s.py 4
_base_ = ['./_base_/upernet_vmamba.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

# ImageNet-1k weights: by default the release's VMamba-S[s2l15] classifier
# (vssm_small_0229_ckpt_epoch_222.pth, 83.6% top-1, tag #v2cls of MzeroMiko/VMamba);
# VMAMBA_S_CKPT may name any other file the backbone loads (an mmmamba classifier
# checkpoint from configs/cls_vmamba_s.py or another official VMamba file of this size).
pretrained = '{{$VMAMBA_S_CKPT:https://github.com/MzeroMiko/VMamba/releases/download/%23v2cls/vssm_small_0229_ckpt_epoch_222.pth}}'  # noqa: E501

model = dict(
    backbone=dict(
        arch='small',
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
