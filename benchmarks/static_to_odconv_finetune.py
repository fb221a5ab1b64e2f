#!/usr/bin/env python
"""The workflow of "ODConv in any backbone", measured on the built-in shapes dataset.

1. Train the static Faster R-CNN R18 (configs/shapes/faster-rcnn_r18_fpn_shapes.py) for its
   schedule, unless --static-checkpoint names one already trained.
2. Evaluate it, and the ODConv detector (ODConvBackbone, K = 4) loaded from that same static
   checkpoint before any further training: the two bbox mAPs must be equal.
3. Fine-tune each for the same short schedule (*_shapes-finetune.py), with several seeds.
4. Print mean +- std of bbox mAP and the wall time of each, and write them as JSON.

    python benchmarks/static_to_odconv_finetune.py [--seeds 0 1 2] [--out benchmarks/static-to-odconv_shapes.json]

Needs data/shapes (tools/misc/generate_shapes.py). About 25 min on the 2-core machine.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
STATIC = 'configs/shapes/faster-rcnn_r18_fpn_shapes.py'
FINETUNE = {'static': 'configs/shapes/faster-rcnn_r18_fpn_shapes-finetune.py',
            'odconv': 'configs/shapes/faster-rcnn_od-r18-k4_fpn_shapes-finetune.py'}


def run(*args):
    """Run a tool; returns its wall time in seconds. Its output goes to our stdout."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)
    return time.perf_counter() - start


def bbox_map(work_dir):
    """bbox mAP of a tools/test.py run (test_metrics.json) or of a training run's last evaluation."""
    metrics_file = osp.join(work_dir, 'test_metrics.json')
    if osp.exists(metrics_file):
        return float(json.load(open(metrics_file))['coco/bbox_mAP'])
    runs = sorted(d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d, 'vis_data')))
    metrics = {}
    for line in open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')):
        metrics.update(json.loads(line))
    return float(metrics['coco/bbox_mAP'])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--static-checkpoint', help='a trained static detector (skips step 1)')
    parser.add_argument('--work-dir', default='work_dirs/static_to_odconv')
    parser.add_argument('--out', default='benchmarks/static-to-odconv_shapes.json')
    args = parser.parse_args()
    if not osp.exists(osp.join(ROOT, 'data/shapes/annotations/val.json')):
        sys.exit('error: data/shapes not found; run python tools/misc/generate_shapes.py --out data/shapes')
    work = osp.join(ROOT, args.work_dir)
    result = dict(seeds=args.seeds)

    checkpoint = args.static_checkpoint
    if checkpoint is None:
        static_dir = osp.join(work, 'static')
        result['static_train_s'] = run('tools/train.py', STATIC, '--work-dir', static_dir)
        checkpoint = open(osp.join(static_dir, 'last_checkpoint')).read().strip()
        result['static_train_map'] = bbox_map(static_dir)
    result['static_checkpoint'] = osp.relpath(checkpoint, ROOT)

    before = {}
    for kind, config in FINETUNE.items():
        test_dir = osp.join(work, f'before_{kind}')
        run('tools/test.py', config, checkpoint, '--work-dir', test_dir)
        before[kind] = bbox_map(test_dir)
    result['before_finetune_map'] = before

    finetuned = {kind: dict(map=[], wall_s=[]) for kind in FINETUNE}
    for seed in args.seeds:
        for kind, config in FINETUNE.items():  # interleaved, so both see the same machine load
            run_dir = osp.join(work, f'{kind}_seed{seed}')
            wall = run('tools/train.py', config, '--work-dir', run_dir, '--cfg-options',
                       f'load_from={checkpoint}', f'randomness.seed={seed}')
            finetuned[kind]['map'].append(bbox_map(run_dir))
            finetuned[kind]['wall_s'].append(wall)
    result['finetuned'] = finetuned

    print('\n==== static Faster R-CNN R18 -> ODConv (K=4), shapes val ====')
    if 'static_train_s' in result:
        print(f'static training ({STATIC}): bbox mAP {result["static_train_map"]:.4f}, '
              f'{result["static_train_s"]:.0f} s')
    print(f'before fine-tuning: static {before["static"]:.4f}, ODConv loaded from the static checkpoint '
          f'{before["odconv"]:.4f}')
    print('| fine-tuned (1 epoch) | bbox mAP, mean +- std | wall time (train + eval), mean |')
    print('|---|---|---|')
    for kind, r in finetuned.items():
        std = statistics.stdev(r['map']) if len(r['map']) > 1 else 0.0
        print(f'| {kind} | {statistics.mean(r["map"]):.4f} +- {std:.4f} '
              f'({", ".join(f"{m:.4f}" for m in r["map"])}) | {statistics.mean(r["wall_s"]):.0f} s |')
    os.makedirs(osp.dirname(osp.join(ROOT, args.out)), exist_ok=True)
    with open(osp.join(ROOT, args.out), 'w') as f:
        json.dump(result, f, indent=1)
    print(f'written {args.out}')


if __name__ == '__main__':
    main()
