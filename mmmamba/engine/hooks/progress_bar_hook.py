"""A progress bar over the val/test set, on top of the logger's periodic lines."""
import sys
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.utils import ProgressBar

from mmmamba.registry import HOOKS


@HOOKS.register_module()
class EvalProgressBarHook(Hook):
    """Draws mmengine's ``ProgressBar`` (done/total, rate, ETA) while validating or testing.

    Only the main process draws; the bar counts its own batches.
    """

    priority = 'LOW'

    def __init__(self) -> None:
        self.bar: Optional[ProgressBar] = None

    def _start(self, runner, loop_name: str) -> None:
        loop = getattr(runner, f'{loop_name}_loop')
        # The current sys.stdout, not the one ProgressBar bound when mmengine was imported.
        self.bar = ProgressBar(len(loop.dataloader), file=sys.stdout) if is_main_process() else None

    def _advance(self) -> None:
        if self.bar is not None:
            self.bar.update()

    def _finish(self) -> None:
        if self.bar is not None:
            self.bar.file.write('\n')
            self.bar = None

    def before_val_epoch(self, runner) -> None:
        self._start(runner, 'val')

    def before_test_epoch(self, runner) -> None:
        self._start(runner, 'test')

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._advance()

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._advance()

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._finish()

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._finish()
