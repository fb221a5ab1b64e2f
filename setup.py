from setuptools import find_packages, setup

# Exact versions live in requirements/pins.txt (used by tools/setup_env.sh as constraints).
setup(
    name='odconv_mmdet',
    version='0.1.0',
    description='ODConv (Omni-Dimensional Dynamic Convolution) for MMDetection 3.x',
    packages=find_packages(include=['odconv_mmdet', 'odconv_mmdet.*']),
    license='Apache-2.0',
    python_requires='>=3.9',
    # torch 2.0 is the oldest the layer is tested on (.ci/run: the layer tests on torch 2.0.1).
    # An installed torch that satisfies this is left alone: GPU users keep their CUDA build.
    install_requires=['torch>=2.0', 'numpy'],
    extras_require={
        'mmdet': ['mmengine', 'mmcv', 'mmdet', 'pycocotools'],
        # pretraining OD backbones with mmpretrain (configs/odconv_imagenet, configs/shapes_cls);
        # mmpretrain needs torchvision (requirements/pins-users-stack.txt: a pair that loads together)
        'mmpretrain': ['mmengine', 'mmcv', 'mmdet', 'pycocotools', 'mmpretrain', 'torchvision'],
        'tests': ['mmengine', 'mmcv', 'mmdet', 'pycocotools', 'pytest', 'onnx', 'onnxruntime'],
    },
)
