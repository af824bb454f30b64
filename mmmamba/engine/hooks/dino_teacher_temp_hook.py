"""The teacher-temperature warm-up of DINO (see ``mmmamba/models/selfsup/dino.py``)."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmmamba.registry import HOOKS


@HOOKS.register_module()
class DINOTeacherTempWarmupHook(Hook):
    """Set ``model.head.teacher_temp`` before every training epoch: linear from
    ``warmup_teacher_temp`` at epoch 0 to ``teacher_temp`` at epoch ``warmup_epochs - 1``,
    then constant (the per-epoch schedule of the DINO paper's code, 0.04 -> 0.07 over 30
    epochs for ViT-S).

    Args:
        warmup_teacher_temp (float): Temperature of the first epoch. Defaults to 0.04.
        teacher_temp (float): Temperature after the warm-up. Defaults to 0.07.
        warmup_epochs (int): Length of the warm-up in epochs. Defaults to 30.
    """

    def __init__(self,
                 warmup_teacher_temp: float = 0.04,
                 teacher_temp: float = 0.07,
                 warmup_epochs: int = 30) -> None:
        if warmup_epochs < 0:
            raise ValueError(f'warmup_epochs must be >= 0, got {warmup_epochs}')
        self.warmup_teacher_temp = warmup_teacher_temp
        self.teacher_temp = teacher_temp
        self.warmup_epochs = warmup_epochs

    def temp_at(self, epoch: int) -> float:
        """The teacher temperature of (0-based) ``epoch``."""
        if epoch >= self.warmup_epochs:
            return self.teacher_temp
        if self.warmup_epochs == 1:
            return self.warmup_teacher_temp
        step = (self.teacher_temp - self.warmup_teacher_temp) / (self.warmup_epochs - 1)
        return self.warmup_teacher_temp + step * epoch

    def before_train_epoch(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        head = getattr(model, 'head', None)
        if head is None or not hasattr(head, 'teacher_temp'):
            raise AttributeError(
                f'DINOTeacherTempWarmupHook sets model.head.teacher_temp, but the model '
                f'({type(model).__name__}) has no head with that attribute; use it with '
                "type='mmmamba.DINO' and head=dict(type='mmmamba.DINOHead')")
        head.teacher_temp = self.temp_at(runner.epoch)
