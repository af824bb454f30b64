# UperNet + auxiliary FCN head with a MambaOut backbone, ADE20K 512x512, 160k iterations.
#
# Recipe of the MambaOut paper (Yu & Wang, https://arxiv.org/abs/2405.07992, Sec. 4.3):
# ImageNet-1k initialisation, 160k iterations, AdamW lr 1e-4, total batch 16 (4 GPUs x 4
# images), FP16. The paper gives no weight decay or lr schedule; those of
# ./upernet_ade20k_160k.py are the Swin / VMamba UperNet ones (wd 0.01, 1500 linear warm-up
# iterations, then linear decay).
# The size configs (configs/upernet_mambaout_{t,s,b}.py) set arch, drop path, head widths
# and the pretrained checkpoint.
_base_ = ['./upernet_ade20k_160k.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmamba.MambaOut',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.3),
    decode_head=dict(in_channels=[96, 192, 384, 576]),
    auxiliary_head=dict(in_channels=384))

# lr 1e-4 (the paper's) is for a total batch of 16.
optim_wrapper = dict(optimizer=dict(lr=1e-4))
