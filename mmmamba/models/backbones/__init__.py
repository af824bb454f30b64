from .base import HierarchicalBackbone, MambaBackbone
from .mambaout import MambaOut, convert_mambaout
from .vim import MambaReg, Vim, convert_vim
from .vmamba import VMamba, convert_vmamba

__all__ = [
    'MambaBackbone', 'HierarchicalBackbone', 'MambaOut', 'convert_mambaout', 'VMamba',
    'convert_vmamba', 'Vim', 'MambaReg', 'convert_vim'
]
