"""2-D max-pooling that keeps only the indices of the maxima for its backward.

torch's max-pooling keeps its input for the backward; this one keeps the
indices alone (the input's shape suffices), and its backward scatters the
gradient to them with :func:`torch.nn.functional.max_unpool2d`, a
differentiable function of the gradient (second derivatives). In a
second-order meta-gradient the input stays alive from the forward to the
meta-update otherwise, a pooled block's largest tensor.
"""

import torch
from torch.nn import functional as F

from ._convolution import _pair


def max_pool2d_arguments(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """The arguments of :func:`torch.nn.functional.max_pool2d`, normalised to pairs."""
    kernel_size = _pair(kernel_size)
    stride = kernel_size if stride is None or stride == [] else _pair(stride)
    return input, kernel_size, stride, _pair(padding), _pair(dilation), ceil_mode, return_indices


def disjoint_windows(kernel_size, stride, dilation):
    """Whether every input value is in one pooling window at most (then its gradient is one
    output's, which :func:`~torch.nn.functional.max_unpool2d` scatters)."""
    return dilation == (1, 1) and all(s >= k for s, k in zip(stride, kernel_size))


class MaxPool2d(torch.autograd.Function):
    """:func:`torch.nn.functional.max_pool2d` over disjoint windows, keeping its indices only."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode):
        y, indices = F.max_pool2d(
            x, kernel_size, stride, padding, ceil_mode=ceil_mode, return_indices=True
        )
        ctx.save_for_backward(indices)
        ctx.pool = (kernel_size, stride, padding, x.shape[-2:])
        return y

    @staticmethod
    def backward(ctx, gy):
        (indices,) = ctx.saved_tensors
        kernel_size, stride, padding, size = ctx.pool
        gx = F.max_unpool2d(gy, indices, kernel_size, stride, padding, output_size=size)
        return gx, None, None, None, None
