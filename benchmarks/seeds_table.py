"""The main job's seeds table: each config trained and evaluated with several seeds, bbox mAP and
wall time as mean +- std, written as JSON (and printed as a Markdown table).

    python benchmarks/seeds_table.py --out benchmarks/cpu-2core_seeds.json

Each run is `tools/train.py CONFIG --cfg-options randomness.seed=S` in its own process, one after
another (no two runs share the CPU); wall time is that process's, training + the final
evaluation. The rule that picks the main job's default from this table is stated in
benchmarks/README.md, written before the table was measured.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from odconv_mmdet.utils.io import write_atomically

DEFAULT_CONFIGS = ['configs/shapes/faster-rcnn_r18_fpn_shapes.py',
                   'configs/shapes/faster-rcnn_odr18-k4_fpn_shapes.py',
                   'configs/shapes/faster-rcnn_odr18-k4-scratch_fpn_gn-all_shapes.py']


def final_metrics(work_dir: Path) -> dict:
    logs = sorted(work_dir.glob('*/vis_data/scalars.json'))
    if not logs:
        raise RuntimeError(f'no scalars.json under {work_dir}')
    metrics = {}
    for line in logs[-1].read_text().splitlines():
        metrics.update({k: v for k, v in json.loads(line).items() if k.startswith('coco/')})
    if 'coco/bbox_mAP' not in metrics:
        raise RuntimeError(f'{logs[-1]} holds no coco/bbox_mAP: did the run evaluate?')
    return metrics


def train_once(config: str, seed: int, work_dir: Path, cfg_options=()) -> dict:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / 'tools' / 'train.py'), config, '--work-dir', str(work_dir),
                             '--cfg-options', f'randomness.seed={seed}', *cfg_options],
                            cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f'{config} seed {seed} failed:\n{result.stderr[-3000:]}')
    return dict(seed=seed, seconds=seconds, bbox_mAP=final_metrics(work_dir)['coco/bbox_mAP'])


def summary(runs):
    maps, secs = [r['bbox_mAP'] for r in runs], [r['seconds'] for r in runs]
    spread = statistics.stdev if len(runs) > 1 else (lambda v: 0.0)
    return dict(bbox_mAP_mean=statistics.mean(maps), bbox_mAP_std=spread(maps),
                seconds_mean=statistics.mean(secs), seconds_std=spread(secs))


def markdown(table):
    lines = ['| config | bbox mAP, mean ± std | per seed | wall time, mean ± std |', '|---|---|---|---|']
    for row in table:
        s = row['summary']
        per_seed = ', '.join(f"{r['bbox_mAP']:.3f}" for r in row['runs'])
        lines.append(f"| `{Path(row['config']).name}` | {s['bbox_mAP_mean']:.3f} ± {s['bbox_mAP_std']:.3f} | "
                     f"{per_seed} | {s['seconds_mean'] / 60:.1f} ± {s['seconds_std'] / 60:.1f} min |")
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--configs', nargs='+', default=DEFAULT_CONFIGS)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--work-dir', default='work_dirs/seeds_table')
    parser.add_argument('--out', default='work_dirs/seeds_table.json')
    parser.add_argument('--cfg-options', nargs='*', default=[], help='extra options for every run (tests)')
    args = parser.parse_args(argv)
    for config in args.configs:
        if not (ROOT / config).is_file() and not Path(config).is_file():
            parser.error(f'no such config: {config}')
    if args.configs == DEFAULT_CONFIGS and not (ROOT / 'data' / 'shapes' / 'annotations' / 'val.json').is_file():
        subprocess.run([sys.executable, str(ROOT / 'tools' / 'misc' / 'generate_shapes.py'), '--out', 'data/shapes'],
                       cwd=ROOT, check=True)
    table = []
    for config in args.configs:
        runs = []
        for seed in args.seeds:
            work_dir = Path(args.work_dir) / Path(config).stem / f'seed{seed}'
            run = train_once(config, seed, work_dir, args.cfg_options)
            print(f"{Path(config).name} seed {seed}: bbox mAP {run['bbox_mAP']:.3f}, {run['seconds']:.0f} s", flush=True)
            runs.append(run)
        table.append(dict(config=config, runs=runs, summary=summary(runs)))
    result = dict(date=time.strftime('%Y-%m-%d'), machine=f'{os.cpu_count()}-core CPU', seeds=args.seeds,
                  table=table, markdown=markdown(table))

    def write(path):
        with open(path, 'w') as f:
            json.dump(result, f, indent=1)
    write_atomically(args.out, write)
    print(markdown(table))
    print(f'written: {args.out}')


if __name__ == '__main__':
    main()
