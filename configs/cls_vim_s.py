# Vim-S on ImageNet-1k, 224x224, 300 epochs, total batch 512 (8 GPUs x 64 images), fp32.
# Release (hustvl/Vim README, Vim-S, vim_s_midclstok_80p5acc.pth): 26M params, 80.5% top-1.
# Drop path 0.05, batch 64 per GPU and lr 1e-3 per 512 images: vim/scripts/pt-vim-s.sh of the
# release (twice the lr per image of Vim-Ti's 5e-4 per 512).
#   bash tools/dist_train.sh configs/cls_vim_s.py 8
_base_ = ['./_base_/cls_vim.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

model = dict(
    backbone=dict(arch='small', drop_path_rate=0.05),
    head=dict(in_channels=384))

# 8 GPUs x 64 images = 512 at lr 1e-3; `--auto-scale-lr` scales by batch / 512.
train_dataloader = dict(batch_size=64)
auto_scale_lr = dict(base_batch_size=512)
