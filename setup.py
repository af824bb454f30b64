"""Installation of mmmamba: MambaOut, VMamba, Vim and MambaReg backbones for OpenMMLab."""
import re
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def read_version() -> str:
    text = (ROOT / 'mmmamba' / 'version.py').read_text()
    return re.search(r"__version__ = '([^']+)'", text).group(1)


def read_requirements(name: str) -> list:
    lines = (ROOT / 'requirements' / name).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith('#')]


setup(
    name='mmmamba',
    version=read_version(),
    description='MambaOut, VMamba, Vim and MambaReg backbones for mmdet, mmseg and mmpretrain',
    long_description=(ROOT / 'README.md').read_text() if (ROOT / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    python_requires='>=3.9',
    # Ranges a user may install on their own machine (e.g. a GPU box with prebuilt mmcv wheels);
    # requirements/*.txt hold the exact pins that tools/bootstrap.sh installs and CI tests.
    install_requires=[
        'torch>=2.0', 'torchvision', 'mmcv>=2.0.0,<2.2.0', 'mmengine>=0.10.0,<1.0', 'mmdet>=3.3.0,<3.4',
        'mmsegmentation>=1.2.2,<1.3', 'mmpretrain>=1.2.0,<1.3', 'timm>=1.0.9', 'pycocotools',
        'ftfy', 'regex', 'setuptools<81'
    ],
    extras_require={
        # GPU machines only: mamba-ssm's fused selective-scan kernel.
        'cuda': ['mamba-ssm>=2.2', 'causal-conv1d>=1.4'],
        'dev': read_requirements('tests.txt'),
    },
    license='Apache License 2.0',
)
