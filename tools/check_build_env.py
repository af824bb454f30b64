"""Checks the bootstrap runs between its steps (standard library + ``packaging`` only).

    python tools/check_build_env.py --constraints requirements/constraints.txt
    python tools/check_build_env.py --constraints requirements/constraints.txt --mmcv-build

``--constraints``: every installed package named in the file satisfies its pin. The bootstrap
runs this after each install step, so a step that silently undoes an earlier pin (torch 2.14.1
upgrading setuptools past 81, say) stops the bootstrap right there, naming the package.

``--mmcv-build``: the preconditions of building mmcv 2.1.0's compiled ops from its sdist, checked
before the long build starts: ``pkg_resources`` importable (mmcv's setup.py imports it), torch
importable with its C++ headers, ninja and wheel present, a C++ compiler that accepts
``-std=c++20`` (torch >= 2.10's headers need it).

Prints one line per problem, with the fix, and exits 1 if there is any.
"""
import argparse
import importlib
import importlib.metadata as metadata
import os
import shutil
import subprocess
import sys
import tempfile


def read_constraints(path: str) -> list:
    """Requirement strings of a constraints file (comments and blank lines dropped)."""
    with open(path) as f:
        lines = [ln.split('#', 1)[0].strip() for ln in f]
    return [ln for ln in lines if ln]


def installed(name: str) -> str:
    """``setuptools 84.2.1 is installed in /venv/lib/python3.11/site-packages``."""
    dist = metadata.distribution(name)
    return f'{name} {dist.version} is installed in {dist.locate_file("")}'


def check_constraints(path: str) -> list:
    try:
        from packaging.requirements import Requirement
    except ImportError as exc:
        return [f"'packaging' does not import in {sys.executable} ({exc}). "
                f'Fix: {sys.executable} -m pip install packaging']
    problems = []
    for line in read_constraints(path):
        req = Requirement(line)
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            continue  # not installed yet: a later step installs it under the same constraint
        if not req.specifier.contains(version, prereleases=True):
            problems.append(
                f'{installed(req.name)} (interpreter {sys.executable}), but {path} pins {line}. '
                f"Fix: {sys.executable} -m pip install -c {path} '{line}'")
    return problems


def check_mmcv_build() -> list:
    problems = []
    try:
        importlib.import_module('pkg_resources')
    except ImportError as exc:
        try:
            have = installed('setuptools')
        except metadata.PackageNotFoundError:
            have = 'no setuptools is installed'
        problems.append(
            f"'import pkg_resources' fails in {sys.executable} ({exc}); {have}. mmcv 2.1.0's "
            "setup.py imports pkg_resources. Fix: install a setuptools that ships it: "
            f"{sys.executable} -m pip install 'setuptools<81'")
    for module in ('wheel', 'ninja'):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            problems.append(f"'{module}' does not import in {sys.executable} ({exc}); building "
                            f'mmcv needs it. Fix: {sys.executable} -m pip install {module}')
    try:
        from torch.utils import cpp_extension
    except ImportError as exc:
        problems.append(f"'torch.utils.cpp_extension' does not import in {sys.executable} "
                        f'({exc}); mmcv compiles against torch. '
                        f'Fix: {sys.executable} -m pip install -r requirements/torch.txt')
    else:
        includes = cpp_extension.include_paths()
        if not any(os.path.isfile(os.path.join(d, 'torch', 'extension.h')) for d in includes):
            problems.append(f'the torch of {sys.executable} has no torch/extension.h under its '
                            f'include paths {includes}; mmcv compiles against those headers. '
                            'Fix: install a full torch wheel (requirements/torch.txt)')
    cxx = os.environ.get('CXX') or shutil.which('g++') or shutil.which('c++')
    if not cxx:
        problems.append(f'$CXX is unset and neither g++ nor c++ is on PATH '
                        f"({os.environ.get('PATH', '')}); mmcv compiles C++. "
                        'Fix: apt-get install g++, or set CXX')
    else:
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, 'probe.cpp')
            with open(src, 'w') as f:
                f.write('#include <span>\nint main() { return 0; }\n')
            try:
                proc = subprocess.run(
                    [cxx, '-std=c++20', '-c', src, '-o', os.path.join(tmp, 'p.o')],
                    capture_output=True, text=True)
                error = proc.stderr.strip()[:300] if proc.returncode != 0 else None
            except OSError as exc:
                error = str(exc)
            if error is not None:
                problems.append(f'{cxx} does not compile a C++20 file, which torch >= 2.10 '
                                f'headers need (g++ >= 10): {error}')
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--constraints', required=True, help='pip constraints file')
    parser.add_argument('--mmcv-build', action='store_true', help='also check mmcv build needs')
    args = parser.parse_args()
    problems = check_constraints(args.constraints)
    if args.mmcv_build:
        problems += check_mmcv_build()
    for problem in problems:
        print(f'[check_build_env] {problem}', file=sys.stderr)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
