"""Layers shared by the backbone families: stems, downsamples, norms, SSM parameters."""
from .conv import CausalDepthwiseConv1d
from .embed import ConvDownsample, ConvStem, PatchEmbed, PatchMerging
from .norm import LayerNorm2d, Linear2d, to_channels_first, to_channels_last
from .ssm import SSMParameters, dt_rank_for

__all__ = [
    'ConvStem', 'ConvDownsample', 'PatchEmbed', 'PatchMerging', 'LayerNorm2d', 'Linear2d',
    'to_channels_first', 'to_channels_last', 'SSMParameters', 'dt_rank_for',
    'CausalDepthwiseConv1d'
]
