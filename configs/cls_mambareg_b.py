# Mamba-Reg-B on ImageNet-1k, stage 1 of the release's recipe (see ./_base_/cls_mambareg.py):
# 128x128, 300 epochs, total batch 1024 (8 GPUs x 128 images), fp32. Then
# configs/cls_mambareg_b_mid224.py and configs/cls_mambareg_b_ft224.py.
# Release (wangf3014/Mamba-Reg README, mambar_base_patch16_224.pth, after all three stages):
# 83.0% top-1.
#   bash tools/dist_train.sh configs/cls_mambareg_b.py 8
_base_ = ['./_base_/cls_mambareg.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

model = dict(
    backbone=dict(arch='base', drop_path_rate=0.1),
    # 12 registers, each reduced 768 -> 768 / 4
    head=dict(in_channels=12 * 768 // 4))
