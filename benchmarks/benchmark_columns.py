"""Times im2col and its adjoint by tap copies (tap_columns.py) against F.unfold / F.fold.

The measurement behind ``tap_copy_width`` in conv_path_policy.py: for 3x3 convs (padding 1,
stride 1) over a range of output widths, the columns with the tap attention applied (unfold,
then a scaling pass; or tap copies that scale while copying) and the fold of a column gradient
with it, interleaved in one process (medians of rotated rounds, as benchmarks/benchmark.py).

    python benchmarks/benchmark_columns.py --out benchmarks/cpu-2core_columns.json
"""
import argparse
import json
import platform

import torch
import torch.nn.functional as F

from benchmark import geomean, interleaved_medians  # (beside this script)
from odconv_mmdet.layers.tap_columns import ConvGeometry, fold_tap_columns, scale_taps, tap_columns
from odconv_mmdet.utils.io import write_atomically

# (batch, channels, size): the main job's stages (128x128 images, half-width ResNet-18),
# ResNet-50 stages at 320x544 input, and widths in between
CASES = [(8, 256, 4), (8, 128, 6), (8, 128, 8), (8, 64, 12), (8, 64, 16), (8, 32, 32),
         (2, 512, 4), (2, 512, 8), (2, 256, 16), (8, 512, 17), (2, 512, 17), (2, 128, 34)]


def time_case(batch, channels, size, repeats):
    torch.manual_seed(0)
    x = torch.randn(batch, channels, size, size)
    spatial = torch.rand(batch, 9)
    copies = ConvGeometry((3, 3), (1, 1), (1, 1), (1, 1), tap_copies=True)
    unfold = ConvGeometry((3, 3), (1, 1), (1, 1), (1, 1), tap_copies=False)
    cols = torch.randn(batch, channels * 9, size * size)
    fns = [lambda: tap_columns(x, copies, spatial),
           lambda: scale_taps(F.unfold(x, 3, padding=1).unsqueeze(1), spatial, 9),
           lambda: fold_tap_columns(cols, x.shape, copies, spatial),
           lambda: fold_tap_columns(cols, x.shape, unfold, spatial)]
    ms = [t * 1e3 for t in interleaved_medians(fns, repeats, torch.device('cpu'))]
    return dict(batch=batch, channels=channels, width=size, columns_ms=dict(tap_copies=ms[0], unfold=ms[1]),
                fold_ms=dict(tap_copies=ms[2], fold=ms[3]),
                unfold_over_copies=ms[1] / ms[0], fold_over_copies=ms[3] / ms[2])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='work_dirs/benchmark_columns.json')
    parser.add_argument('--repeats', type=int, default=15)
    parser.add_argument('--cases', nargs='+', metavar='B,C,W', help='batch,channels,width triples (default: '
                        + ' '.join(','.join(map(str, c)) for c in CASES) + ')')
    args = parser.parse_args(argv)
    cases = CASES
    if args.cases:
        try:
            cases = [tuple(int(v) for v in c.split(',')) for c in args.cases]
        except ValueError:
            cases = [()]
        if any(len(c) != 3 or min(c) < 1 for c in cases):
            parser.error('--cases takes positive batch,channels,width triples, e.g. 8,128,8')
    print(f'cpu ({platform.processor() or platform.machine()}), torch {torch.__version__}, '
          f'threads {torch.get_num_threads()}; 3x3 convs, ms (medians of {args.repeats})')
    print(f"{'B':>2} {'C':>4} {'HxW':>6} | {'columns: copies':>15} {'unfold':>7} {'ratio':>6} | "
          f"{'fold: copies':>12} {'F.fold':>7} {'ratio':>6}")
    rows = []
    for case in cases:
        r = time_case(*case, args.repeats)
        rows.append(r)
        print(f"{r['batch']:>2} {r['channels']:>4} {str(r['width']) + 'x' + str(r['width']):>6} | "
              f"{r['columns_ms']['tap_copies']:15.2f} {r['columns_ms']['unfold']:7.2f} {r['unfold_over_copies']:6.2f} | "
              f"{r['fold_ms']['tap_copies']:12.2f} {r['fold_ms']['fold']:7.2f} {r['fold_over_copies']:6.2f}", flush=True)
    by_width = {}
    for r in rows:
        by_width.setdefault(r['width'], []).append(r)
    summary = {str(w): dict(unfold_over_copies=geomean(r['unfold_over_copies'] for r in rs),
                            fold_over_copies=geomean(r['fold_over_copies'] for r in rs))
               for w, rs in sorted(by_width.items())}
    result = dict(torch=torch.__version__, threads=torch.get_num_threads(), repeats=args.repeats, rows=rows,
                  by_width=summary)

    def write_json(path):
        with open(path, 'w') as f:
            json.dump(result, f, indent=1)
    write_atomically(args.out, write_json)
    print('\nF.unfold / tap copies and F.fold / tap copies by output width (geometric means; > 1: copies faster):')
    for width, s in summary.items():
        print(f"  width {width:>2}: columns {s['unfold_over_copies']:.2f}, fold {s['fold_over_copies']:.2f}")
    print(f'JSON written to {args.out}')


if __name__ == '__main__':
    main()
