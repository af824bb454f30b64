# VMamba-S on ImageNet-1k, 224x224, 300 epochs, total batch 1024 (8 GPUs x 128 images).
# Release (MzeroMiko/VMamba README, VMamba-S[s2l15]): 50M params, 8.7G FLOPs, 83.6% top-1.
# Drop path 0.3: classification/configs/vssm/vmambav2_small_224.yaml of the release.
#   bash tools/dist_train.sh configs/cls_vmamba_s.py 8
_base_ = ['./_base_/cls_vmamba.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

model = dict(
    backbone=dict(arch='small', drop_path_rate=0.3),
    head=dict(in_channels=768))
