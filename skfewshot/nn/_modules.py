"""Standard few-shot backbones. Plain torch modules: they know nothing of sklearn."""

from torch import nn


def conv_block(in_channels, out_channels, pool=True):
    """conv3x3 -> BatchNorm -> ReLU -> 2x2 max-pool (if ``pool``), the unit of Conv4.

    The pooling is applied before the ReLU: the two commute exactly (the
    ReLU is monotonic), and the ReLU then runs on a quarter of the values.
    """
    layers = [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Conv4(nn.Module):
    """The standard four-block convolutional few-shot backbone.

    Four blocks of 3x3 convolution (``hidden_channels`` filters), batch
    normalisation, ReLU and 2x2 max-pooling (Vinyals et al. 2016, Snell et
    al. 2017). On 28x28 Omniglot images it yields 64-dimensional embeddings.

    Parameters
    ----------
    in_channels : int, default=1
        Channels of the input images.
    hidden_channels : int, default=64
        Filters of the first three blocks.
    out_channels : int, default=64
        Filters of the last block.
    flatten : bool, default=True
        Return (n, d) embeddings; with False, the (n, c, h, w) feature maps
        (what relation modules consume).
    pooled_blocks : int, default=4
        How many of the blocks, from the first, end with max-pooling. Relation
        Networks pool only the first two, keeping 7x7 maps of 28x28 images.
    """

    def __init__(
        self, in_channels=1, hidden_channels=64, out_channels=64, flatten=True, pooled_blocks=4
    ):
        super().__init__()
        self.flatten = flatten
        widths = [in_channels, hidden_channels, hidden_channels, hidden_channels, out_channels]
        self.blocks = nn.Sequential(
            *[conv_block(widths[i], widths[i + 1], pool=i < pooled_blocks) for i in range(4)]
        )

    def forward(self, x):
        maps = self.blocks(x)
        return maps.flatten(1) if self.flatten else maps


class MLP(nn.Module):
    """A multilayer perceptron encoder for vector data.

    Parameters
    ----------
    in_features : int or None, default=None
        Input dimension; None infers it at the first forward pass
        (:class:`torch.nn.LazyLinear`).
    hidden_features : sequence of int, default=(64,)
        Widths of the hidden layers, each followed by ``activation``.
    out_features : int, default=64
        Embedding dimension.
    activation : type of torch.nn.Module, default=torch.nn.ReLU
        Non-linearity between layers.
    """

    def __init__(
        self, in_features=None, hidden_features=(64,), out_features=64, activation=nn.ReLU
    ):
        super().__init__()
        layers, width = [], in_features
        for hidden in (*hidden_features, out_features):
            layers.append(nn.LazyLinear(hidden) if width is None else nn.Linear(width, hidden))
            layers.append(activation())
            width = hidden
        self.layers = nn.Sequential(*layers[:-1])

    def forward(self, x):
        return self.layers(x.flatten(1))


__all__ = ["Conv4", "MLP", "conv_block"]
