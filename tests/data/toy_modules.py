"""A tiny regression model and dataset for tests of the training tools (not part of mmmamba)."""
import torch
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, MODELS
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
