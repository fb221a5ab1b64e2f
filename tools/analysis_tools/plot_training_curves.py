"""Draw a training run's curves: loss per iteration, the ODConv temperature per iteration (if
the temperature hook ran) and COCO bbox mAP per evaluation, from its ``vis_data/scalars.json``.

    python tools/analysis_tools/plot_training_curves.py WORK_DIR [--out curves.png]

WORK_DIR is a run's work directory (its newest ``*/vis_data/scalars.json`` is read) or such a
file itself. mmdet's ``analysis_tools/analyze_logs.py plot_curve`` draws one key at a time.
"""
import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

PANELS = (('loss', 'iteration', 'loss'), ('odconv_temperature', 'iteration', 'ODConv temperature'),
          ('coco/bbox_mAP', 'epoch', 'COCO bbox mAP'))


def find_scalars(path: Path) -> Path:
    if path.is_file():
        return path
    found = sorted(path.glob('*/vis_data/scalars.json'))
    if not found:
        sys.exit(f'plot_training_curves: ERROR: no */vis_data/scalars.json under {path}')
    return found[-1]


def read_series(scalars: Path):
    """{key: ([x], [y])} for the panels' keys: training records by iteration (``step``), evaluation
    records by epoch (``step`` is the epoch there)."""
    series = {key: ([], []) for key, _, _ in PANELS}
    for line in scalars.read_text().splitlines():
        record = json.loads(line)
        for key in series:
            if key in record:
                series[key][0].append(record['step'])
                series[key][1].append(record[key])
    return series


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir', type=Path, help='a work directory or a scalars.json')
    parser.add_argument('--out', type=Path, default=None, help='default: WORK_DIR/training_curves.png')
    args = parser.parse_args(argv)
    scalars = find_scalars(args.work_dir)
    series = read_series(scalars)
    panels = [p for p in PANELS if series[p[0]][0]]
    if not panels:
        sys.exit(f'plot_training_curves: ERROR: {scalars} holds none of {[p[0] for p in PANELS]}')
    out = args.out or (args.work_dir if args.work_dir.is_dir() else scalars.parent) / 'training_curves.png'
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (key, x_label, title) in zip(axes[0], panels):
        xs, ys = series[key]
        ax.plot(xs, ys, marker='o' if len(xs) < 20 else None)
        ax.set_title(title)
        ax.set_xlabel(x_label)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    print(f'training curves ({", ".join(p[0] for p in panels)}) of {scalars}: {out}')


if __name__ == '__main__':
    main()
