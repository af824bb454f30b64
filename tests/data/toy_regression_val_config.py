# The toy regression config with validation (MSE) and a slowed-down loop, for interruption tests.
_base_ = './toy_regression_config.py'
train_cfg = dict(max_epochs=6, val_interval=6)
val_dataloader = dict(
    dataset=dict(type='MMMambaTestDataset'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    batch_size=8,
    num_workers=0)
val_evaluator = dict(type='MMMambaTestMSE')
val_cfg = dict()
custom_hooks = [dict(type='MMMambaTestSlowDownHook', seconds=0.2)]
