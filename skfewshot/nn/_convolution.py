"""2-D convolutions whose second derivatives run on the convolution kernels.

torch differentiates the backward of a convolution (as a second-order
meta-gradient does) with, for the weight term, a convolution over the
transposed batch whose kernel is the size of the feature map: a slow kernel
on CPUs, after copies into that layout. Inside
:class:`fast_second_derivatives`, :func:`torch.nn.functional.conv2d` is one
autograd node (:class:`Conv2d`) whose backward is another
(:class:`_Conv2dBackward`), and the derivatives of that backward are
written with the three kernels every convolution has: the forward, the
input gradient and the weight gradient.
"""

import torch
from torch.autograd.function import once_differentiable
from torch.nn import functional as F


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def conv2d_arguments(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """The arguments of :func:`torch.nn.functional.conv2d`, as :class:`Conv2d` takes them."""
    padding = padding if isinstance(padding, str) else _pair(padding)
    return input, weight, bias, _pair(stride), padding, _pair(dilation), groups


def _convolution_backward(grad, x, weight, conv, mask, bias=False):
    """``torch.ops.aten.convolution_backward`` of ``F.conv2d(x, weight, **conv)``."""
    stride, padding, dilation, groups = conv
    bias_sizes = [weight.shape[0]] if bias else None
    return torch.ops.aten.convolution_backward(
        grad, x, weight, bias_sizes, stride, padding, dilation, False, (0, 0), groups, mask
    )


class Conv2d(torch.autograd.Function):
    """:func:`torch.nn.functional.conv2d` with :class:`_Conv2dBackward` as its backward."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        ctx.conv = (stride, padding, dilation, groups)
        ctx.save_for_backward(x, weight)
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grads = _Conv2dBackward.apply(grad, x, weight, ctx.conv, *ctx.needs_input_grad[:3])
        return *grads, None, None, None, None


class _Conv2dBackward(torch.autograd.Function):
    """A convolution's input, weight and bias gradients, as a function of ``(grad, x, weight)``.

    They are linear in ``grad``, the input gradient in ``weight`` and the
    weight gradient in ``x``. So for ``L2 = <g_x, grad_x> + <g_w, grad_w> +
    <g_b, grad_b>``: ``dL2/dgrad = conv(g_x, weight) + conv(x, g_w) + g_b``,
    ``dL2/dx`` is the input gradient of ``conv(., g_w)`` for ``grad``, and
    ``dL2/dweight`` the weight gradient of ``conv(g_x, .)`` for ``grad``.
    """

    @staticmethod
    def forward(ctx, grad, x, weight, conv, input_grad, weight_grad, bias_grad):
        ctx.conv, ctx.shape = conv, grad.shape
        # grad is read by the derivatives of the input gradient with respect to weight and of
        # the weight gradient with respect to x only: a first layer's (x, the data) needs none.
        x_wants, weight_wants = ctx.needs_input_grad[1:3]
        wanted = (input_grad and weight_wants) or (weight_grad and x_wants)
        ctx.save_for_backward(grad if wanted else None, x, weight)
        mask = (input_grad, weight_grad, bias_grad)
        return _convolution_backward(grad, x, weight, conv, mask, bias=bias_grad)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_x, g_weight, g_bias):
        grad, x, weight = ctx.saved_tensors
        stride, padding, dilation, groups = conv = ctx.conv
        d_grad = d_x = d_weight = None
        if ctx.needs_input_grad[0]:
            terms = []
            if g_x is not None:
                terms.append(F.conv2d(g_x, weight, None, stride, padding, dilation, groups))
            if g_weight is not None:
                terms.append(F.conv2d(x, g_weight, None, stride, padding, dilation, groups))
            if g_bias is not None:
                terms.append(g_bias.reshape(1, -1, 1, 1))
            if terms:
                d_grad = terms[0]  # a new tensor, of grad's shape unless the bias term alone
                for term in terms[1:]:
                    d_grad = d_grad.add_(term)
                d_grad = d_grad.expand(ctx.shape)
        if ctx.needs_input_grad[1] and g_weight is not None:
            d_x = _convolution_backward(grad, x, g_weight, conv, (True, False, False))[0]
        if ctx.needs_input_grad[2] and g_x is not None:
            d_weight = _convolution_backward(grad, g_x, weight, conv, (False, True, False))[1]
        return d_grad, d_x, d_weight, None, None, None, None
