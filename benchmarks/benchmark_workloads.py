"""The three workloads that decide which CPU formulations the layer keeps (issue 24).

Each ODConv *variant* (a way of computing the layer, see VARIANTS) is timed against the static
twin on the same workload, all interleaved in one process (medians of rotated rounds,
benchmarks/benchmark.py), so the variants share the machine's drift and their weights:

* backbone train: ODResNet-50 K = 4 against mmdet's ResNet-50, forward + backward, batch 2 at
  320x544 (800x1333 x 0.4);
* detector train: the main job's train step (configs/shapes/faster-rcnn_odr18-k4_fpn_shapes.py)
  against its static twin, batch 8 at 128x128;
* backbone inference: ODResNet-50 K = 4 against ResNet-50, batch 1 at 320x544.

Reports every variant's time over the static twin's. A formulation stays only where removing it
costs more than 5 % on one of the three (the batched matmul stays for traced graphs in any case:
conv_path_policy.py). The 'before' variant runs the layer's code of an earlier commit (--before,
by default 79a7ec3, before issue 24) on the same models, for the bound "the detector step no
more than 5 % slower than before".

    python benchmarks/benchmark_workloads.py --out benchmarks/cpu-2core_workloads_COMMIT.json
"""
import argparse
import contextlib
import importlib
import importlib.util
import io
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
from unittest import mock

import torch

from benchmark import ROOT, detector_train_step, interleaved_medians, train_step  # (beside this script)
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules

from odconv_mmdet.layers import conv_path_policy
from odconv_mmdet.layers.odconv import ODConv2d, ODConvAttention
from odconv_mmdet.utils.checks import load_config
from odconv_mmdet.utils.io import write_atomically


# name -> the patches (object, attribute, value) that make the layer compute that way: the policy
# as it is, without attention folding, without the batched matmul, or without both (the official
# per-sample conv everywhere).
def never(*args):
    return False


def no_folding(*args):
    return False, False


WORKLOADS = ('backbone_train_b2', 'detector_train_b8', 'backbone_infer_b1')
VARIANTS = {
    'policy': [],
    'no_folding': [(conv_path_policy, 'folded_attentions', no_folding)],
    'no_batched_matmul': [(conv_path_policy, 'batched_matmul_pays', never)],
    'per_sample_everywhere': [(conv_path_policy, 'folded_attentions', no_folding),
                              (conv_path_policy, 'batched_matmul_pays', never)],
    'before': None,  # the layer's code at --before (layer_code_at), in the same process
}


def layer_code_at(commit):
    """Patches that make ODConv2d and its attention run their methods as of ``commit`` (the
    'before' variant): odconv_mmdet/layers at that commit, imported from git as a package of its own."""
    tmp = tempfile.mkdtemp(prefix='odconv_layers_')
    archive = subprocess.run(['git', 'archive', commit, 'odconv_mmdet/layers'], cwd=ROOT, capture_output=True,
                             check=True).stdout
    tarfile.open(fileobj=io.BytesIO(archive)).extractall(tmp)
    name = f'odconv_layers_{commit}'
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(tmp, 'odconv_mmdet', 'layers', '__init__.py'),
        submodule_search_locations=[os.path.join(tmp, 'odconv_mmdet', 'layers')])
    sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules[name])
    old = importlib.import_module(name + '.odconv')
    patches = []
    for new_class, old_class in ((ODConv2d, old.ODConv2d), (ODConvAttention, old.ODConvAttention)):
        for attribute, value in vars(old_class).items():
            if not attribute.startswith('__') and (callable(value) or isinstance(value, (property, staticmethod))):
                patches.append((new_class, attribute, value))
    return patches


def in_variant(name, fn):
    """fn run with the layer computing as variant ``name``."""
    def run():
        with contextlib.ExitStack() as stack:
            for target, attribute, value in VARIANTS[name]:
                stack.enter_context(mock.patch.object(target, attribute, value, create=True))
            return fn()
    return run


def time_variants(odconv_fn, static_fn, variants, repeats):
    """ms of the static twin and of every variant, and each variant over the static."""
    fns = [static_fn] + [in_variant(v, odconv_fn) for v in variants]
    times = [t * 1e3 for t in interleaved_medians(fns, repeats, torch.device('cpu'))]
    return dict(static_ms=times[0], ms=dict(zip(variants, times[1:])),
                over_static={v: t / times[0] for v, t in zip(variants, times[1:])})


def backbones(size):
    torch.manual_seed(0)
    common = dict(depth=50, out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False)
    return MODELS.build(dict(type='ResNet', **common)), MODELS.build(dict(type='ODResNet', kernel_num=4, **common))


def git_commit():
    try:
        return subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='work_dirs/benchmark_workloads.json')
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument('--workloads', nargs='+', default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--scale', type=float, default=0.4)
    parser.add_argument('--before', default='79a7ec3', help="the commit whose layer code the 'before' variant runs")
    args = parser.parse_args(argv)
    if args.repeats < 1 or not args.scale > 0:
        parser.error('--repeats must be >= 1 and --scale > 0')
    if 'before' in args.variants:
        VARIANTS['before'] = layer_code_at(args.before)
    register_all_modules(init_default_scope=False)
    size = (round(800 * args.scale / 32) * 32, round(1333 * args.scale / 32) * 32)
    print(f'{platform.processor() or platform.machine()}, torch {torch.__version__}, threads '
          f'{torch.get_num_threads()}, commit {git_commit()}, variants {args.variants}', flush=True)
    results = {}

    static, odconv = backbones(size)
    if 'backbone_train_b2' in args.workloads:
        x = torch.randn(2, 3, *size)
        results['backbone_train_b2'] = time_variants(train_step(odconv, x), train_step(static, x), args.variants,
                                                     args.repeats)
        print('backbone train', results['backbone_train_b2'], flush=True)

    if 'detector_train_b8' in args.workloads:
        configs = [os.path.join(ROOT, 'configs', 'shapes', name) for name in
                   ('faster-rcnn_odr18-k4_fpn_shapes.py', 'faster-rcnn_r18_fpn_shapes.py')]
        odconv_step, static_step = [detector_train_step(path, 8, 128, torch.device('cpu'), load_config, MODELS)
                                    for path in configs]
        results['detector_train_b8'] = time_variants(odconv_step, static_step, args.variants, args.repeats)
        print('detector train', results['detector_train_b8'], flush=True)

    if 'backbone_infer_b1' in args.workloads:
        static.eval()
        odconv.eval()
        x1 = torch.randn(1, 3, *size)
        with torch.no_grad():
            results['backbone_infer_b1'] = time_variants(lambda: odconv(x1), lambda: static(x1), args.variants,
                                                         args.repeats)
        print('backbone inference', results['backbone_infer_b1'], flush=True)

    result = dict(commit=git_commit(), torch=torch.__version__, threads=torch.get_num_threads(),
                  input_size=list(size), repeats=args.repeats, workloads=results)
    if 'policy' in args.variants and 'before' in args.variants:
        result['policy_over_before'] = {w: r['ms']['policy'] / r['ms']['before'] for w, r in results.items()}

    def write_json(path):
        with open(path, 'w') as f:
            json.dump(result, f, indent=1)
    write_atomically(args.out, write_json)
    print(f"\n{'ODConv / static':22}" + ''.join(f'{v:>24}' for v in args.variants))
    for workload, r in results.items():
        print(f'{workload:22}' + ''.join(f"{r['over_static'][v]:24.3f}" for v in args.variants))
    for workload, ratio in result.get('policy_over_before', {}).items():
        bound = (' (bound <= 1.05: ' + ('holds)' if ratio <= 1.05 else 'MISSED)')) if workload == 'detector_train_b8' else ''
        print(f'{workload}: policy / before ({args.before}) {ratio:.3f}{bound}')
    print(f'JSON written to {args.out}')


if __name__ == '__main__':
    main()
