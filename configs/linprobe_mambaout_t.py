# Linear probe of MambaOut-T on ImageNet-1k (the DINO protocol, see
# ./_base_/linprobe_imagenet.py), on MambaOut's own global representation: the last stage
# average-pooled, then norm3, 576 wide.
# Checkpoint: MAMBAOUT_T_CKPT, by default the DINO pre-training of configs/dino_mambaout_t.py;
# a supervised one (configs/cls_mambaout_t.py, a timm or official MambaOut file) works alike.
#   MAMBAOUT_T_CKPT=work_dirs/dino_mambaout_t/epoch_100.pth \
#     bash tools/dist_train.sh configs/linprobe_mambaout_t.py 8
_base_ = ['./_base_/linprobe_imagenet.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

pretrained = '{{$MAMBAOUT_T_CKPT:work_dirs/dino_mambaout_t/epoch_100.pth}}'
model = dict(
    backbone=dict(
        type='mmmamba.MambaOut',
        arch='tiny',
        out_indices=(3, ),
        gap_before_final_norm=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(type='ClsBatchNormNeck', input_features=576),
    head=dict(in_channels=576))
