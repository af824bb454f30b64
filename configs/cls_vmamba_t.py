# VMamba-T on ImageNet-1k, 224x224, 300 epochs, total batch 1024 (8 GPUs x 128 images).
# Release (MzeroMiko/VMamba README, VMamba-T[s1l8]): 30M params, 4.9G FLOPs, 82.6% top-1.
# Drop path 0.2: classification/configs/vssm/vmambav2v_tiny_224.yaml of the release.
#   bash tools/dist_train.sh configs/cls_vmamba_t.py 8
_base_ = ['./_base_/cls_vmamba.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

model = dict(
    backbone=dict(arch='tiny', drop_path_rate=0.2),
    head=dict(in_channels=768))
