#!/usr/bin/env python
"""The dynamic convolutions ODConv generalises, compared on the built-in classification set (issue 31).

Nine quarter-width ResNet-18 classifiers (configs/shapes_cls/*_10e_shapes-cls.py: the static
baseline; ODConv 1x with each single attention and with all three; ODConv 4x with the kernel
attention alone and with all four; CondConv 8x; DyConv 4x), each trained for 10 epochs with
mmpretrain's own train tool, per seed, the variants interleaved (so all see the same machine
load). It prints a table of top-1 (mean +- std over the seeds), parameters, MAdds at 64 x 64 and
the median time per training step of the last epoch, the verdicts of the rule committed before
the runs (benchmarks/dynamic-convs-study.md), and writes everything as JSON. Runs in the users'
stack (mmpretrain needs torchvision): benchmarks/dynamic_convs_study.sh sets it up.

    bash benchmarks/dynamic_convs_study.sh [--seeds 0 1 2] [--out benchmarks/cpu-2core_dynamic_convs_study.json]
    bash benchmarks/dynamic_convs_study.sh --tiny --variants static dyconv-4x --work-dir /tmp/s --out /tmp/s.json

A missing classification set (data/shapes_cls) is generated first.
"""
import argparse
import os
import os.path as osp
import platform
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from pretrain_study import ROOT, compare, last_scalars, mean_std, run, scalar_lines, write_json  # noqa: E402

CONFIGS = 'configs/shapes_cls'
VARIANTS = {  # name: config (the table's order)
    'static': 'resnet18-quarter_10e_shapes-cls.py',
    'odconv-1x-spatial': 'odresnet18-quarter-k1-spatial_10e_shapes-cls.py',
    'odconv-1x-channel': 'odresnet18-quarter-k1-channel_10e_shapes-cls.py',
    'odconv-1x-filter': 'odresnet18-quarter-k1-filter_10e_shapes-cls.py',
    'odconv-4x-kernel': 'odresnet18-quarter-k4-kernel_10e_shapes-cls.py',
    'odconv-1x': 'odresnet18-quarter-k1_10e_shapes-cls.py',
    'odconv-4x': 'odresnet18-quarter-k4_10e_shapes-cls.py',
    'condconv-8x': 'condconv-resnet18-quarter-k8_10e_shapes-cls.py',
    'dyconv-4x': 'dyconv-resnet18-quarter-k4_10e_shapes-cls.py',
}
# The paper's ImageNet ResNet-18 order (shared/docs/dynamic-convs-reference.md, quoted figures):
# ODConv 4x 73.97 > DyConv 4x 72.76 > CondConv 8x 71.99 > static 70.25.
PAPER_ORDER = [('odconv-4x', 'dyconv-4x'), ('dyconv-4x', 'condconv-8x'), ('condconv-8x', 'static')]


def size_of(config):
    """(parameters, MAdds of one 64 x 64 image) of the config's classifier."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings
    from mmpretrain.registry import MODELS
    from odconv_mmdet.utils.madds import count_madds
    cfg = Config.fromfile(osp.join(ROOT, CONFIGS, config))
    import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model).eval()
    madds = count_madds(model, lambda: model(torch.zeros(1, 3, 64, 64)))
    return sum(p.numel() for p in model.parameters()), sum(madds.values())


def step_time(work_dir):
    """Median of the logged training-step times ('time': data and step) of the last epoch."""
    train = [line for line in scalar_lines(work_dir) if 'time' in line and 'loss' in line]
    last_epoch = max(line['epoch'] for line in train)
    return statistics.median(line['time'] for line in train if line['epoch'] == last_epoch)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--variants', nargs='+', choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument('--tiny', action='store_true', help='CI-sized: a tiny generated set, one short epoch')
    parser.add_argument('--work-dir', default='work_dirs/dynamic_convs_study')
    parser.add_argument('--out', default='benchmarks/cpu-2core_dynamic_convs_study.json')
    args = parser.parse_args()
    import mmpretrain  # noqa: F401  (fail here, not after the first run, where the stack lacks it)
    work = osp.abspath(osp.join(ROOT, args.work_dir))
    classes_root, options = osp.join(ROOT, 'data/shapes_cls'), []
    if args.tiny:
        classes_root = osp.join(work, 'shapes_cls')
        loader_options = ['batch_size=5', 'num_workers=0', 'persistent_workers=False']
        options = [f'{loader}.{o}' for loader in ('train_dataloader', 'val_dataloader')
                   for o in [f'dataset.data_root={classes_root}', *loader_options]]
        options += ['train_cfg.max_epochs=1', 'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=1']
    if not osp.isdir(osp.join(classes_root, 'val')):
        run('tools/misc/generate_classification.py', '--out', classes_root,
            *(['--num-train', '20', '--num-val', '10', '--image-size', '32'] if args.tiny else []))
    tool = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools', 'train.py')

    results = {name: dict(config=f'{CONFIGS}/{VARIANTS[name]}', top1=[], step_s=[], wall_s=[])
               for name in args.variants}
    for name in args.variants:
        results[name]['params'], results[name]['madds'] = size_of(VARIANTS[name])
    for seed in args.seeds:
        for name in args.variants:
            work_dir = osp.join(work, f'{name}_seed{seed}')
            wall = run(tool, osp.join(CONFIGS, VARIANTS[name]), '--work-dir', work_dir,
                       '--cfg-options', f'randomness.seed={seed}', *options)
            results[name]['wall_s'].append(wall)
            results[name]['top1'].append(float(last_scalars(work_dir)['accuracy/top1']))
            results[name]['step_s'].append(step_time(work_dir))

    import torch
    verdicts = {}
    if 'static' in results:
        verdicts.update({f'{name} vs static': compare(r['top1'], results['static']['top1'])
                         for name, r in results.items() if name != 'static'})
    verdicts.update({f'{a} vs {b} (paper: higher)': compare(results[a]['top1'], results[b]['top1'])
                     for a, b in PAPER_ORDER if a in results and b in results})
    summary = dict(date=time.strftime('%Y-%m-%d'), machine=f'{platform.machine()}, {os.cpu_count()} cores',
                   torch=torch.__version__, mmpretrain=mmpretrain.__version__, seeds=args.seeds, tiny=args.tiny,
                   runs=results, verdicts=verdicts)
    print(f'\n==== dynamic convs on the classification set, seeds {args.seeds} ====')
    print('| layer | top-1 (%) per seed | mean ± std | params (M) | MAdds (M, 64 x 64) | step (s), median | wall (min), mean |')
    print('|---|---|---|---|---|---|---|')
    for name, r in results.items():
        print(f'| {name} | {", ".join("%.1f" % v for v in r["top1"])} | {"%.2f ± %.2f" % mean_std(r["top1"])} | '
              f'{r["params"] / 1e6:.3f} | {r["madds"] / 1e6:.1f} | {statistics.median(r["step_s"]):.3f} | '
              f'{statistics.mean(r["wall_s"]) / 60:.1f} |')
    print('rule (benchmarks/dynamic-convs-study.md), top-1:')
    for key, value in verdicts.items():
        print(f'  {key}: {value}')
    write_json(summary, args.out)


if __name__ == '__main__':
    main()
