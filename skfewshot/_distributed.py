"""Collectives of :mod:`torch.distributed` for meta-batches split across processes.

The helpers of :class:`~skfewshot.callbacks.DistributedMetaBatch`: which
episodes of a meta-batch a process trains on, the gathering of the
episodes' losses and outputs, and the summing of the gradients. Every
function here is collective: all the processes of the default group call
it, in the same order.
"""

import os

import torch
from torch import distributed as dist
from torch.nn.parameter import is_lazy


def initialized():
    """Whether a default process group of :mod:`torch.distributed` is initialised."""
    return dist.is_available() and dist.is_initialized()


def launched_world_size():
    """The number of processes a launcher (``torchrun``) started, from ``WORLD_SIZE``; 1 if
    none did."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def rank_and_world_size():
    """``(rank, world_size)`` of this process in the default process group."""
    return dist.get_rank(), dist.get_world_size()


def all_gather(obj):
    """Every process's ``obj`` (picklable), in the order of the ranks."""
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj):
    """Rank 0's ``obj`` (picklable), on every process."""
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def share(items, rank, world_size):
    """The items of a meta-batch this process works on: ``rank``, ``rank + world_size``, ..."""
    return list(items)[rank::world_size]


def interleave(parts):
    """Undo :func:`share`: the items of every rank's part, in the meta-batch's order."""
    world_size = len(parts)
    ordered = [None] * sum(len(part) for part in parts)
    for rank, part in enumerate(parts):
        for j, item in enumerate(part):
            ordered[rank + j * world_size] = item
    return ordered


def to_device(value, device):
    """``value`` (a tensor, or a tuple or list of them) on ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(to_device(v, device) for v in value)
    return value


def _coalesced(tensors, collective):
    """Run ``collective`` (in place) on ``tensors`` as one flat tensor per device and dtype."""
    groups = {}
    for tensor in tensors:
        groups.setdefault((tensor.device, tensor.dtype), []).append(tensor)
    with torch.no_grad():
        for group in groups.values():
            flat = torch.cat([tensor.reshape(-1) for tensor in group])
            collective(flat)
            offset = 0
            for tensor in group:
                size = tensor.numel()
                tensor.copy_(flat[offset : offset + size].view(tensor.shape))
                offset += size


def learnable(net):
    """The learnable parameters of ``net``'s modules and criteria (built ones only)."""
    return [p for _, p in net.get_all_learnable_params() if not is_lazy(p)]


def _buffers(net):
    seen, buffers = set(), []
    for name in net._modules + net._criteria:
        module = getattr(net, name + "_", None)
        if not isinstance(module, torch.nn.Module):
            continue
        for buffer in module.buffers():
            # Lazy buffers have no shape yet; a boolean buffer is no statistic.
            if id(buffer) in seen or is_lazy(buffer) or buffer.dtype == torch.bool:
                continue
            if not buffer.numel():
                continue
            seen.add(id(buffer))
            buffers.append(buffer)
    return buffers


def broadcast_state(net):
    """Set the weights and buffers of ``net``'s modules and criteria to rank 0's."""
    tensors = learnable(net)
    seen = {id(p) for p in tensors}
    tensors += [b for b in _buffers(net) if id(b) not in seen]
    _coalesced(tensors, lambda flat: dist.broadcast(flat, src=0))


def sum_gradients(net):
    """Sum the gradients of ``net``'s learnable parameters over the processes.

    A parameter that has a gradient in some process gets the sum on every
    process (a process whose share of the meta-batch gave it none adds
    zeros); a parameter that has none anywhere keeps none, as it would in a
    single process (the optimizer then leaves it, and its state, alone).
    """
    params = learnable(net)
    if not params:
        return
    has_grad = torch.tensor(
        [p.grad is not None for p in params], dtype=torch.int32, device=params[0].device
    )
    dist.all_reduce(has_grad)
    grads = []
    for p, flag in zip(params, has_grad.tolist()):
        if flag:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
    _coalesced(grads, dist.all_reduce)


def broadcast_buffers(net):
    """Set the buffers of ``net``'s modules (batch-norm statistics, ...) to rank 0's."""
    buffers = _buffers(net)
    if buffers:
        _coalesced(buffers, lambda flat: dist.broadcast(flat, src=0))
