# Linear probe of VMamba-T on ImageNet-1k (the DINO protocol, see
# ./_base_/linprobe_imagenet.py), on the last stage after norm3, average-pooled (mmpretrain's
# GlobalAveragePooling, as VMamba's classifier), 768 wide.
# Checkpoint: VMAMBA_T_CKPT, by default the release's VMamba-T[s1l8] classifier (as the dense
# configs); an mmmamba classifier or a DINO checkpoint of VMamba-T works alike.
#   bash tools/dist_train.sh configs/linprobe_vmamba_t.py 8
_base_ = ['./_base_/linprobe_imagenet.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

pretrained = '{{$VMAMBA_T_CKPT:https://github.com/MzeroMiko/VMamba/releases/download/%23v2cls/vssm1_tiny_0230s_ckpt_epoch_264.pth}}'  # noqa: E501
model = dict(
    backbone=dict(
        type='mmmamba.VMamba',
        arch='tiny',
        out_indices=(3, ),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=[
        dict(type='GlobalAveragePooling'),
        dict(type='ClsBatchNormNeck', input_features=768),
    ],
    head=dict(in_channels=768))
