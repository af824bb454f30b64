# UperNet + auxiliary FCN head with a VMamba backbone, ADE20K 512x512, 160k iterations.
#
# Recipe of the VMamba release (https://github.com/MzeroMiko/VMamba,
# segmentation/configs/vssm1/, which inherit mmseg's Swin UperNet configs): ImageNet-1k
# initialisation, 160k iterations, AdamW lr 6e-5 wd 0.01, 1500 linear warm-up iterations then
# poly decay, total batch 16 (4 GPUs x 4 images) — all of it in ./upernet_ade20k_160k.py. FP16
# as for MambaOut.
# The size configs (configs/upernet_vmamba_{t,s,b}.py) set arch, drop path, head widths and
# the pretrained checkpoint.
_base_ = ['./upernet_ade20k_160k.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmamba.VMamba',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.2),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))

# The SSM's A_log (2-D: channels x states) gets no weight decay, as in the release; D, norms
# and biases are 1-D and covered by flat_decay_mult.
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'A_log': dict(decay_mult=0.)}))
