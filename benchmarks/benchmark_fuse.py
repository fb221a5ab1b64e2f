"""Inference time saved by ``odconv_mmdet.fuse_conv_bn`` on an ODConv backbone.

ODResNet-50 (K = 4 by default) at a detection input (800x1333 x ``--scale``, 320x544 by default),
batch 1, eval mode: the model as built, after mmcv's ``fuse_conv_bn`` (static convs and the
attention's fc + bn only) and after ours (every BN after an ODConv too), interleaved in one
process (medians of rotated rounds, benchmarks/benchmark.py). Checks that the three agree first.

    python benchmarks/benchmark_fuse.py --out benchmarks/cpu-2core_fuse.json
"""
import argparse
import copy
import json

import torch

from benchmark import interleaved_medians  # (beside this script)
from mmcv.cnn import fuse_conv_bn as mmcv_fuse_conv_bn
from mmdet.registry import MODELS

import odconv_mmdet
from odconv_mmdet.utils.io import write_atomically


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='work_dirs/benchmark_fuse.json')
    parser.add_argument('--scale', type=float, default=0.4)
    parser.add_argument('--depth', type=int, default=50)
    parser.add_argument('--kernel-num', type=int, default=4)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=15)
    args = parser.parse_args(argv)
    if args.scale <= 0 or args.batch < 1 or args.repeats < 1:
        parser.error('--scale must be > 0, --batch and --repeats >= 1')
    height, width = (round(800 * args.scale / 32) * 32, round(1333 * args.scale / 32) * 32)
    torch.manual_seed(0)
    model = MODELS.build(dict(type='ODResNet', depth=args.depth, kernel_num=args.kernel_num))
    model.eval()
    models = {'unfused': model, 'mmcv_fuse_conv_bn': mmcv_fuse_conv_bn(copy.deepcopy(model)),
              'odconv_mmdet_fuse_conv_bn': odconv_mmdet.fuse_conv_bn(copy.deepcopy(model))}
    x = torch.randn(args.batch, 3, height, width)
    with torch.inference_mode():
        reference = model(x)
        for name, m in models.items():
            for a, b in zip(m(x), reference):
                assert torch.allclose(a, b, rtol=1e-3, atol=1e-4 * b.abs().max().item()), name
        norms = {name: sum(isinstance(mod, torch.nn.modules.batchnorm._BatchNorm) for mod in m.modules())
                 for name, m in models.items()}
        seconds = interleaved_medians([lambda m=m: m(x) for m in models.values()], args.repeats, torch.device('cpu'))
    ms = dict(zip(models, (s * 1e3 for s in seconds)))
    result = dict(device='cpu', torch=torch.__version__, threads=torch.get_num_threads(), depth=args.depth,
                  kernel_num=args.kernel_num, batch=args.batch, input=[height, width], repeats=args.repeats,
                  batch_norms_left=norms, inference_ms=ms,
                  fused_over_unfused={k: v / ms['unfused'] for k, v in ms.items() if k != 'unfused'})
    print(f'ODResNet-{args.depth} K={args.kernel_num}, batch {args.batch} at {height}x{width}, '
          f'cpu, torch {torch.__version__}, {torch.get_num_threads()} threads: inference ms (BatchNorms left)')
    for name in models:
        print(f'  {name:<28} {ms[name]:8.1f}  ({norms[name]})  {ms[name] / ms["unfused"]:.3f}x')
    def write(path):
        with open(path, 'w') as f:
            json.dump(result, f, indent=1)
    write_atomically(args.out, write)
    print(f'written: {args.out}')


if __name__ == '__main__':
    main()
