from .dino_teacher_temp_hook import DINOTeacherTempWarmupHook
from .input_check_hook import InputCheckHook
from .progress_bar_hook import EvalProgressBarHook

__all__ = ['InputCheckHook', 'EvalProgressBarHook', 'DINOTeacherTempWarmupHook']
