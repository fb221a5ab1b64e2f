#!/usr/bin/env bash
# The README's main command: set up if needed, generate the built-in shapes dataset if missing,
# train Faster R-CNN with an ODResNet-18 (K=4) backbone from scratch, evaluate COCO bbox mAP on
# the val split, and save a picture of predictions and one of the training curves (loss,
# temperature, mAP). CONFIG / WORK_DIR override the defaults.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/tools/setup_env.sh"
PY="$ROOT/.venv/bin/python"
CONFIG="${CONFIG:-configs/shapes/faster-rcnn_odr18-k4_fpn_shapes.py}"
WORK_DIR="${WORK_DIR:-work_dirs/$(basename "$CONFIG" .py)}"

if [ ! -f data/shapes/annotations/val.json ]; then
  "$PY" tools/misc/generate_shapes.py --out data/shapes
fi

start=$(date +%s)
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR"   # evaluates on val after every epoch
elapsed=$(( $(date +%s) - start ))

CHECKPOINT="$(cat "$WORK_DIR/last_checkpoint")"
# 0.7: on the main job's checkpoint (seed 0, layer code of 2026-12-02) this showed exactly the
# four shapes of this image with their right classes (on 8b7f9dc's: three of the four, the
# benchmarks/README.md main-job section); mmdet's default 0.3 adds wrong-class boxes around them.
"$PY" demo/image_demo.py "$CONFIG" "$CHECKPOINT" data/shapes/val/000000.png --out "$WORK_DIR/predictions.png" \
  --score-thr 0.7
"$PY" tools/analysis_tools/plot_training_curves.py "$WORK_DIR" --out "$WORK_DIR/training_curves.png"
"$PY" - "$WORK_DIR" "$elapsed" "$CHECKPOINT" <<'PYEOF'
import glob, json, os, sys
work_dir, elapsed, checkpoint = sys.argv[1], int(sys.argv[2]), sys.argv[3]
logs = sorted(glob.glob(os.path.join(work_dir, '*', 'vis_data', 'scalars.json')))
metrics = {}
for line in open(logs[-1]):
    metrics.update({k: v for k, v in json.loads(line).items() if k.startswith('coco/')})
print('\n==== COCO bbox mAP on data/shapes val ====')
for key in ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75', 'bbox_mAP_s', 'bbox_mAP_m', 'bbox_mAP_l'):
    if 'coco/' + key in metrics:
        print(f'{key:>12}: {metrics["coco/" + key]:.3f}')
print(f'train + eval time: {elapsed // 60} min {elapsed % 60} s')
print(f'checkpoint: {checkpoint}')
print(f'predictions: {os.path.join(work_dir, "predictions.png")}')
print(f'training curves: {os.path.join(work_dir, "training_curves.png")}')
PYEOF
