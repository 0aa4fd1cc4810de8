"""ANIL with plain autograd: ``handwritten_anil.py``'s loop without ``torch.func``.

The head's inner gradients come from ``torch.autograd.grad(loss, head,
create_graph=True)``, the way learn2learn's ``MAML`` computes them on a head;
everything else (episodes, weights, the one embedding pass, meta-batches) is
``handwritten_anil.py``'s. Time it with ``gradient_speed.py --methods anil`` or
``training_speed.py --methods anil_autograd``.
"""

from functools import partial

import handwritten_anil
import torch
from handwritten_anil import SHAPE, head_loss, learner

__all__ = ["SHAPE", "autograd_gradients", "handwritten_loop", "learner"]


def autograd_gradients(head, z, labels, first_order):
    """The head's inner gradients with ``torch.autograd.grad`` (the embeddings held fixed)."""
    if first_order:
        head, z = {k: v.detach().requires_grad_() for k, v in head.items()}, z.detach()
    else:  # fresh nodes: partial derivatives, as torch.func.grad's (a prototype head is a
        # function of the embeddings; a zero head needs a gradient, no meta-gradient)
        head = {
            k: (v if v.requires_grad else v.requires_grad_()).view_as(v) for k, v in head.items()
        }
    grads = torch.autograd.grad(
        head_loss(head, z, labels), list(head.values()), create_graph=not first_order
    )
    return dict(zip(head, grads))


handwritten_loop = partial(handwritten_anil.handwritten_loop, gradients=autograd_gradients)
