"""An independent per-sample ODConv computed from the reference formulas.

It reads the parameters out of a state_dict by their official names and evaluates, sample by
sample, with plain matrix products: the attention 1x1 convs as matmuls, BatchNorm from its
definition, and the convolution as unfold + matmul. Nothing here calls the layer under test.
"""
import torch
import torch.nn.functional as F


def _linear(sd, name, z):
    w = sd[name + '.weight'].flatten(1)  # 1x1 conv == linear map
    out = z @ w.t()
    if name + '.bias' in sd:
        out = out + sd[name + '.bias']
    return out


def _batch_norm(sd, u, training, eps=1e-5):
    if training and u.shape[0] > 1:
        mean = u.mean(0)
        var = ((u - mean) ** 2).mean(0)  # biased variance, as BatchNorm normalises with
    else:
        mean, var = sd['attention.bn.running_mean'], sd['attention.bn.running_var']
    return (u - mean) / torch.sqrt(var + eps) * sd['attention.bn.weight'] + sd['attention.bn.bias']


def _conv_one_sample(x, w, stride, padding, dilation, groups):
    """conv2d of one sample x [C, H, W] with w [O, C/g, k, k] via unfold + matmul."""
    c, h, wd = x.shape
    o, cg, k, _ = w.shape
    cols = F.unfold(x[None], k, dilation=dilation, padding=padding, stride=stride)[0]  # [C*k*k, L]
    oh = (h + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    ow = (wd + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    cols = cols.view(groups, cg * k * k, oh * ow)
    wg = w.view(groups, o // groups, cg * k * k)
    return torch.bmm(wg, cols).reshape(o, oh, ow)


def reference_odconv(sd, x, *, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                     kernel_num, temperature=1.0, training=False, bias=None):
    batch = x.shape[0]
    pooled = x.mean(dim=(2, 3))                                   # [B, in]
    u = _linear(sd, 'attention.fc', pooled)                       # [B, A]
    z = torch.relu(_batch_norm(sd, u, training))
    t = temperature
    alpha_c = torch.sigmoid(_linear(sd, 'attention.channel_fc', z) / t)
    if 'attention.filter_fc.weight' in sd:
        alpha_f = torch.sigmoid(_linear(sd, 'attention.filter_fc', z) / t)
    else:
        alpha_f = torch.ones(batch, sd['weight'].shape[1], dtype=x.dtype)
    if 'attention.spatial_fc.weight' in sd:
        alpha_s = torch.sigmoid(_linear(sd, 'attention.spatial_fc', z) / t).view(batch, kernel_size, kernel_size)
    else:
        alpha_s = torch.ones(batch, kernel_size, kernel_size, dtype=x.dtype)
    if 'attention.kernel_fc.weight' in sd:
        alpha_w = torch.softmax(_linear(sd, 'attention.kernel_fc', z) / t, dim=1)
    else:
        alpha_w = torch.ones(batch, 1, dtype=x.dtype)

    outputs = []
    for b in range(batch):
        w_b = sum(alpha_w[b, i] * alpha_s[b] * sd['weight'][i] for i in range(kernel_num))
        y = _conv_one_sample(alpha_c[b][:, None, None] * x[b], w_b, stride, padding, dilation, groups)
        y = alpha_f[b][:, None, None] * y
        if bias is not None:
            y = y + bias[:, None, None]
        outputs.append(y)
    return torch.stack(outputs)
