from .dino import DINO, DINOHead, DINONeck

__all__ = ['DINO', 'DINONeck', 'DINOHead']
