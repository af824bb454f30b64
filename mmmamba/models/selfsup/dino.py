"""DINO self-supervised pre-training (Caron et al., "Emerging Properties in Self-Supervised
Vision Transformers", https://arxiv.org/abs/2104.14294) for any mmmamba backbone.

mmpretrain 1.2 ships the pieces around it (``BaseSelfSupervisor``, ``SelfSupDataPreprocessor``,
the ``MultiView`` multi-crop wrapper and the BYOL-style colour/blur/solarize transforms) but not
DINO itself (it lives in the repository's ``projects/``, outside the package). This file adds
the three model parts; the teacher-temperature warm-up is ``mmmamba.DINOTeacherTempWarmupHook``.

Checkpoint key layout of :class:`DINO` (chosen so a DINO checkpoint hands off like a classifier)::

    backbone.*          the momentum TEACHER's backbone: what DINO releases and evaluates, what
                        ``init_cfg=dict(type='Pretrained', prefix='backbone.')`` of the mmmamba
                        det/seg/linear-probe configs loads, unchanged
    neck.*              the teacher's projection head (DINONeck, plus a pooling neck if any)
    student.backbone.*  the student (trained by the optimizer)
    student.neck.*
    head.center         the centering vector of the loss

(The student-at-``backbone.`` layout of mmpretrain's project would make ``prefix='backbone.'``
load the student silently.)
"""
import copy
import math
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import all_reduce
from mmengine.logging import MessageHub
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.selfsup.base import BaseSelfSupervisor

from mmmamba.registry import MODELS


@MODELS.register_module()
class DINONeck(BaseModule):
    """DINO's projection head: a 3-layer MLP (GELU, no norm) down to a bottleneck, L2
    normalisation, then a weight-normalised linear layer onto ``out_channels`` prototypes.

    With ``norm_last_layer=True`` (the paper's default) the weight norm's gain is fixed to 1,
    so each prototype row is the unit vector of its direction: ``F.linear(x, normalize(W))``.

    Args:
        in_channels (int): Width of the global representation.
        hidden_channels (int): Width of the two hidden layers. Defaults to 2048.
        bottleneck_channels (int): Width of the bottleneck. Defaults to 256.
        out_channels (int): Number of prototypes. Defaults to 65536.
        norm_last_layer (bool): Fix the last layer's gain to 1. Defaults to True.
        use_bn (bool): BatchNorm after the two hidden linear layers (the paper code's
            ``use_bn_in_head``). Defaults to False (its ViT setting).
        init_cfg (dict, optional): Defaults to truncated normal (std 0.02) on the linear layers,
            zero biases, as in the paper's code.
    """

    def __init__(self,
                 in_channels: int,
                 hidden_channels: int = 2048,
                 bottleneck_channels: int = 256,
                 out_channels: int = 65536,
                 norm_last_layer: bool = True,
                 use_bn: bool = False,
                 init_cfg: Optional[dict] = dict(
                     type='TruncNormal', layer='Linear', std=0.02, bias=0.)) -> None:
        super().__init__(init_cfg=init_cfg)

        def hidden(width_in: int) -> List[nn.Module]:
            layers = [nn.Linear(width_in, hidden_channels)]
            if use_bn:
                layers.append(nn.BatchNorm1d(hidden_channels))
            return layers + [nn.GELU()]

        self.mlp = nn.Sequential(*hidden(in_channels), *hidden(hidden_channels),
                                 nn.Linear(hidden_channels, bottleneck_channels))
        # the direction v of weight norm W = g * v / ||v||, one row per prototype
        self.last_layer = nn.Parameter(torch.empty(out_channels, bottleneck_channels))
        self.last_layer_gain = nn.Parameter(
            torch.ones(out_channels, 1), requires_grad=not norm_last_layer)
        trunc_normal_(self.last_layer, std=0.02)
        # While True, the last layer's gradients are zero (DINO sets it in its first epochs).
        # Zeroed rather than cut, so distributed runs see the same gradients every step; with
        # no gradient yet, AdamW leaves the direction alone (weight decay only rescales rows
        # that are normalised anyway).
        self.freeze_last_layer = False
        for param in (self.last_layer, self.last_layer_gain):
            if param.requires_grad:
                param.register_hook(self._last_layer_grad)

    def _last_layer_grad(self, grad: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(grad) if self.freeze_last_layer else grad

    def forward(self, inputs: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
        """Logits ``(B, out_channels)`` of the global representation ``(B, C)`` (the last
        entry when a backbone/neck tuple is given)."""
        x = inputs[-1] if isinstance(inputs, (tuple, list)) else inputs
        if x.dim() != 2:
            raise ValueError(f'DINONeck needs a global representation (B, C), got a tensor of '
                             f'shape {tuple(x.shape)}; for a feature map put a pooling neck '
                             "first, e.g. neck=[dict(type='GlobalAveragePooling'), "
                             "dict(type='mmmamba.DINONeck', ...)]")
        x = F.normalize(self.mlp(x), dim=-1)
        weight = self.last_layer_gain * F.normalize(self.last_layer, dim=1)
        return F.linear(x, weight)


@MODELS.register_module()
class DINOHead(BaseModule):
    """DINO's loss: cross-entropy between the centred, sharpened teacher distribution of each
    global crop and the student distribution of every *other* crop, averaged over the pairs;
    the centre follows the teacher's batch mean with momentum ``center_momentum``.

    Args:
        out_channels (int): Number of prototypes. Defaults to 65536.
        student_temp (float): Student temperature. Defaults to 0.1.
        teacher_temp (float): Teacher temperature; ``DINOTeacherTempWarmupHook`` sets it each
            epoch. Defaults to 0.04 (the start of the paper's warm-up).
        center_momentum (float): Momentum of the centre. Defaults to 0.9.
    """

    def __init__(self,
                 out_channels: int = 65536,
                 student_temp: float = 0.1,
                 teacher_temp: float = 0.04,
                 center_momentum: float = 0.9) -> None:
        super().__init__()
        self.student_temp = student_temp
        self.teacher_temp = teacher_temp
        self.center_momentum = center_momentum
        self.register_buffer('center', torch.zeros(1, out_channels))

    def loss(self, student_logits: Sequence[torch.Tensor],
             teacher_logits: Sequence[torch.Tensor]) -> torch.Tensor:
        """The loss, then the centre update.

        Args:
            student_logits (list[Tensor]): ``(B, K)`` per crop, the global crops first in the
                teacher's order.
            teacher_logits (list[Tensor]): ``(B, K)`` per global crop.
        """
        teacher_probs = [F.softmax((t - self.center) / self.teacher_temp, dim=-1)
                         for t in teacher_logits]
        student_log_probs = [F.log_softmax(s / self.student_temp, dim=-1) for s in student_logits]
        total, pairs = 0., 0
        for i, q in enumerate(teacher_probs):
            for j, log_p in enumerate(student_log_probs):
                if i == j:  # the same view seen by both
                    continue
                total = total + torch.sum(-q * log_p, dim=-1).mean()
                pairs += 1
        self.update_center(torch.cat(list(teacher_logits)))
        return total / pairs

    @torch.no_grad()
    def update_center(self, teacher_logits: torch.Tensor) -> None:
        batch_center = teacher_logits.float().mean(dim=0, keepdim=True)
        all_reduce(batch_center, op='mean')  # no-op outside distributed runs
        self.center.mul_(self.center_momentum).add_(batch_center, alpha=1 - self.center_momentum)


@MODELS.register_module()
class DINO(BaseSelfSupervisor):
    """DINO: a student and a momentum teacher of the same architecture; the teacher sees only
    the global crops, the student all of them (see the module docstring for the key layout).

    The teacher's weights follow the student's after every optimizer step,
    ``teacher = m * teacher + (1 - m) * student``, with ``m`` rising from ``base_momentum`` to 1
    on a cosine over the whole run, ``m(k) = 1 - (1 - base_momentum) * (cos(pi k / K) + 1) / 2``
    after step ``k`` of ``K`` — the schedule of mmpretrain's ``CosineEMA`` (whose wrapper keys
    we do not use, see above). The update for step ``k - 1`` is applied at the start of
    iteration ``k``'s forward (read from the runner's ``MessageHub``), so it also happens under
    DistributedDataParallel, which bypasses a model's ``train_step``. The teacher stays in eval
    mode (no drop path, as the paper's teacher is built without it) and gets no gradients.

    Args:
        backbone (dict): The backbone, returning the global representation ``(B, C)`` last
            (e.g. ``Vim(out_type='cls_token')``, ``MambaReg(out_type='registers')``,
            ``MambaOut(gap_before_final_norm=True)``) or a map for a pooling neck.
        neck (dict | list[dict]): ``DINONeck``, after a pooling neck for a map.
        head (dict): ``DINOHead``.
        num_global_crops (int): The first crops of a batch that the teacher sees. Defaults to 2.
        base_momentum (float): The teacher momentum at the start. Defaults to 0.996.
        freeze_last_layer_epochs (int): Epochs at the start during which the student's
            prototypes (``DINONeck``'s last layer) get no update, the paper code's
            ``freeze_last_layer`` (1 for ViT-S); it keeps the prototypes from chasing the
            randomly initialised features. Defaults to 1.
        data_preprocessor (dict, optional): Defaults to ``SelfSupDataPreprocessor``.
        init_cfg (dict, optional): Defaults to None.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Union[dict, List[dict]],
                 head: dict,
                 num_global_crops: int = 2,
                 base_momentum: float = 0.996,
                 freeze_last_layer_epochs: int = 1,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not 0 <= base_momentum <= 1:
            raise ValueError(f'base_momentum must be in [0, 1], got {base_momentum}')
        if freeze_last_layer_epochs < 0:
            raise ValueError(f'freeze_last_layer_epochs must be >= 0, got '
                             f'{freeze_last_layer_epochs}')
        self.num_global_crops = num_global_crops
        self.base_momentum = base_momentum
        self.freeze_last_layer_epochs = freeze_last_layer_epochs
        # The modules built by the base class become the student; the teacher is a copy
        # registered at `backbone`/`neck` (re-copied from the student in init_weights()).
        self.student = nn.ModuleDict(dict(backbone=self.backbone, neck=self.neck))
        self.backbone = copy.deepcopy(self.student.backbone)
        self.neck = copy.deepcopy(self.student.neck)
        for param in self.teacher_parameters():
            param.requires_grad = False
        # the student's projection heads, whose prototypes freeze_last_layer_epochs holds still
        self._student_heads = [m for m in self.student.neck.modules() if isinstance(m, DINONeck)]

    def teacher_parameters(self):
        yield from self.backbone.parameters()
        yield from self.neck.parameters()

    def init_weights(self) -> None:
        """Initialise the student, then start the teacher as its exact copy."""
        super().init_weights()
        self.backbone.load_state_dict(self.student.backbone.state_dict())
        self.neck.load_state_dict(self.student.neck.state_dict())

    def train(self, mode: bool = True) -> 'DINO':
        super().train(mode)
        self.backbone.eval()
        self.neck.eval()
        return self

    def momentum_at(self, step: int, total_steps: int) -> float:
        """The teacher momentum after optimizer step ``step`` of ``total_steps``."""
        cosine = (math.cos(math.pi * step / total_steps) + 1) / 2
        return 1 - (1 - self.base_momentum) * cosine

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """``teacher = momentum * teacher + (1 - momentum) * student``, parameters and buffers."""
        pairs = ((self.backbone, self.student.backbone), (self.neck, self.student.neck))
        for teacher, student in pairs:
            for t, s in zip(teacher.parameters(), student.parameters()):
                t.mul_(momentum).add_(s.detach(), alpha=1 - momentum)
            for t, s in zip(teacher.buffers(), student.buffers()):
                if t.is_floating_point():
                    t.mul_(momentum).add_(s, alpha=1 - momentum)
                else:
                    t.copy_(s)

    def _apply_runner_schedules(self) -> None:
        hub = MessageHub.get_current_instance()
        step, total = hub.get_info('iter'), hub.get_info('max_iters')
        if step is None or total is None:
            raise RuntimeError(
                "DINO trains under mmengine's Runner, which records 'iter' and 'max_iters' in "
                'the MessageHub for the teacher momentum schedule; outside it, call '
                "MessageHub.get_current_instance().update_info('iter', k) and "
                "update_info('max_iters', K) first")
        if step > 0:  # the student took step `step - 1`; at step 0 the teacher is its copy
            self.update_teacher(self.momentum_at(step - 1, total))
        frozen = (hub.get_info('epoch') or 0) < self.freeze_last_layer_epochs
        for head in self._student_heads:
            head.freeze_last_layer = frozen

    def loss(self, inputs: List[torch.Tensor], data_samples=None, **kwargs) -> Dict[str,
                                                                                   torch.Tensor]:
        """The DINO loss of a batch of crops.

        Args:
            inputs (list[Tensor]): One ``(B, 3, H, W)`` batch per crop, the
                ``num_global_crops`` global crops first; crops of one size are run together.
        """
        if not isinstance(inputs, (list, tuple)) or len(inputs) <= self.num_global_crops:
            got = (f'{len(inputs)} crops' if isinstance(inputs, (list, tuple)) else
                   f'a {type(inputs).__name__}')
            raise ValueError(f'DINO needs a list of more than num_global_crops='
                             f'{self.num_global_crops} crops (MultiView in the pipeline), got '
                             f'{got}')
        if self.training:
            self._apply_runner_schedules()
        with torch.no_grad():
            teacher_logits = self._run(self.backbone, self.neck, inputs[:self.num_global_crops])
        student_logits = self._run(self.student.backbone, self.student.neck, inputs)
        return dict(loss=self.head.loss(student_logits, teacher_logits))

    @staticmethod
    def _run(backbone: nn.Module, neck: nn.Module,
             crops: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """Logits per crop; consecutive crops of one size go through the network as one batch."""
        logits, start = [], 0
        while start < len(crops):
            end = start
            while end < len(crops) and crops[end].shape[-2:] == crops[start].shape[-2:]:
                end += 1
            batch = torch.cat(list(crops[start:end]))
            logits.extend(neck(backbone(batch)).chunk(end - start))
            start = end
        return logits
