# Mamba-Reg-B, stage 3 of the release's recipe (see ./_base_/cls_mambareg_ft224.py): 224x224
# fine-tuning, 20 epochs from the stage-2 checkpoint MAMBAREG_B_MID_CKPT
# (configs/cls_mambareg_b_mid224.py); the whole classifier (backbone and head) is loaded.
#   MAMBAREG_B_MID_CKPT=work_dirs/cls_mambareg_b_mid224/epoch_100.pth \
#     bash tools/dist_train.sh configs/cls_mambareg_b_ft224.py 8
_base_ = ['./_base_/cls_mambareg_ft224.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

model = dict(backbone=dict(arch='base'), head=dict(in_channels=12 * 768 // 4))
load_from = '{{$MAMBAREG_B_MID_CKPT:work_dirs/cls_mambareg_b_mid224/epoch_100.pth}}'
