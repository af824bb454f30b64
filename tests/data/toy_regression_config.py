# A tiny mmengine config for testing the training tools; FP16 and NCCL as the real configs have.
custom_imports = dict(imports=['toy_modules'], allow_failed_imports=False)
default_scope = 'mmengine'
model = dict(type='MMMambaTestRegressor')
train_dataloader = dict(
    dataset=dict(type='MMMambaTestDataset'),
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    batch_size=8,
    num_workers=0)
train_cfg = dict(by_epoch=True, max_epochs=2)
optim_wrapper = dict(
    type='AmpOptimWrapper', loss_scale='dynamic', optimizer=dict(type='AdamW', lr=0.05))
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1), logger=dict(type='LoggerHook', interval=1))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='nccl'))
randomness = dict(seed=0)
log_level = 'INFO'
