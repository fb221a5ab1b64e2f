#!/usr/bin/env python
"""ODConv's two-stage recipe in miniature (issue 30): pretrain, then detect from the weights.

Per seed, static and ODConv interleaved (so both see the same machine load):

1. pretrain the half-width ResNet-18 classifier (static, and ODResNet-18 K = 4 with the
   temperature annealed 30 -> 1 over the first tenth) on the built-in classification set with
   mmpretrain's own train tool: configs/shapes_cls/*, the official ImageNet recipe scaled down
   (SGD, lr 0.1 per 256 images, steps at 30 / 60 / 90 % of training, dropout 0.2);
2. train the main job's Faster R-CNN on the shapes set from that backbone at T = 1
   (configs/shapes/*_shapes-pretrained.py, the checkpoint's 'backbone.' weights).

It prints a table of top-1 and bbox mAP (mean +- std over the seeds) with wall times, the verdict
of the rule in benchmarks/pretrain-study.md, and writes everything as JSON. Runs in the users'
stack (mmpretrain needs torchvision): benchmarks/pretrain_study.sh sets it up and calls this.

    bash benchmarks/pretrain_study.sh [--seeds 0 1 2] [--out benchmarks/cpu-2core_pretrain_study.json]
    bash benchmarks/pretrain_study.sh --tiny --work-dir /tmp/study --out /tmp/study.json   # CI-sized

Missing data sets (data/shapes_cls, data/shapes) are generated first.
"""
import argparse
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import time

from odconv_mmdet.utils.io import write_atomically

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
KINDS = {  # kind: (pretraining config, detector config)
    'static': ('configs/shapes_cls/resnet18-half_shapes-cls.py', 'configs/shapes/faster-rcnn_r18_fpn_shapes-pretrained.py'),
    'odconv': ('configs/shapes_cls/odresnet18-half-k4_shapes-cls.py',
               'configs/shapes/faster-rcnn_odr18-k4_fpn_shapes-pretrained.py'),
}


def run(*args):
    """Run a Python tool in this interpreter; returns its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)
    return time.perf_counter() - start


def scalar_lines(work_dir):
    """The logged scalar records (one dict per line) of the newest run in ``work_dir``."""
    runs = sorted(d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d, 'vis_data')))
    return [json.loads(line) for line in open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json'))]


def last_scalars(work_dir):
    """The last value of every scalar logged by the newest run in ``work_dir``."""
    scalars = {}
    for line in scalar_lines(work_dir):
        scalars.update(line)
    return scalars


def compare(a, b):
    """The studies' rule (pretrain-study.md, dynamic-convs-study.md) for per-seed lists ``a`` and
    ``b``: 'higher' / 'lower' where mean(a) - mean(b) passes the larger sample standard deviation
    (or minus it), else 'no clear difference'."""
    spread = max(statistics.stdev(a), statistics.stdev(b)) if len(a) > 1 else 0.0
    gap = statistics.mean(a) - statistics.mean(b)
    return 'higher' if gap > spread else 'lower' if gap < -spread else 'no clear difference'


def verdict(static, odconv):
    """benchmarks/pretrain-study.md's rule for one metric (lists of per-seed values)."""
    return {'higher': 'ODConv helps', 'lower': 'ODConv hurts'}.get(compare(odconv, static), 'no clear difference')


def write_json(summary, out):
    """``summary`` as JSON at ``out`` (relative to the repository), never half-written."""
    def write(path):
        with open(path, 'w') as f:
            json.dump(summary, f, indent=1)
    write_atomically(osp.join(ROOT, out), write)
    print(f'written {out}')


def mean_std(values):
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--pretrain-epochs', type=int, default=20)
    parser.add_argument('--tiny', action='store_true',
                        help='CI-sized: tiny generated sets, one short epoch of each stage, one seed by default')
    parser.add_argument('--work-dir', default='work_dirs/pretrain_study')
    parser.add_argument('--out', default='benchmarks/cpu-2core_pretrain_study.json')
    args = parser.parse_args()
    if args.pretrain_epochs < 1:
        parser.error(f'--pretrain-epochs must be >= 1, got {args.pretrain_epochs}')
    import mmpretrain  # noqa: F401  (fail here, not after the first run, where the stack lacks it)
    work = osp.abspath(osp.join(ROOT, args.work_dir))
    classes_root, shapes_root = osp.join(ROOT, 'data/shapes_cls'), osp.join(ROOT, 'data/shapes')
    pretrain_options, detect_options = [], []
    epochs = args.pretrain_epochs
    if args.tiny:
        classes_root, shapes_root, epochs = osp.join(work, 'shapes_cls'), osp.join(work, 'shapes'), 1
        loader_options = ['batch_size=5', 'num_workers=0', 'persistent_workers=False']
        pretrain_options = [f'{loader}.{o}' for loader in ('train_dataloader', 'val_dataloader')
                            for o in [f'dataset.data_root={classes_root}', *loader_options]]
        detect_options = [f'{loader}.dataset.data_root={shapes_root}/' for loader in ('train_dataloader', 'val_dataloader')]
        detect_options += [f'val_evaluator.ann_file={shapes_root}/annotations/val.json', 'train_cfg.max_epochs=1',
                           'train_cfg.val_interval=1', 'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
                           'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
                           'val_dataloader.persistent_workers=False']
    if not osp.isdir(osp.join(classes_root, 'val')):
        run('tools/misc/generate_classification.py', '--out', classes_root,
            *(['--num-train', '20', '--num-val', '10', '--image-size', '32'] if args.tiny else []))
    if not osp.exists(osp.join(shapes_root, 'annotations', 'val.json')):
        run('tools/misc/generate_shapes.py', '--out', shapes_root,
            *(['--num-train', '4', '--num-val', '2'] if args.tiny else []))
    tool = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools', 'train.py')
    milestones = [round(epochs * f) for f in (0.3, 0.6, 0.9)]
    schedule = [f'train_cfg.max_epochs={epochs}', f'param_scheduler.milestones={milestones}'.replace(' ', ''),
                f'default_hooks.checkpoint.interval={epochs}']
    anneal = [f'custom_hooks.0.anneal_epochs={epochs / 10}']

    results = {kind: dict(top1=[], map=[], pretrain_s=[], detect_s=[]) for kind in KINDS}
    for seed in args.seeds:
        for kind, (pretrain_config, detect_config) in KINDS.items():
            pretrain_dir = osp.join(work, f'pretrain_{kind}_seed{seed}')
            wall = run(tool, pretrain_config, '--work-dir', pretrain_dir, '--cfg-options', f'randomness.seed={seed}',
                       *schedule, *(anneal if kind == 'odconv' else []), *pretrain_options)
            results[kind]['pretrain_s'].append(wall)
            results[kind]['top1'].append(float(last_scalars(pretrain_dir)['accuracy/top1']))
            checkpoint = open(osp.join(pretrain_dir, 'last_checkpoint')).read().strip()
            detect_dir = osp.join(work, f'detect_{kind}_seed{seed}')
            wall = run('tools/train.py', detect_config, '--work-dir', detect_dir, '--cfg-options',
                       f'randomness.seed={seed}', f'model.backbone.init_cfg.checkpoint={checkpoint}', *detect_options)
            results[kind]['detect_s'].append(wall)
            results[kind]['map'].append(float(last_scalars(detect_dir)['coco/bbox_mAP']))

    import torch
    summary = dict(date=time.strftime('%Y-%m-%d'), machine=f'{platform.machine()}, {os.cpu_count()} cores',
                   torch=torch.__version__, mmpretrain=mmpretrain.__version__, seeds=args.seeds,
                   pretrain_epochs=epochs, tiny=args.tiny, runs=results,
                   verdict=dict(top1=verdict(results['static']['top1'], results['odconv']['top1']),
                                bbox_map=verdict(results['static']['map'], results['odconv']['map'])))
    print(f'\n==== pretrain -> detect, seeds {args.seeds}, {epochs} pretraining epochs ====')
    print('| backbone | top-1 (%), mean ± std | bbox mAP, mean ± std | pretrain wall, mean | detect wall, mean |')
    print('|---|---|---|---|---|')
    for kind, r in results.items():
        name = 'ResNet-18 (half width)' if kind == 'static' else 'ODResNet-18 K = 4 (half width)'
        print(f'| {name} | {"%.2f ± %.2f" % mean_std(r["top1"])} | {"%.3f ± %.3f" % mean_std(r["map"])} | '
              f'{statistics.mean(r["pretrain_s"]) / 60:.1f} min | {statistics.mean(r["detect_s"]) / 60:.1f} min |')
    print(f'rule (benchmarks/pretrain-study.md): top-1: {summary["verdict"]["top1"]}; '
          f'bbox mAP: {summary["verdict"]["bbox_map"]}')
    write_json(summary, args.out)


if __name__ == '__main__':
    main()
