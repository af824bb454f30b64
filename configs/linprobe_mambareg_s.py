# Linear probe of Mamba-Reg-S on ImageNet-1k (the DINO protocol, see
# ./_base_/linprobe_imagenet.py), on Mamba-Reg's representation: the 12 registers after the final
# norm, each reduced 384 -> 192, concatenated (2304 wide).
# Checkpoint: MAMBAREG_S_CKPT, by default the DINO pre-training of configs/dino_mambareg_s.py;
# the release's supervised Mamba-Reg-S or an mmmamba classifier works alike.
#   MAMBAREG_S_CKPT=work_dirs/dino_mambareg_s/epoch_100.pth \
#     bash tools/dist_train.sh configs/linprobe_mambareg_s.py 8
_base_ = ['./_base_/linprobe_imagenet.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

pretrained = '{{$MAMBAREG_S_CKPT:work_dirs/dino_mambareg_s/epoch_100.pth}}'
model = dict(
    backbone=dict(
        type='mmmamba.MambaReg',
        arch='small',
        out_indices=(-1, ),
        out_type='registers',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(type='ClsBatchNormNeck', input_features=12 * 384 // 2),
    head=dict(in_channels=12 * 384 // 2))
