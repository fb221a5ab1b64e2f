"""Export a config's backbone to ONNX with a dynamic batch dimension.

    python tools/deployment/export_onnx.py CONFIG OUT.onnx [--checkpoint CKPT] [--input-size H W]

The official ODConv export folds the batch into the conv's ``groups`` and so freezes the batch
size. ODConv2d switches to its batch-independent formulation (im2col + batched matmul) while
it is traced, so the exported graph takes any batch size. Batch, height and width are dynamic
axes. The backbone is exported in eval mode at the checkpoint's ODConv temperature (the
temperature hook stores it; ``--temperature`` overrides it). With onnxruntime installed, the
export is checked against PyTorch at batch 1 and 3 before the file is kept.
"""
import argparse
import sys
import warnings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export a backbone to ONNX (dynamic batch)')
    parser.add_argument('config', help='mmdet config whose model.backbone is exported')
    parser.add_argument('out', help='ONNX file to write')
    parser.add_argument('--checkpoint', help='detector (backbone.* keys) or backbone checkpoint')
    parser.add_argument('--input-size', type=int, nargs=2, default=(224, 224), metavar=('H', 'W'),
                        help='example input size used for tracing (default 224 224)')
    parser.add_argument('--temperature', type=float, help='ODConv temperature (default: checkpoint or 1)')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--trust', action='store_true',
                        help='unpickle the checkpoint fully (only for a file you trust: it can run code)')
    parser.add_argument('--no-check', action='store_true', help='skip the onnxruntime comparison')
    return parser.parse_args(argv)


def load_backbone(cfg, checkpoint, trust=False):
    from mmdet.registry import MODELS

    from odconv_mmdet.compat import UntrustedCheckpointError, safe_load
    from odconv_mmdet.converters import UnrecognisedCheckpoint, extract_state_dict, strip_detector_prefix
    from odconv_mmdet.utils.checks import UserInputError, check_file

    backbone_cfg = cfg.get('model', {}).get('backbone')
    if backbone_cfg is None:
        raise UserInputError('the config has no model.backbone to export')
    backbone_cfg = dict(backbone_cfg)
    backbone_cfg.pop('init_cfg', None)  # weights come from --checkpoint, never from the network
    backbone = MODELS.build(backbone_cfg)
    temperature = None
    if checkpoint:
        check_file(checkpoint, 'checkpoint')
        try:
            state = safe_load(checkpoint, 'cpu', trusted=trust, opt_in='pass --trust')
        except UntrustedCheckpointError as err:
            raise UserInputError(str(err)) from err
        except Exception as err:  # not a torch file, truncated, ...
            raise UserInputError(f'cannot read checkpoint {checkpoint}: {err}') from err
        try:
            weights = strip_detector_prefix(extract_state_dict(state))
        except UnrecognisedCheckpoint as err:
            raise UserInputError(f'{checkpoint}: {err}') from err
        temperature = state.get('meta', {}).get('odconv_temperature')
        own = backbone.state_dict()
        wrong = [k for k, v in weights.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
        if wrong:
            raise UserInputError(f'{checkpoint} does not fit this backbone: {len(wrong)} weights have other '
                                 f'shapes, e.g. {wrong[0]} {tuple(weights[wrong[0]].shape)} vs '
                                 f'{tuple(own[wrong[0]].shape)}')
        missing, unexpected = backbone.load_state_dict(weights, strict=False)
        if missing:
            raise UserInputError(f'{checkpoint} lacks {len(missing)} backbone weights, e.g. {missing[:3]}')
        if unexpected:
            print(f'note: ignored {len(unexpected)} keys that are not backbone weights')
    backbone.eval()
    return backbone, temperature


def main(argv=None):
    args = parse_args(argv)
    import torch

    import odconv_mmdet  # noqa: F401  (registers the OD modules)
    from odconv_mmdet.layers.odconv import set_temperature
    from odconv_mmdet.utils.checks import UserInputError, load_config
    from odconv_mmdet.utils.io import write_atomically
    from odconv_mmdet.utils.onnx_export import export_torchscript_onnx

    try:
        if any(s < 32 for s in args.input_size):
            raise UserInputError(f'--input-size must be at least 32 32, got {tuple(args.input_size)}')
        cfg = load_config(args.config)
        backbone, temperature = load_backbone(cfg, args.checkpoint, args.trust)
    except UserInputError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    temperature = args.temperature or temperature or 1.0
    set_temperature(backbone, temperature)
    example = torch.randn(2, 3, *args.input_size)
    with torch.no_grad():
        outputs = backbone(example)
    names = [f'feat{i}' for i in range(len(outputs))]
    dynamic = {'input': {0: 'batch', 2: 'height', 3: 'width'}}
    dynamic.update({n: {0: 'batch', 2: f'{n}_height', 3: f'{n}_width'} for n in names})

    def export(path):
        # The tracer warns about every shape-based choice in the graph; they are intended
        # (the choices do not depend on the batch size).
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        warnings.filterwarnings('ignore', category=DeprecationWarning, module='torch.onnx')
        export_torchscript_onnx(backbone, (example,), path, opset_version=args.opset,
                                input_names=['input'], output_names=names, dynamic_axes=dynamic)
        if not args.no_check:
            check(backbone, path, args.input_size)

    write_atomically(args.out, export)
    print(f'wrote {args.out} ({len(names)} outputs, dynamic batch, ODConv temperature {temperature:g})')
    return 0


def check(backbone, path, input_size, batches=(1, 3), tolerance=1e-4):
    """Runs the export in onnxruntime against PyTorch; raises if they differ."""
    try:
        import onnxruntime
    except ImportError:
        print('note: onnxruntime is not installed; the export was not checked')
        return
    import numpy as np
    import torch
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    for batch in batches:
        x = torch.randn(batch, 3, *input_size)
        with torch.no_grad():
            expected = [t.numpy() for t in backbone(x)]
        got = session.run(None, {'input': x.numpy()})
        for e, g in zip(expected, got):
            err = float(np.abs(e - g).max() / max(np.abs(e).max(), 1e-12))
            if e.shape != g.shape or not err <= tolerance:
                raise RuntimeError(f'ONNX output differs from PyTorch at batch {batch}: shapes {e.shape} '
                                   f'vs {g.shape}, max error {err:.2e} relative to the largest value')
        print(f'checked in onnxruntime at batch {batch}: matches PyTorch within {tolerance:g}')


if __name__ == '__main__':
    sys.exit(main())
