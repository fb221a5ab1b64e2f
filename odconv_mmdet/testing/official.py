"""The official ODConv layer's computation: the tests' oracle and the benchmarks' baseline.

Written from shared/docs/odconv-reference.md (not copied), op for op as the official
``modules/odconv.py`` computes it, so that "faster than the official code" is measured against
what the official code does:

* attention: ``AdaptiveAvgPool2d(1)``, then the 1x1 *convs* ``fc`` -> ``bn`` -> ReLU and the
  heads on the [B, C, 1, 1] tensor; a missing head gives the scalar 1.0;
* kernels: ``spatial * kernel * weight[None]`` as a [B, K, out, in/g, k, k] product summed
  over K, the batch folded into the groups of one conv, channel attention on the input and
  filter attention on the output;
* the K = 1, 1x1 shortcut: a plain conv with the shared kernel ``weight[0]``.

Parameter names and shapes are the official ones (the same as ODConv2d's), so
``OfficialODConv2d.from_layer(odconv)`` runs the same function on a copy of its weights, and
``reference_odconv(state_dict, x, ...)`` on the tensors of a state dict (float64 too).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class OfficialAttention(nn.Module):

    def __init__(self, in_channels, out_channels, kernel_size, groups=1, reduction=0.0625, kernel_num=4,
                 min_channels=16, attention_channels=None):
        super().__init__()
        if attention_channels is None:
            attention_channels = max(int(in_channels * reduction), min_channels)
        self.kernel_size = kernel_size
        self.temperature = 1.0
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(in_channels, attention_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(attention_channels)
        self.relu = nn.ReLU(inplace=True)
        self.channel_fc = nn.Conv2d(attention_channels, in_channels, 1, bias=True)
        depthwise = in_channels == groups and in_channels == out_channels
        self.filter_fc = None if depthwise else nn.Conv2d(attention_channels, out_channels, 1, bias=True)
        self.spatial_fc = None if kernel_size == 1 else nn.Conv2d(
            attention_channels, kernel_size * kernel_size, 1, bias=True)
        self.kernel_fc = None if kernel_num == 1 else nn.Conv2d(attention_channels, kernel_num, 1, bias=True)

    def forward(self, x):
        z = self.relu(self.bn(self.fc(self.avgpool(x))))
        batch, t, k = x.size(0), self.temperature, self.kernel_size
        channel = torch.sigmoid(self.channel_fc(z).view(batch, -1, 1, 1) / t)
        filter_att = 1.0 if self.filter_fc is None else torch.sigmoid(
            self.filter_fc(z).view(batch, -1, 1, 1) / t)
        spatial = 1.0 if self.spatial_fc is None else torch.sigmoid(
            self.spatial_fc(z).view(batch, 1, 1, 1, k, k) / t)
        kernel = 1.0 if self.kernel_fc is None else F.softmax(
            self.kernel_fc(z).view(batch, -1, 1, 1, 1, 1) / t, dim=1)
        return channel, filter_att, spatial, kernel


class OfficialODConv2d(nn.Module):

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 reduction=0.0625, kernel_num=4, attention_channels=None):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.kernel_num = kernel_size, kernel_num
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.attention = OfficialAttention(in_channels, out_channels, kernel_size, groups, reduction, kernel_num,
                                           attention_channels=attention_channels)
        self.weight = nn.Parameter(torch.randn(kernel_num, out_channels, in_channels // groups,
                                               kernel_size, kernel_size))
        self.pointwise_static = kernel_size == 1 and kernel_num == 1

    @classmethod
    def from_layer(cls, layer):
        """The official layer holding a copy of an ODConv2d's parameters and buffers."""
        official = cls(layer.in_channels, layer.out_channels, layer.kernel_size[0], layer.stride,
                       layer.padding, layer.dilation, layer.groups, layer.reduction, layer.kernel_num)
        official.load_state_dict(layer.state_dict())
        official.attention.temperature = layer.temperature
        official.train(layer.training)
        official.attention.bn.train(layer.attention.bn.training)  # e.g. eval for batch-1 training
        return official.to(layer.weight.device, layer.weight.dtype)

    def forward(self, x):
        channel, filter_att, spatial, kernel = self.attention(x)
        if self.pointwise_static:
            out = F.conv2d(x * channel, self.weight.squeeze(0), None, self.stride, self.padding, self.dilation,
                           self.groups)
            return out * filter_att
        batch, _, height, width = x.shape
        x = (x * channel).reshape(1, -1, height, width)
        weight = torch.sum(spatial * kernel * self.weight.unsqueeze(0), dim=1).view(
            -1, self.in_channels // self.groups, self.kernel_size, self.kernel_size)
        out = F.conv2d(x, weight, None, self.stride, self.padding, self.dilation, self.groups * batch)
        return out.view(batch, self.out_channels, out.size(-2), out.size(-1)) * filter_att


def reference_odconv(sd, x, *, kernel_size, stride=1, padding=0, dilation=1, groups=1, kernel_num,
                     temperature=1.0, training=False, bias=None):
    """The official computation of x with the parameters and buffers of ``sd`` (official names;
    gradients flow to its tensors; its buffers are left unchanged). In training at batch 1, where
    the official BatchNorm raises, the sample is normalised with the running statistics."""
    weight = sd['weight']
    official = OfficialODConv2d(weight.size(2) * groups, weight.size(1), kernel_size, stride, padding, dilation,
                                groups, kernel_num=kernel_num, attention_channels=sd['attention.fc.weight'].size(0))
    official.attention.temperature = temperature
    official.train(training)
    official.attention.bn.train(training and x.size(0) > 1)
    buffers = ('running_mean', 'running_var', 'num_batches_tracked')
    tensors = {name: t.clone() if name.endswith(buffers) else t for name, t in sd.items() if name != 'bias'}
    assert set(tensors) == set(official.state_dict()), 'sd must hold exactly the official keys (and bias)'
    out = torch.func.functional_call(official.to(x.dtype), tensors, (x,))
    return out if bias is None else out + bias.view(1, -1, 1, 1)
