import inspect

import torch


def export_torchscript_onnx(model, args, f, **kwargs):
    """``torch.onnx.export`` by torch's TorchScript-based exporter, which needs no onnxscript.
    torch >= 2.5 also has the dynamo exporter (its default from 2.9), chosen by a ``dynamo``
    argument that torch < 2.5 does not take: passed only where it exists."""
    if 'dynamo' in inspect.signature(torch.onnx.export).parameters:
        kwargs['dynamo'] = False
    torch.onnx.export(model, args, f, **kwargs)
