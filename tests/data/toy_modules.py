"""A tiny regression model and dataset for tests of the training tools (not part of mmmamba)."""
import time

import torch
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, HOOKS, METRICS, MODELS
from torch.utils.data import Dataset


@MODELS.register_module(name='MMMambaTestRegressor', force=True)
class Regressor(BaseModel):
    """y = w·x + b fitted with MSE; inputs (B, 4), targets (B, 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)

    def forward(self, inputs, targets=None, mode='tensor'):
        inputs = torch.stack(inputs) if isinstance(inputs, (list, tuple)) else inputs
        pred = self.linear(inputs)
        if mode == 'loss':
            targets = torch.stack(targets) if isinstance(targets, (list, tuple)) else targets
            return dict(loss=torch.nn.functional.mse_loss(pred, targets))
        return pred


@DATASETS.register_module(name='MMMambaTestDataset', force=True)
class LinearData(Dataset):
    """64 deterministic samples of y = x·(1, -2, 3, 0.5) + 1."""

    def __init__(self, length: int = 64) -> None:
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(length, 4, generator=gen)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [3.0], [0.5]]) + 1.0

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, idx: int) -> dict:
        return dict(inputs=self.x[idx], targets=self.y[idx])


@METRICS.register_module(name='MMMambaTestMSE', force=True)
class MeanSquaredError(BaseMetric):
    """Mean squared error of the regressor's predictions (lower is better)."""

    def process(self, data_batch, data_samples) -> None:
        # The evaluator hands over the predictions as a list of per-sample tensors.
        preds = torch.stack(list(data_samples))
        targets = data_batch['targets']
        targets = torch.stack(targets) if isinstance(targets, (list, tuple)) else targets
        self.results.append(((preds - targets)**2).sum().item())

    def compute_metrics(self, results) -> dict:
        return dict(mse=sum(results) / 64)


@HOOKS.register_module(name='MMMambaTestSlowDownHook', force=True)
class SlowDownHook(Hook):
    """Sleeps after every training iteration, so a test can kill a run mid-way."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        time.sleep(self.seconds)
