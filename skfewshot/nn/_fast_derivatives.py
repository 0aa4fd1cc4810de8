"""A context computing convolutions and max-pooling with fast second derivatives."""

from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from ._batch_norm import _autocast_enabled
from ._convolution import Conv2d, conv2d_arguments
from ._pooling import MaxPool2d, disjoint_windows, max_pool2d_arguments


class fast_second_derivatives(TorchFunctionMode):  # noqa: N801  (a context, named as one)
    """Compute the block's 2-D convolutions and max-pooling for second-order meta-gradients.

    :func:`torch.nn.functional.conv2d` runs as :class:`~._convolution.Conv2d`,
    whose second derivatives run on the convolution kernels, and
    :func:`torch.nn.functional.max_pool2d` over disjoint windows as
    :class:`~._pooling.MaxPool2d`, which keeps its indices instead of its
    input. The values and derivatives are torch's; only the way they are
    computed, and what is kept for them, changes. Calls under autocast,
    with a padding given by name, overlapping or dilated windows, indices
    returned, or an input that is not a 4-D batch keep torch's own.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.conv2d:
            arguments = conv2d_arguments(*args, **kwargs)
            x, padding = arguments[0], arguments[4]
            if (
                x.dim() == 4
                and not isinstance(padding, str)
                and not _autocast_enabled(x.device.type)
            ):
                return Conv2d.apply(*arguments)
        elif func is F.max_pool2d:
            x, kernel_size, stride, padding, dilation, ceil_mode, indices = max_pool2d_arguments(
                *args, **kwargs
            )
            if x.dim() == 4 and not indices and disjoint_windows(kernel_size, stride, dilation):
                return MaxPool2d.apply(x, kernel_size, stride, padding, ceil_mode)
        return func(*args, **kwargs)
