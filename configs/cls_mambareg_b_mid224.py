# Mamba-Reg-B, stage 2 of the release's recipe (see ./_base_/cls_mambareg_mid224.py): 224x224,
# 100 epochs from the stage-1 checkpoint MAMBAREG_B_PT_CKPT (configs/cls_mambareg_b.py).
#   MAMBAREG_B_PT_CKPT=work_dirs/cls_mambareg_b/epoch_300.pth \
#     bash tools/dist_train.sh configs/cls_mambareg_b_mid224.py 8
_base_ = ['./_base_/cls_mambareg_mid224.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

pretrained = '{{$MAMBAREG_B_PT_CKPT:work_dirs/cls_mambareg_b/epoch_300.pth}}'
model = dict(
    backbone=dict(
        arch='base',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    head=dict(in_channels=12 * 768 // 4))
