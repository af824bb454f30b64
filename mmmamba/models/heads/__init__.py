from .mambaout_head import MambaOutHead

__all__ = ['MambaOutHead']
