"""MAML with plain autograd: ``handwritten_maml.py``'s loop without ``torch.func``.

The inner gradients come from ``torch.autograd.grad(loss, params,
create_graph=True)`` over the written-out Conv4, the way learn2learn's
``MAML`` computes them; everything else (episodes, weights, head, meta-batches)
is ``handwritten_maml.py``'s. Time it with ``training_speed.py --methods
maml_autograd``.
"""

from functools import partial

import handwritten_maml
import torch
from handwritten_maml import SHAPE, learner, support_loss  # noqa: F401  (read by training_speed.py)


def autograd_gradients(params, support, labels, first_order):
    """The inner gradients with ``torch.autograd.grad``."""
    if first_order:
        params = {k: v.detach().requires_grad_() for k, v in params.items()}
    else:  # fresh nodes: partial derivatives, as torch.func.grad's (a prototype head is a
        # function of the encoder's weights; a zero head needs a gradient, no meta-gradient)
        params = {
            k: (v if v.requires_grad else v.requires_grad_()).view_as(v) for k, v in params.items()
        }
    grads = torch.autograd.grad(
        support_loss(params, support, labels), list(params.values()), create_graph=not first_order
    )
    return dict(zip(params, grads))


handwritten_loop = partial(handwritten_maml.handwritten_loop, gradients=autograd_gradients)
