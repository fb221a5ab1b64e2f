from setuptools import find_packages, setup

# Exact versions live in requirements/pins.txt (used by tools/setup_env.sh as constraints).
setup(
    name='odconv_mmdet',
    version='0.1.0',
    description='ODConv (Omni-Dimensional Dynamic Convolution) for MMDetection 3.x',
    packages=find_packages(include=['odconv_mmdet', 'odconv_mmdet.*']),
    license='Apache-2.0',
    python_requires='>=3.9',
    install_requires=['torch', 'numpy'],
    extras_require={
        'mmdet': ['mmengine', 'mmcv', 'mmdet', 'pycocotools'],
        'tests': ['mmengine', 'mmcv', 'mmdet', 'pycocotools', 'pytest', 'onnx', 'onnxruntime'],
    },
)
