from .mambaout import MambaOut, convert_mambaout

__all__ = ['MambaOut', 'convert_mambaout']
