"""The workloads that decide which CPU formulations the layer keeps (issues 24 and 33).

Each ODConv *variant* (a way of computing the layer, see VARIANTS) is timed against the static
twin on the same workload, all interleaved in one process (medians of rotated rounds,
benchmarks/benchmark.py), so the variants share the machine's drift and their weights; the peak
memory of one step of each (benchmark.peak_memory) is reported beside the times:

* backbone train: ODResNet-50 K = 4 against mmdet's ResNet-50, forward + backward, batch 2 at
  320x544 (800x1333 x 0.4);
* detector train: the main job's train step (configs/shapes/faster-rcnn_odr18-k4_fpn_shapes.py)
  against its static twin, batch 8 at 128x128;
* backbone inference: ODResNet-50 K = 4 against ResNet-50, batch 1 at 320x544;
* the pretraining shapes (issue 33): the half-width ResNet-18 classifier step (global pooling,
  a linear layer, cross-entropy; forward + backward) at batch 64, 64x64, K = 1 and K = 4; and
  ODResNet-50 forward + backward at batch 16, 224x224, K = 1 and K = 4.

Reports every variant's time over the static twin's, and the issue-33 targets. A formulation
stays only where removing it costs more than 5 % on one workload (the batched matmul stays for
traced graphs in any case: conv_path_policy.py). The 'before' variant runs the layer's code of an
earlier commit (--before, by default bfcc0b7, before issue 33) on the same models: no workload
may be more than 5 % slower than before.

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

from benchmark import ROOT, detector_train_step, interleaved_medians, peak_memory, train_step  # (beside this script)
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


WORKLOADS = ('backbone_train_b2', 'detector_train_b8', 'backbone_infer_b1', 'classifier_r18_b64_k1',
             'classifier_r18_b64_k4', 'backbone_r50_b16_k1', 'backbone_r50_b16_k4')
# issue 33: the most a workload's ODConv / static may be under the policy
TARGETS = {'classifier_r18_b64_k1': 1.6, 'classifier_r18_b64_k4': 3.0, 'backbone_r50_b16_k1': 1.4,
           'backbone_r50_b16_k4': 1.8}
VARIANTS = {
    'policy': [],
    'no_shared_matmul': [(conv_path_policy, 'shared_matmul_pays', never)],
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


def time_variants(odconv, odconv_fn, static, static_fn, variants, repeats):
    """ms of the static twin and of every variant, each variant over the static, and the peak
    memory (MiB) of one step of each (the modules are the ones whose gradients a step makes)."""
    cpu = torch.device('cpu')
    fns = [static_fn] + [in_variant(v, odconv_fn) for v in variants]
    times = [t * 1e3 for t in interleaved_medians(fns, repeats, cpu)]
    mib = 2 ** 20
    return dict(static_ms=times[0], ms=dict(zip(variants, times[1:])),
                over_static={v: t / times[0] for v, t in zip(variants, times[1:])},
                static_peak_mib=peak_memory(static, static_fn, cpu) / mib,
                peak_mib={v: in_variant(v, lambda: peak_memory(odconv, odconv_fn, cpu))() / mib for v in variants})


def backbones(depth, kernel_num, **kwargs):
    """(static, ODConv) mmdet ResNets with the same arguments."""
    torch.manual_seed(0)
    common = dict(depth=depth, frozen_stages=-1, norm_eval=False, **kwargs)
    return (MODELS.build(dict(type='ResNet', **common)),
            MODELS.build(dict(type='ODResNet', kernel_num=kernel_num, **common)))


class Classifier(torch.nn.Module):
    """A backbone's last feature map, global average pooling and a linear layer (mmpretrain's
    ImageClassifier with GlobalAveragePooling and LinearClsHead, as plain modules)."""

    def __init__(self, backbone, channels, num_classes=100):
        super().__init__()
        self.backbone = backbone
        self.fc = torch.nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.fc(self.backbone(x)[-1].mean(dim=(2, 3)))


def classifier_step(model, x, labels):
    """Forward, cross-entropy and backward."""
    def step():
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), labels).backward()
    return step


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
    parser.add_argument('--before', default='bfcc0b7', help="the commit whose layer code the 'before' variant runs")
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

    def run(workload, odconv, odconv_fn, static, static_fn):
        results[workload] = time_variants(odconv, odconv_fn, static, static_fn, args.variants, args.repeats)
        print(workload, results[workload], flush=True)

    if {'backbone_train_b2', 'backbone_infer_b1'} & set(args.workloads):
        static, odconv = backbones(50, 4, out_indices=(0, 1, 2, 3))
        if 'backbone_train_b2' in args.workloads:
            x = torch.randn(2, 3, *size)
            run('backbone_train_b2', odconv, train_step(odconv, x), static, train_step(static, x))
        if 'backbone_infer_b1' in args.workloads:
            static.eval()
            odconv.eval()
            x1 = torch.randn(1, 3, *size)
            with torch.no_grad():
                run('backbone_infer_b1', odconv, lambda: odconv(x1), static, lambda: static(x1))

    if 'detector_train_b8' in args.workloads:
        configs = [os.path.join(ROOT, 'configs', 'shapes', name) for name in
                   ('faster-rcnn_odr18-k4_fpn_shapes.py', 'faster-rcnn_r18_fpn_shapes.py')]
        odconv_step, static_step = [detector_train_step(path, 8, 128, torch.device('cpu'), load_config, MODELS)
                                    for path in configs]
        run('detector_train_b8', odconv_step.model, odconv_step, static_step.model, static_step)

    for kernel_num in (1, 4):
        workload = f'classifier_r18_b64_k{kernel_num}'
        if workload in args.workloads:
            static, odconv = [Classifier(net, 256) for net in backbones(18, kernel_num, base_channels=32,
                                                                         out_indices=(3,))]
            odconv.fc.load_state_dict(static.fc.state_dict())
            x, labels = torch.randn(64, 3, 64, 64), torch.randint(0, 100, (64,))
            run(workload, odconv, classifier_step(odconv, x, labels), static, classifier_step(static, x, labels))
    for kernel_num in (1, 4):
        workload = f'backbone_r50_b16_k{kernel_num}'
        if workload in args.workloads:
            static, odconv = backbones(50, kernel_num, out_indices=(3,))
            x = torch.randn(16, 3, 224, 224)
            run(workload, odconv, train_step(odconv, x), static, train_step(static, x))

    result = dict(commit=git_commit(), torch=torch.__version__, threads=torch.get_num_threads(),
                  input_size=list(size), repeats=args.repeats, workloads=results)
    if 'policy' in args.variants and 'before' in args.variants:
        result['policy_over_before'] = {w: r['ms']['policy'] / r['ms']['before'] for w, r in results.items()}

    def write_json(path):
        with open(path, 'w') as f:
            json.dump(result, f, indent=1)
    write_atomically(args.out, write_json)
    print(f"\n{'ODConv / static':24}{'static ms':>10}" + ''.join(f'{v:>24}' for v in args.variants))
    for workload, r in results.items():
        print(f"{workload:24}{r['static_ms']:10.1f}" + ''.join(
            f"{r['over_static'][v]:10.3f} {r['ms'][v]:7.0f} ms" for v in args.variants))
    print(f"\n{'peak memory, MiB':24}{'static':>10}" + ''.join(f'{v:>24}' for v in args.variants))
    for workload, r in results.items():
        print(f"{workload:24}{r['static_peak_mib']:10.0f}" + ''.join(f"{r['peak_mib'][v]:24.0f}"
                                                                     for v in args.variants))
    if 'policy' in args.variants:
        for workload, target in TARGETS.items():
            if workload in results:
                ratio = results[workload]['over_static']['policy']
                print(f"{workload}: ODConv / static {ratio:.2f} (target <= {target}: "
                      f"{'holds' if ratio <= target else 'MISSED'})")
    for workload, ratio in result.get('policy_over_before', {}).items():
        print(f"{workload}: policy / before ({args.before}) {ratio:.3f} (bound <= 1.05: "
              f"{'holds' if ratio <= 1.05 else 'MISSED'})")
    print(f'JSON written to {args.out}')


if __name__ == '__main__':
    main()
