"""Batch normalisation from the support set's statistics, with fast first and second derivatives.

:func:`batch_statistics_from` redirects the batch-norm layers of a network so
that every row of a batch is normalised with the statistics of its first
rows (the support set's). Inside it, a normalisation is one autograd node
(:class:`_RowBatchNorm`) whose backward is another (:class:`_RowBatchNormBackward`)
with a hand-written backward of its own: a second-order meta-gradient
(MAML) differentiates batch norm through a handful of per-channel sums and
elementwise passes, instead of through the derivatives of a dozen
elementary operations.
"""

import contextlib

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode


@contextlib.contextmanager
def batch_statistics_from(module, n=None, *, statistics=None):
    """Normalise every batch-norm layer's input with the statistics of its first ``n`` rows.

    Inside the block, each :class:`torch.nn.modules.batch_norm._BatchNorm` of
    ``module`` normalises its whole input with the mean and (biased)
    variance of the first ``n`` samples, computed in the autograd graph
    like training-mode batch norm, and never reads or updates the running
    statistics. With the support set first, the queries are normalised with
    the support set's statistics (MetaBN in Bronskill et al. 2020,
    "TaskNorm"): each query's output depends on the support set and on
    itself only. The layers are put in evaluation mode for the block, so
    they have no side effects, and their calls to
    :func:`torch.nn.functional.batch_norm` are computed by a
    :class:`~torch.overrides.TorchFunctionMode` instead: nothing is computed
    twice. With weight and bias, and no statistics to record or reuse, a
    normalisation is one autograd function on torch's fused batch-norm
    kernels, whose second derivatives are written out (per-channel sums
    and a few elementwise passes); otherwise it is computed from its
    statistics in the graph, ``(x - mean) * (weight / sqrt(var + eps)) +
    bias`` in one pass over ``x``, the variance from ``x - mean`` (more
    accurate than ``E[x^2] - mean^2``).

    Parameters
    ----------
    module : torch.nn.Module
        The network whose batch-norm layers are redirected.
    n : int or None, default=None
        The statistics come from the first ``n`` rows of each layer's input
        (None: all rows). Ignored for layers found in ``statistics``.
    statistics : dict or None, default=None
        Per-layer ``(mean, var)``, keyed by the order of the batch-norm
        calls in a forward pass (0, 1, ...). A layer found there uses them
        instead of its input's (e.g. the support set's, recorded earlier, to
        normalise queries alone); a layer not found there computes its
        statistics and stores them in it. None: compute and keep nothing.
        Use one dictionary per forward pass.

    Yields
    ------
    statistics : dict or None
        The per-layer statistics used in the block (None if not kept).
    """
    layers = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    modes = [layer.training for layer in layers]
    try:
        for layer in layers:
            layer.eval()
        if layers:
            with _RowStatisticsBatchNorm(n, statistics):
                yield statistics
        else:
            yield statistics
    finally:
        for layer, mode in zip(layers, modes):
            layer.train(mode)


def _batch_norm_arguments(
    input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5
):
    return input, weight, bias, eps


def _autocast_enabled(device_type):
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4
        if device_type == "cpu":
            return torch.is_autocast_cpu_enabled()
        return torch.is_autocast_enabled()


def _layout(x):
    """The reduced dimensions of a batch-norm input and the shape of its per-channel tensors."""
    return [0, *range(2, x.dim())], (1, -1) + (1,) * (x.dim() - 2)


def _mean_var(rows, dims):
    mean = rows.mean(dims, keepdim=True)
    centered = rows - mean
    return mean, (centered * centered).mean(dims, keepdim=True)


class _RowStatisticsBatchNorm(TorchFunctionMode):
    """Computes each :func:`torch.nn.functional.batch_norm` call from the first rows' statistics."""

    def __init__(self, n, statistics):
        super().__init__()
        self.n = n
        self.statistics = statistics
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.batch_norm:
            return func(*args, **kwargs)
        x, weight, bias, eps = _batch_norm_arguments(*args, **kwargs)
        index, self.calls = self.calls, self.calls + 1
        n = x.shape[0] if self.n is None else self.n
        if (
            self.statistics is None
            and weight is not None
            and bias is not None
            and not _autocast_enabled(x.device.type)
        ):
            return _RowBatchNorm.apply(x, weight, bias, n, eps)
        # Statistics to record or to reuse: in the graph, as tensors of their own.
        dims, shape = _layout(x)
        if self.statistics is not None and index in self.statistics:
            mean, var = self.statistics[index]
        else:
            mean, var = _mean_var(x[:n], dims)
            if self.statistics is not None:
                self.statistics[index] = (mean, var)
        scale = torch.rsqrt(var + eps)
        if weight is not None:
            scale = scale * weight.reshape(shape)
        shift = -mean * scale
        if bias is not None:
            shift = shift + bias.reshape(shape)
        return torch.addcmul(shift, x, scale)


def _channel_sums(g, x, mean):
    """Per channel, ``sum(g)`` and ``sum(g * (x - mean))``: one fused pass, no temporaries.

    These are the two reductions of batch norm's backward, which computes
    them with unit variance and no input gradient.
    """
    ones = torch.ones_like(mean)
    mask = [False, True, True]
    _, dot, total = torch.ops.aten.native_batch_norm_backward(
        g, x, None, mean, ones, None, None, False, 0.0, mask
    )
    return total, dot


# The normalisation of every row of x with the statistics of its first n rows S (m values per
# channel there), per channel:
#     y = s (x - mu) + beta,   s = gamma k,   k = (var + eps)^(-1/2),
# with mu and var the mean and the biased variance over S. With G = sum(gy) and
# A = sum(gy (x - mu)) over all rows, its backward is
#     gbeta = G,   ggamma = k A,   gx = s gy + [S] (-s G / m - s k^2 A (x - mu) / m),
# where [S] restricts a term to the rows of S. Per-channel tensors have shape (C,); torch's
# batch-norm kernels compute the passes over x: the normalisation, G and A with s gy (the
# evaluation-mode backward, for the statistics' rows given), or all three terms when S holds
# every row (the training-mode backward).


class _RowBatchNorm(torch.autograd.Function):
    """``(x - mean) * weight / sqrt(var + eps) + bias``, statistics from the first ``n`` rows."""

    @staticmethod
    def forward(ctx, x, weight, bias, n, eps):
        if n >= x.shape[0]:
            y, mean, k = torch.native_batch_norm(x, weight, bias, None, None, True, 0.0, eps)
            var = None
        else:
            # The statistics of the first rows, then every row normalised with them.
            _, mean, k = torch.native_batch_norm(x[:n], None, None, None, None, True, 0.0, eps)
            var = k.pow(-2) - eps
            y = torch.native_batch_norm(x, weight, bias, mean, var, False, 0.0, eps)[0]
        ctx.save_for_backward(x, weight, mean, k)
        ctx.n, ctx.eps, ctx.var = n, eps, var
        return y

    @staticmethod
    def backward(ctx, gy):
        x, weight, mean, k = ctx.saved_tensors
        gx, gweight, gbias = _RowBatchNormBackward.apply(
            gy, x, weight, mean, k, ctx.var, ctx.n, ctx.eps
        )
        return gx, gweight, gbias, None, None


class _RowBatchNormBackward(torch.autograd.Function):
    """The backward of :class:`_RowBatchNorm` as a function of ``(gy, x, weight)``.

    It reads ``x`` also through ``mean`` and ``k``, functions of ``x``
    computed by the forward: its own backward (the second derivatives)
    differentiates them as such.
    """

    @staticmethod
    def forward(ctx, gy, x, weight, mean, k, var, n, eps):
        _, shape = _layout(x)
        m = n * (x[0].numel() // x.shape[1])
        mask = [True, True, True]
        if var is None:  # statistics of every row
            gx, gweight, gbias = torch.ops.aten.native_batch_norm_backward(
                gy, x, weight, None, None, mean, k, True, eps, mask
            )
        else:
            gx, gweight, gbias = torch.ops.aten.native_batch_norm_backward(
                gy, x, weight, mean, var, None, None, False, eps, mask
            )
            s = k * weight
            slope = -s * k * gweight / m  # -s k^2 A / m
            offset = -s * gbias / m - slope * mean
            gx[:n].addcmul_(x[:n], slope.reshape(shape)).add_(offset.reshape(shape))
        ctx.save_for_backward(gy, x, weight, mean, k, gbias.clone(), gweight / k)
        ctx.n, ctx.m = n, m
        return gx, gweight, gbias

    @staticmethod
    @once_differentiable
    def backward(ctx, ggx, ggweight, ggbias):
        # The derivatives of L2 = <ggx, gx> + <ggweight, gweight> + <ggbias, gbias>. With
        # P = sum_S(ggx), Q = sum_S(ggx (x - mu)), T = sum(ggx gy) and the per-channel
        # c_gamma = ggweight, c_beta = ggbias:
        #   L2 = s T - s G P / m - s k^2 A Q / m + c_gamma k A + c_beta G,
        # a function of gy through G, A and T, of gamma through s, and of x through k, mu
        # (dmu/dx = [S] / m, dk/dx = -[S] k^3 (x - mu) / m), A and Q.
        gy, x, gamma, mean, k, total, moment = ctx.saved_tensors
        n, m = ctx.n, ctx.m
        _, shape = _layout(x)
        s = k * gamma
        zero = torch.zeros_like(k)
        if ggx is None:
            p = q = t = zero
        else:
            p, q = _channel_sums(ggx[:n], x[:n], mean)
            t = _channel_sums(ggx, gy, zero)[1]
        c_gamma = zero if ggweight is None else ggweight
        c_beta = zero if ggbias is None else ggbias
        k3 = k * k * k
        d_moment = c_gamma * k - gamma * k3 * q / m  # dL2/dA
        d_q = -gamma * k3 * moment / m  # dL2/dQ
        d_k = gamma * (t - total * p / m - 3 * k * k * moment * q / m) + c_gamma * moment
        d_gy = d_x = d_weight = None
        if ctx.needs_input_grad[0]:
            # ggx s + (x - mu) dL2/dA + c_beta - s P / m
            offset = c_beta - s * p / m - mean * d_moment
            d_gy = torch.addcmul(offset.reshape(shape), x, d_moment.reshape(shape))
            if ggx is not None:
                d_gy.addcmul_(ggx, s.reshape(shape))
        if ctx.needs_input_grad[1]:
            # gy dL2/dA; over S, + ggx dL2/dQ
            # - (x - mu) k^3 dL2/dk / m - (dL2/dA G + dL2/dQ P) / m
            d_x = gy * d_moment.reshape(shape)
            slope = -d_k * k3 / m
            offset = -(d_moment * total + d_q * p) / m - slope * mean
            rows = d_x[:n].addcmul_(x[:n], slope.reshape(shape)).add_(offset.reshape(shape))
            if ggx is not None:
                rows.addcmul_(ggx[:n], d_q.reshape(shape))
        if ctx.needs_input_grad[2]:
            d_weight = k * (t - total * p / m - k * k * moment * q / m)
        return d_gy, d_x, d_weight, None, None, None, None, None
