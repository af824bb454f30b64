# VMamba-B on ImageNet-1k, 224x224, 300 epochs, total batch 1024 (8 GPUs x 128 images).
# Release (MzeroMiko/VMamba README, VMamba-B[s2l15]): 89M params, 15.4G FLOPs, 83.9% top-1.
# Drop path 0.6: classification/configs/vssm/vmambav2_base_224.yaml of the release.
#   bash tools/dist_train.sh configs/cls_vmamba_b.py 8
_base_ = ['./_base_/cls_vmamba.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

model = dict(
    backbone=dict(arch='base', drop_path_rate=0.6),
    head=dict(in_channels=1024))
