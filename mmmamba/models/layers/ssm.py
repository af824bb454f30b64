"""The parameters of a bank of selective state-space models (Mamba-1 SSMs), one per scan direction.

VMamba's SS2D (4 directions) and Vim's bidirectional mixer (2 directions) both run ``K``
selective scans over ``d_inner`` channels, each direction with its own input-dependent
projections and its own ``A``, ``D`` and step-size projection (Gu & Dao, "Mamba",
https://arxiv.org/abs/2312.00752, Sec. 3 and App. D)::

    (dt_low, B, C) = split(x_proj_k(x))            # dt_rank + N + N rows
    dt = softplus(dt_proj_k(dt_low) + dt_bias_k)    # (d_inner, L)
    h_t = exp(dt_t A_k) h_{t-1} + dt_t B_t x_t;  y_t = C_t h_t + D_k x_t,   A_k = -exp(A_log_k)

Initialisation (the Mamba recipe): ``A_log = log(1..N)`` for every channel, ``D = 1``,
``dt_proj`` weight uniform in ``±dt_rank^-0.5``, ``dt_bias`` the inverse softplus of step sizes
drawn log-uniformly in ``[dt_min, dt_max]`` (floored at ``dt_init_floor``), ``x_proj`` as
``nn.Linear``'s default. ``A_log`` and ``D`` carry ``_no_weight_decay = True``; the configs
exclude them from weight decay.
"""
import math
from typing import Tuple

import torch
import torch.nn as nn

from mmmamba.ops import selective_scan


def dt_rank_for(channels: int) -> int:
    """Rank of the step-size projection, ``ceil(channels / 16)`` (Mamba's ``dt_rank='auto'``)."""
    return math.ceil(channels / 16)


class SSMParameters(nn.Module):
    """Projections, ``A``, ``D`` and step sizes of ``num_directions`` selective scans.

    Parameters (stacked over directions ``k``)::

        x_proj_weight   (K, dt_rank + 2N, d_inner)
        dt_proj_weight  (K, d_inner, dt_rank)
        dt_proj_bias    (K, d_inner)
        A_log           (K * d_inner, N)
        D               (K * d_inner,)

    Args:
        d_inner (int): Channels of each scan.
        d_state (int): State size N per channel.
        dt_rank (int): Rank of the step-size projection.
        num_directions (int): Number K of scans (directions).
        dt_min (float): Smallest initial step size. Defaults to 1e-3.
        dt_max (float): Largest initial step size. Defaults to 0.1.
        dt_init_floor (float): Floor of the initial step sizes. Defaults to 1e-4.
        dt_scale (float): Scale of the ``dt_proj`` weight's init range. Defaults to 1.0.
    """

    def __init__(self,
                 d_inner: int,
                 d_state: int,
                 dt_rank: int,
                 num_directions: int,
                 dt_min: float = 1e-3,
                 dt_max: float = 0.1,
                 dt_init_floor: float = 1e-4,
                 dt_scale: float = 1.0) -> None:
        super().__init__()
        if not 0 < dt_min <= dt_max:
            raise ValueError(f'need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}')
        self.d_inner, self.d_state, self.dt_rank = d_inner, d_state, dt_rank
        self.num_directions = num_directions
        self.dt_min, self.dt_max = dt_min, dt_max
        self.dt_init_floor, self.dt_scale = dt_init_floor, dt_scale
        K = num_directions
        self.x_proj_weight = nn.Parameter(torch.empty(K, dt_rank + 2 * d_state, d_inner))
        self.dt_proj_weight = nn.Parameter(torch.empty(K, d_inner, dt_rank))
        self.dt_proj_bias = nn.Parameter(torch.empty(K, d_inner))
        self.A_log = nn.Parameter(torch.empty(K * d_inner, d_state))
        self.D = nn.Parameter(torch.empty(K * d_inner))
        self.A_log._no_weight_decay = True
        self.D._no_weight_decay = True
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        # nn.Linear's default: uniform in +-1/sqrt(fan_in)
        bound = 1 / math.sqrt(self.d_inner)
        self.x_proj_weight.uniform_(-bound, bound)
        bound = self.dt_rank**-0.5 * self.dt_scale
        self.dt_proj_weight.uniform_(-bound, bound)
        log_dt = torch.empty_like(self.dt_proj_bias, dtype=torch.float64).uniform_(
            math.log(self.dt_min), math.log(self.dt_max))
        dt = log_dt.exp().clamp(min=self.dt_init_floor)
        # inverse of softplus: dt + log(1 - exp(-dt))
        self.dt_proj_bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        A = torch.arange(1, self.d_state + 1, dtype=torch.float32)
        self.A_log.copy_(torch.log(A).expand_as(self.A_log))
        self.D.fill_(1.)

    def project(self, xs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Input-dependent step sizes (before bias and softplus), ``B`` and ``C``.

        Args:
            xs (torch.Tensor): ``(batch, K, d_inner, L)``, direction ``k`` in its scan order.

        Returns:
            tuple[torch.Tensor]: ``dt`` ``(batch, K, d_inner, L)``, ``B`` and ``C``
            ``(batch, K, N, L)``.
        """
        # Channels stay the contiguous dimension of every product and of its gradients: for a
        # sequence-major xs (the Vim mixer's, (batch, L, K, d_inner) in memory) nothing is
        # transposed, and dt comes out sequence-major, as the torch scan reads it.
        x_dbl = torch.einsum('blkd,kcd->blkc', xs.permute(0, 3, 1, 2), self.x_proj_weight)
        dt, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=3)
        dt = torch.stack(
            [torch.matmul(dt[:, :, k], w.t()) for k, w in enumerate(self.dt_proj_weight)],
            dim=2)  # (batch, L, K, d_inner)
        return dt.permute(0, 2, 3, 1), B.permute(0, 2, 3, 1), C.permute(0, 2, 3, 1)

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        """Run the K scans, each on its own sequence.

        Args:
            xs (torch.Tensor): ``(batch, K, d_inner, L)``.

        Returns:
            torch.Tensor: ``y`` with the ``D`` skip, ``(batch, K, d_inner, L)``, dtype of ``xs``.
        """
        batch, K, d_inner, L = xs.shape
        dt, B, C = self.project(xs)
        # group k of B/C serves channels k*d_inner .. (k+1)*d_inner - 1
        y = selective_scan(
            xs.reshape(batch, K * d_inner, L),
            dt.reshape(batch, K * d_inner, L),
            -torch.exp(self.A_log.float()),
            B,
            C,
            D=self.D.float(),
            delta_bias=self.dt_proj_bias.reshape(-1).float(),
            delta_softplus=True)
        return y.view(batch, K, d_inner, L)
