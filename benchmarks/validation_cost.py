"""What validating every epoch costs the main job, read from the logs of finished runs.

For each run directory (a tools/train.py work dir, e.g. one seed of benchmarks/seeds_table.py run
with ``--cfg-options train_cfg.val_interval=1``), from its text log: each validation's bbox mAP
and its duration (from the epoch's last ``Epoch(train)`` line, its last training iteration, to
its ``Epoch(val) [k][N/N]`` line; the log's timestamps have 1 s resolution), and their share of the
run's logged time (first to last line).

    python benchmarks/validation_cost.py work_dirs/seeds_valeach_dev/*/seed* --out FILE
"""
import argparse
import json
import re
import sys
from datetime import datetime
from pathlib import Path

from odconv_mmdet.utils.io import write_atomically

STAMP = re.compile(r'^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) - mmengine')
VAL_END = re.compile(r'Epoch\(val\) +\[(\d+)\]\[(\d+)/\2\].*coco/bbox_mAP: ([0-9.]+)')


def validations(log: Path):
    lines = [(datetime.strptime(m.group(1), '%Y/%m/%d %H:%M:%S'), line)
             for line in log.read_text().splitlines() if (m := STAMP.match(line))]
    runs, last_train = [], None
    for stamp, line in lines:
        end = VAL_END.search(line)
        if end:
            runs.append(dict(epoch=int(end.group(1)), bbox_mAP=float(end.group(3)),
                             seconds=(stamp - last_train).total_seconds()))
        elif 'Epoch(train)' in line:
            last_train = stamp
    return runs, (lines[-1][0] - lines[0][0]).total_seconds()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dirs', nargs='+', type=Path)
    parser.add_argument('--out', type=Path)
    args = parser.parse_args(argv)
    result = []
    for work_dir in args.work_dirs:
        logs = sorted(work_dir.glob('*/*.log'))
        if not logs:
            sys.exit(f'no log under {work_dir}')
        runs, total = validations(logs[-1])
        val = sum(r['seconds'] for r in runs)
        result.append(dict(work_dir=str(work_dir), validations=runs, val_seconds=val, logged_seconds=total))
        curve = ', '.join(f"epoch {r['epoch']}: {r['bbox_mAP']:.3f} ({r['seconds']:.0f} s)" for r in runs)
        print(f'{work_dir}: {curve}; validation {val:.0f} s of {total:.0f} s ({100 * val / total:.1f} %)')
    if args.out:
        write_atomically(args.out, lambda path: Path(path).write_text(json.dumps(result, indent=1)))
        print(f'written {args.out}')


if __name__ == '__main__':
    main()
