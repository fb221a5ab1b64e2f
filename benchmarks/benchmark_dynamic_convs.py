"""Speed of the dynamic-conv family from one layer (issue 31): attention subsets, CondConv, DyConv.

Per shape, the train step (forward + backward of sum(output)) of every variant, timed in
interleaved rounds (benchmark.interleaved_medians), with the ratio to full ODConv at the same K
(and to a static conv). What is claimed: a layer with fewer attentions costs no more than full
ODConv with its K; CondConv and DyConv cost no more than an ODConv with the same K.

Shapes: 3x3 convs of the comparison's quarter-width ResNet-18 at the classification set's
pretraining batch (64 images of 64 px: 16 x 16 and 8 x 8 maps), a half-width stage-3 conv
at the same batch, and a detection-sized one (batch 2, 64 channels, 100 x 168).

    python benchmarks/benchmark_dynamic_convs.py --out benchmarks/cpu-2core_dynamic_convs.json
"""
import argparse
import json
import os
import platform
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmark import interleaved_medians, train_step  # noqa: E402
from odconv_mmdet.layers import CondConv2d, DyConv2d, ODConv2d  # noqa: E402
from odconv_mmdet.utils.io import write_atomically  # noqa: E402

SHAPES = {  # name: (batch, in = out channels, height, width)
    'quarter-s1_b64_16x16': (64, 16, 16, 16),
    'quarter-s2_b64_8x8': (64, 32, 8, 8),
    'half-s3_b64_4x4': (64, 128, 4, 4),
    'detect_b2_100x168': (2, 64, 100, 168),
}
VARIANTS = {  # name: (builder(channels), the full ODConv it is held against)
    'static': (lambda c: nn.Conv2d(c, c, 3, padding=1, bias=False), None),
    'odconv-1x': (lambda c: ODConv2d(c, c, 3, padding=1, kernel_num=1), None),
    'odconv-1x-spatial': (lambda c: ODConv2d(c, c, 3, padding=1, kernel_num=1, attentions=['spatial']), 'odconv-1x'),
    'odconv-1x-channel': (lambda c: ODConv2d(c, c, 3, padding=1, kernel_num=1, attentions=['channel']), 'odconv-1x'),
    'odconv-1x-filter': (lambda c: ODConv2d(c, c, 3, padding=1, kernel_num=1, attentions=['filter']), 'odconv-1x'),
    'odconv-4x': (lambda c: ODConv2d(c, c, 3, padding=1, kernel_num=4), None),
    'odconv-4x-kernel': (lambda c: ODConv2d(c, c, 3, padding=1, kernel_num=4, attentions=['kernel']), 'odconv-4x'),
    'dyconv-4x': (lambda c: DyConv2d(c, c, 3, padding=1, kernel_num=4), 'odconv-4x'),
    'condconv-4x': (lambda c: CondConv2d(c, c, 3, padding=1, kernel_num=4), 'odconv-4x'),
    'odconv-8x': (lambda c: ODConv2d(c, c, 3, padding=1, kernel_num=8), None),
    'condconv-8x': (lambda c: CondConv2d(c, c, 3, padding=1, kernel_num=8), 'odconv-8x'),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='work_dirs/benchmark_dynamic_convs.json')
    parser.add_argument('--shapes', nargs='+', default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument('--repeats', type=int, default=10)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    rows = []
    print('| shape | variant | train step (ms) | / full ODConv, same K | / static |')
    print('|---|---|---|---|---|')
    for shape in args.shapes:
        batch, channels, height, width = SHAPES[shape]
        x = torch.randn(batch, channels, height, width)
        layers = {name: build(channels).train() for name, (build, _) in VARIANTS.items()}
        times = dict(zip(layers, interleaved_medians([train_step(m, x) for m in layers.values()],
                                                     args.repeats, torch.device('cpu'))))
        for name, seconds in times.items():
            against = VARIANTS[name][1]
            row = dict(shape=shape, variant=name, train_ms=seconds * 1e3, vs_static=seconds / times['static'],
                       vs_full_odconv=None if against is None else seconds / times[against], full_odconv=against)
            rows.append(row)
            ratio = '' if against is None else f'{row["vs_full_odconv"]:.2f} ({against})'
            print(f'| {shape} | {name} | {row["train_ms"]:.2f} | {ratio} | {row["vs_static"]:.2f} |')
    worst = max((r for r in rows if r['vs_full_odconv'] is not None), key=lambda r: r['vs_full_odconv'])
    print(f'largest ratio to full ODConv at the same K: {worst["vs_full_odconv"]:.2f} '
          f'({worst["variant"]} at {worst["shape"]})')
    result = dict(date=time.strftime('%Y-%m-%d'), machine=f'{platform.machine()}, {os.cpu_count()} cores',
                  torch=torch.__version__, threads=torch.get_num_threads(), repeats=args.repeats, rows=rows)
    def write_json(path):
        with open(path, 'w') as f:
            json.dump(result, f, indent=1)
    write_atomically(args.out, write_json)
    print(f'written {args.out}')


if __name__ == '__main__':
    main()
