import os
import os.path as osp
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.develop import develop

ROOT = osp.dirname(osp.abspath(__file__))
# What an OpenMMLab package carries beside its code, under <package>/.mim/ (as mmdet and
# mmpretrain do): mim and users find the configs, tools and model index of an installed package there.
MIM_CONTENT = ('configs', 'tools', 'model-index.yml')
MIM_DIR = osp.join('odconv_mmdet', '.mim')


def link_mim_content():
    """Editable installs (PEP 660 and ``setup.py develop``): odconv_mmdet/.mim/ in the checkout
    holds relative links to the checkout's own configs, tools and model-index.yml."""
    mim = osp.join(ROOT, MIM_DIR)
    os.makedirs(mim, exist_ok=True)
    for name in MIM_CONTENT:
        target = osp.join(mim, name)
        if osp.islink(target) or osp.isfile(target):
            os.remove(target)
        elif osp.isdir(target):
            raise RuntimeError(f'{target} is a real folder; remove it (odconv_mmdet/.mim holds links only)')
        os.symlink(osp.relpath(osp.join(ROOT, name), mim), target)


class BuildPyWithMim(build_py):
    """Wheels get copies of the configs, tools and model-index.yml in odconv_mmdet/.mim/; an
    editable build links them in the checkout instead (its package is the checkout's)."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            link_mim_content()
            return
        for name in MIM_CONTENT:
            source = osp.join(ROOT, name)
            target = osp.join(self.build_lib, MIM_DIR, name)
            if not osp.exists(source):
                raise FileNotFoundError(f'setup.py: {name} is missing from the source tree; build from a '
                                        'checkout or from the sdist, which carry it')
            if osp.isdir(source):
                shutil.copytree(source, target, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'),
                                dirs_exist_ok=True)
            else:
                os.makedirs(osp.dirname(target), exist_ok=True)
                shutil.copyfile(source, target)


class DevelopWithMim(develop):

    def run(self):
        link_mim_content()
        super().run()


# Exact versions live in requirements/pins.txt (used by tools/setup_env.sh as constraints).
setup(
    name='odconv_mmdet',
    version='0.1.0',
    description='ODConv (Omni-Dimensional Dynamic Convolution) for MMDetection 3.x',
    packages=find_packages(include=['odconv_mmdet', 'odconv_mmdet.*']),
    cmdclass={'build_py': BuildPyWithMim, 'develop': DevelopWithMim},
    license='Apache-2.0',
    python_requires='>=3.9',
    # torch 2.0 is the oldest the layer is tested on (.ci/run: the layer tests on torch 2.0.1).
    # An installed torch that satisfies this is left alone: GPU users keep their CUDA build.
    install_requires=['torch>=2.0', 'numpy'],
    extras_require={
        # training and testing detectors (every config in configs/ but the mmpretrain ones)
        'mmdet': ['mmengine', 'mmcv', 'mmdet', 'pycocotools'],
        # pretraining OD backbones with mmpretrain (configs/odconv_imagenet, configs/shapes_cls);
        # mmpretrain needs torchvision (requirements/pins-users-stack.txt: a pair that loads together)
        'mmpretrain': ['mmengine', 'mmcv', 'mmdet', 'pycocotools', 'mmpretrain', 'torchvision'],
        # `mim train / test / search` on the installed package
        'mim': ['openmim'],
        # exporting to ONNX (tools/deployment/export_onnx.py)
        'onnx': ['onnx', 'onnxruntime'],
        'tests': ['mmengine', 'mmcv', 'mmdet', 'pycocotools', 'pytest', 'onnx', 'onnxruntime'],
    },
)
