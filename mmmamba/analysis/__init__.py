"""Representation analysis of visual Mamba: hidden attention matrices, their ranks, and the
Binary-AUC of activation maps (Yang et al., "RNN as Linear Transformer: A Closer Investigation
into Representational Potentials of Visual Mamba Models")."""
from .binary_auc import (BinaryAUCMetric, binary_auc, foreground_mask, image_auc,  # noqa: F401
                         resize_map)
from .hidden_attention import (HiddenAttention, MixerRecord, capture_mixer_inputs,  # noqa: F401
                               direction_orders, find_mixers, linear_attention_matrix,
                               mixer_hidden_attention, scan_matrices, softmax_attention_matrix,
                               ssm_matrix)
from .maps import (MAP_SOURCES, ActivationMapper, activation_maps, load_backbone,  # noqa: F401
                   load_image, run_all_layers)
from .rank import block_ranks, numerical_rank, rank_summary  # noqa: F401
