"""Clear, early errors for the mistakes users make most with the command-line tools."""
import json
import os.path as osp


class UserInputError(Exception):
    """A problem with what the user gave (config, data, checkpoint), reported without a traceback."""


def check_file(path, what):
    """A checkpoint path may carry the ``trusted:`` opt-in prefix (see odconv_mmdet/compat.py)."""
    from ..compat import TRUSTED_PREFIX
    if not osp.isfile(path[len(TRUSTED_PREFIX):] if path.startswith(TRUSTED_PREFIX) else path):
        raise UserInputError(f'{what} not found: {path}')


def load_image_tool_inputs(config, checkpoint, image, out_png):
    """The config, after checking what a tool drawing one image's results into a PNG is given."""
    cfg = load_config(config)
    check_file(checkpoint, 'checkpoint')
    check_file(image, 'image')
    if not out_png.lower().endswith('.png'):
        raise UserInputError(f'--out must name a .png file, got {out_png}')
    return cfg


def _datasets(cfg):
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(name)
        if loader and loader.get('dataset'):
            yield name, loader['dataset']


def _flatten(dataset):
    """Concat/repeat wrappers hold their real datasets inside."""
    if 'datasets' in dataset:
        for d in dataset['datasets']:
            yield from _flatten(d)
    elif 'dataset' in dataset:
        yield from _flatten(dataset['dataset'])
    else:
        yield dataset


def check_coco_annotations(path):
    try:
        with open(path) as f:
            content = json.load(f)
    except json.JSONDecodeError as e:
        raise UserInputError(f'annotation file is not valid JSON: {path} ({e})') from None
    missing = [k for k in ('images', 'annotations', 'categories') if not isinstance(content, dict) or k not in content]
    if missing:
        raise UserInputError(f'annotation file {path} is not COCO format: it lacks {missing}')


def check_datasets(cfg, splits=('train_dataloader', 'val_dataloader', 'test_dataloader')):
    """Every data folder and COCO annotation file that ``cfg`` names for ``splits`` exists and parses."""
    checked = set()
    for name, dataset in _datasets(cfg):
        if name not in splits:
            continue
        for d in _flatten(dataset):
            root = d.get('data_root') or ''
            if root and not osp.isdir(root):
                hint = ' (create it with: python tools/misc/generate_shapes.py)' if 'shapes' in root else ''
                raise UserInputError(f'{name}: data directory not found: {root}{hint}')
            ann = d.get('ann_file')
            if ann:
                path = ann if osp.isabs(ann) else osp.join(root, ann)
                if path not in checked:
                    check_file(path, f'{name}: annotation file')
                    check_coco_annotations(path)
                    checked.add(path)
            prefix = (d.get('data_prefix') or {}).get('img')
            if prefix is not None:
                folder = prefix if osp.isabs(prefix) else osp.join(root, prefix)
                if not osp.isdir(folder):
                    raise UserInputError(f'{name}: image folder not found: {folder}')
    return sorted(checked)


def load_config(path, cfg_options=None):
    from mmengine.config import Config
    check_file(path, 'config file')
    try:
        cfg = Config.fromfile(path)
    except Exception as e:  # syntax errors, bad _base_ paths, ...
        raise UserInputError(f'cannot read config {path}: {type(e).__name__}: {e}') from None
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def default_work_dir(config_path):
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])
