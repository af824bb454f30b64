# Mamba-Reg-S, stage 3 of the release's recipe (see ./_base_/cls_mambareg_ft224.py): 224x224
# fine-tuning, 20 epochs from the stage-2 checkpoint MAMBAREG_S_MID_CKPT
# (configs/cls_mambareg_s_mid224.py); the whole classifier (backbone and head) is loaded.
#   MAMBAREG_S_MID_CKPT=work_dirs/cls_mambareg_s_mid224/epoch_100.pth \
#     bash tools/dist_train.sh configs/cls_mambareg_s_ft224.py 8
_base_ = ['./_base_/cls_mambareg_ft224.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

model = dict(backbone=dict(arch='small'), head=dict(in_channels=12 * 384 // 2))
load_from = '{{$MAMBAREG_S_MID_CKPT:work_dirs/cls_mambareg_s_mid224/epoch_100.pth}}'
