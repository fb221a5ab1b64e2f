"""Times every ODConv formulation against each other: the measurements behind conv_path_policy.py.

For each ResNet-50 bottleneck conv shape at a detection input (as benchmarks/benchmark.py), batch
and K, it times the train step (forward + backward) and inference of ODConv2d with each forced
``conv_path`` ('per_sample', 'batched_matmul', 'shared_matmul') and with 'auto', interleaved in one
process, and reports which formulation was fastest, what 'auto' picked, and how much slower
than the fastest the pick was. Prints a table and writes JSON.

    python benchmarks/benchmark_paths.py --out benchmarks/cpu-2core_paths.json

``--net shapes-r18`` times instead the 3x3 convs of the main job's backbone (half-width
ResNet-18, BasicBlock: 32 to 256 channels at 32x32 to 4x4 on its 128x128 images).
The pretraining shapes (issue 33): ``--net pretrain-r18`` the same convs on 64x64 images (16x16
to 2x2), ``--net pretrain-r50`` the bottleneck convs of ResNet-50 on 224x224 images (56x56 to
7x7); give them their batches (``--batches 64``, ``--batches 16``).
"""
import argparse
import json
import platform

import torch

from benchmark import geomean, interleaved_medians, layer_shapes, train_step  # (beside this script)
from odconv_mmdet.layers.odconv import ODConv2d
from odconv_mmdet.utils.io import write_atomically

FORMULATIONS = ('per_sample', 'batched_matmul', 'shared_matmul')


def bench_case(name, cin, cout, k, h, w, batch, kernel_num, repeats, device):
    torch.manual_seed(0)
    layer = ODConv2d(cin, cout, k, padding=k // 2, kernel_num=kernel_num).to(device)
    if batch == 1:
        layer.attention.bn.eval()  # as benchmarks/benchmark.py: the official BN cannot train at batch 1
    x = torch.randn(batch, cin, h, w, device=device, requires_grad=True)
    auto_choice = layer._choose_path(x)
    paths = list(FORMULATIONS)

    def forced(path, fn):
        def run():
            layer.conv_path = path
            return fn()
        return run
    train = interleaved_medians([forced(p, train_step(layer, x)) for p in paths + ['auto']], repeats, device)
    layer.eval()
    x_inf = x.detach()
    with torch.no_grad():
        infer = interleaved_medians([forced(p, lambda: layer(x_inf)) for p in paths + ['auto']], repeats, device)
    layer.conv_path = 'auto'
    with torch.no_grad():
        infer_choice = layer._choose_path(x_inf)
    row = dict(name=name, in_channels=cin, out_channels=cout, kernel_size=k, height=h, width=w, batch=batch,
               kernel_num=kernel_num, auto_train=auto_choice, auto_infer=infer_choice,
               train_ms=dict(zip(paths + ['auto'], [t * 1e3 for t in train])),
               infer_ms=dict(zip(paths + ['auto'], [t * 1e3 for t in infer])))
    for part in ('train', 'infer'):
        times = {p: row[f'{part}_ms'][p] for p in paths}
        best = min(times, key=times.get)
        row[f'fastest_{part}'] = best
        row[f'{part}_auto_over_fastest'] = row[f'{part}_ms']['auto'] / times[best]
    return row


def pick_summary(rows, part):
    """Per formulation that 'auto' picked: over its cases, the geometric mean of every other
    formulation's time over the pick's, and in how many of them the pick was the fastest."""
    summary = {}
    for pick in FORMULATIONS:
        cases = [r for r in rows if r[f'auto_{part}'] == pick]
        if not cases:
            continue
        others = {other: geomean(r[f'{part}_ms'][other] / r[f'{part}_ms'][pick] for r in cases)
                  for other in FORMULATIONS if other != pick}
        summary[pick] = dict(cases=len(cases), pick_fastest=sum(r[f'fastest_{part}'] == pick for r in cases),
                             other_over_pick=others)
    return summary


def print_pick_summary(result):
    for part, label in (('train', 'train'), ('infer', 'inference')):
        print(f'by auto pick, {label}: other formulation / pick (geometric mean), pick fastest in')
        for pick, s in pick_summary(result['rows'], part).items():
            others = ', '.join(f'{o} {v:.2f}' for o, v in s['other_over_pick'].items())
            print(f"  {pick:>14}: {others}; fastest in {s['pick_fastest']}/{s['cases']}")


def shapes_r18_shapes(image_size=128):
    """(name, in, out, k, H, W): the stride-1 3x3 convs of the main job's half-width ResNet-18
    on square images (stage s: 32 * 2^(s-1) channels at image_size / 2^(s+1) pixels square)."""
    shapes = []
    for stage in range(1, 5):
        c, size = 32 * 2 ** (stage - 1), image_size // 4 // 2 ** (stage - 1)
        shapes.append((f's{stage}.conv2', c, c, 3, size, size))
    return (image_size, image_size), shapes


def resnet50_shapes(image_size):
    """The stride-1 bottleneck convs of ResNet-50 on square images (as layer_shapes)."""
    shapes = []
    for stage, c in enumerate((64, 128, 256, 512), 1):
        size = image_size // 4 // 2 ** (stage - 1)
        shapes += [(f's{stage}.conv1', 4 * c, c, 1, size, size), (f's{stage}.conv2', c, c, 3, size, size),
                   (f's{stage}.conv3', c, 4 * c, 1, size, size)]
    return (image_size, image_size), shapes


NETS = {'resnet50': None, 'shapes-r18': lambda: shapes_r18_shapes(128),
        'pretrain-r18': lambda: shapes_r18_shapes(64), 'pretrain-r50': lambda: resnet50_shapes(224)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='work_dirs/benchmark_paths.json')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--net', choices=list(NETS), default='resnet50',
                        help="resnet50: bottleneck convs at a detection input scaled by --scale; "
                             "shapes-r18: the main job's backbone convs; pretrain-r18 / pretrain-r50: "
                             "the pretraining shapes")
    parser.add_argument('--scale', type=float, default=0.4)
    parser.add_argument('--batches', type=int, nargs='+', default=[1, 2, 8])
    parser.add_argument('--kernel-nums', type=int, nargs='+', default=[1, 4])
    parser.add_argument('--stages', type=int, nargs='+', default=[1, 2, 3, 4])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--summarize', metavar='JSON',
                        help="print the by-pick summary of a JSON this tool wrote, and exit")
    args = parser.parse_args(argv)
    if args.summarize:
        try:
            with open(args.summarize) as f:
                print_pick_summary(json.load(f))
        except (OSError, ValueError, KeyError) as e:
            parser.error(f'--summarize {args.summarize}: not a JSON written by this tool ({e})')
        return
    if any(s < 1 or s > 4 for s in args.stages):
        parser.error('--stages are 1 to 4')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error('--device cuda asked for, but torch sees no CUDA device')
    device = torch.device(args.device)
    input_size, shapes = layer_shapes(args.scale) if args.net == 'resnet50' else NETS[args.net]()
    shapes = [s for s in shapes if int(s[0][1]) in args.stages]
    print(f'device {device} ({platform.processor() or platform.machine()}), torch {torch.__version__}, '
          f'threads {torch.get_num_threads()}, detection input {input_size[0]}x{input_size[1]}')
    print(f"{'layer':9} {'in>out':>9} {'k':>1} {'HxW':>6} {'B':>1} {'K':>1} | train ms "
          + ' '.join(f'{p:>14}' for p in FORMULATIONS) + f" {'auto':>8} {'auto pick':>14} {'/best':>5} | infer ms "
          + ' '.join(f'{p:>14}' for p in FORMULATIONS) + f" {'auto':>8} {'auto pick':>14} {'/best':>5}")
    rows = []
    for kernel_num in args.kernel_nums:
        for batch in args.batches:
            for shape in shapes:
                r = bench_case(*shape, batch, kernel_num, args.repeats, device)
                rows.append(r)
                print(f"{r['name']:9} {str(r['in_channels']) + '>' + str(r['out_channels']):>9} {r['kernel_size']:>1} "
                      f"{str(r['height']) + 'x' + str(r['width']):>6} {batch:>1} {kernel_num:>1} |          "
                      + ' '.join(f"{r['train_ms'][p]:14.1f}" for p in FORMULATIONS)
                      + f" {r['train_ms']['auto']:8.1f} {r['auto_train']:>14} {r['train_auto_over_fastest']:5.2f} |          "
                      + ' '.join(f"{r['infer_ms'][p]:14.2f}" for p in FORMULATIONS)
                      + f" {r['infer_ms']['auto']:8.2f} {r['auto_infer']:>14} {r['infer_auto_over_fastest']:5.2f}",
                      flush=True)
    summary = dict(
        train_auto_over_fastest_geomean=geomean(r['train_auto_over_fastest'] for r in rows),
        infer_auto_over_fastest_geomean=geomean(r['infer_auto_over_fastest'] for r in rows),
        fastest_train_counts={p: sum(r['fastest_train'] == p for r in rows) for p in FORMULATIONS},
        fastest_infer_counts={p: sum(r['fastest_infer'] == p for r in rows) for p in FORMULATIONS},
        train_by_pick=pick_summary(rows, 'train'), infer_by_pick=pick_summary(rows, 'infer'))
    result = dict(device=str(device), torch=torch.__version__, threads=torch.get_num_threads(),
                  net=args.net, detection_input=list(input_size), repeats=args.repeats, rows=rows, summary=summary)

    def write_json(path):
        with open(path, 'w') as f:
            json.dump(result, f, indent=1)
    write_atomically(args.out, write_json)
    print(f"\nauto / fastest formulation, geometric mean: train {summary['train_auto_over_fastest_geomean']:.3f}, "
          f"inference {summary['infer_auto_over_fastest_geomean']:.3f}")
    print(f"fastest formulation, number of cases: train {summary['fastest_train_counts']}, "
          f"inference {summary['fastest_infer_counts']}")
    print_pick_summary(result)
    print(f'JSON written to {args.out}')


if __name__ == '__main__':
    main()
