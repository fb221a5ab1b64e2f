"""Times the memory-lean conv's training step with the per-sample kernels kept for backward
against mixing them again there: the measurement behind ``keep_per_sample_kernels`` in
conv_path_policy.py.

For the ResNet-50 stage-4 convs at a detection input (as benchmarks/benchmark.py, ``--scale``), K = 4
and each batch size, ODConv2d forced to the batched matmul (which takes MixedKernelConv there)
runs its train step with the policy's answer patched to True and to False, interleaved in one
process (medians of rotated rounds). Prints kept / re-mixed per case and writes JSON.

    python benchmarks/benchmark_kept_kernels.py --out benchmarks/cpu-2core_kept_kernels.json
"""
import argparse
import json

import torch

from benchmark import geomean, interleaved_medians, layer_shapes, train_step  # (beside this script)
import odconv_mmdet.layers.mixed_kernel_conv as mixed_kernel_conv
from odconv_mmdet.layers.odconv import ODConv2d
from odconv_mmdet.utils.io import write_atomically


def time_case(name, cin, cout, k, h, w, batch, kernel_num, repeats):
    torch.manual_seed(0)
    layer = ODConv2d(cin, cout, k, padding=k // 2, kernel_num=kernel_num, conv_path='batched_matmul')
    x = torch.randn(batch, cin, h, w, requires_grad=True)
    step = train_step(layer, x)

    def with_kept(kept):
        def run():
            mixed_kernel_conv.keep_per_sample_kernels = lambda b, kn: kept
            return step()
        return run
    original = mixed_kernel_conv.keep_per_sample_kernels
    try:
        kept_s, remixed_s = interleaved_medians([with_kept(True), with_kept(False)], repeats, torch.device('cpu'))
    finally:
        mixed_kernel_conv.keep_per_sample_kernels = original
    return dict(name=name, in_channels=cin, out_channels=cout, kernel_size=k, height=h, width=w, batch=batch,
                kernel_num=kernel_num, policy_keeps=original(batch, kernel_num),
                train_ms=dict(kept=kept_s * 1e3, remixed=remixed_s * 1e3), kept_over_remixed=kept_s / remixed_s)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='work_dirs/benchmark_kept_kernels.json')
    parser.add_argument('--scale', type=float, default=0.4)
    parser.add_argument('--batches', type=int, nargs='+', default=[1, 2, 4, 8])
    parser.add_argument('--kernel-num', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=7)
    args = parser.parse_args(argv)
    if min(args.batches) < 1 or args.kernel_num < 2:
        parser.error('--batches must be >= 1 and --kernel-num >= 2 (K = 1 has no kernels to mix)')
    input_size, shapes = layer_shapes(args.scale)
    shapes = [s for s in shapes if s[0].startswith('s4.')]
    print(f'cpu, torch {torch.__version__}, threads {torch.get_num_threads()}, detection input '
          f'{input_size[0]}x{input_size[1]}, K = {args.kernel_num}; train step ms')
    rows = []
    for batch in args.batches:
        for shape in shapes:
            r = time_case(*shape, batch, args.kernel_num, args.repeats)
            rows.append(r)
            print(f"{r['name']:9} B={batch}: kept {r['train_ms']['kept']:8.1f}  re-mixed {r['train_ms']['remixed']:8.1f}"
                  f"  kept/re-mixed {r['kept_over_remixed']:.2f}  (policy keeps: {r['policy_keeps']})", flush=True)
    by_batch = {str(b): geomean(r['kept_over_remixed'] for r in rows if r['batch'] == b) for b in args.batches}
    result = dict(torch=torch.__version__, threads=torch.get_num_threads(), detection_input=list(input_size),
                  kernel_num=args.kernel_num, repeats=args.repeats, rows=rows, kept_over_remixed_by_batch=by_batch)

    def write_json(path):
        with open(path, 'w') as f:
            json.dump(result, f, indent=1)
    write_atomically(args.out, write_json)
    print('\nkept / re-mixed by batch (geometric mean over the stage-4 convs): '
          + ', '.join(f'B={b}: {v:.2f}' for b, v in by_batch.items()))
    print(f'JSON written to {args.out}')


if __name__ == '__main__':
    main()
