# Vim-Ti on ImageNet-1k, 224x224, 300 epochs, total batch 1024 (8 GPUs x 128 images), fp32.
# Release (hustvl/Vim README, Vim-Ti, vim_t_midclstok_76p1acc.pth): 7M params, 76.1% top-1.
# Drop path 0.1 and batch: vim/scripts/pt-vim-t.sh of the release.
#   bash tools/dist_train.sh configs/cls_vim_ti.py 8
_base_ = ['./_base_/cls_vim.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

model = dict(
    backbone=dict(arch='tiny', drop_path_rate=0.1),
    head=dict(in_channels=192))
