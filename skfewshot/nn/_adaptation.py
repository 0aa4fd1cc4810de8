"""Gradient-based adaptation to a support set, with ``torch.func`` (MAML and its family).

A :class:`GradientAdaptation` model takes an episode ``(support,
support_labels, query)``: it puts a linear head sized to the episode's
classes on an encoder, adapts the encoder and the head (or the head alone)
to the support set by a few steps of an *update rule*, and returns the
query logits of the adapted network. The meta-parameters (the encoder's
initial weights and the rule's own weights) are never changed in place:
the adapted weights are new tensors, functions of the meta-parameters, so
the query loss differentiates through the adaptation (second order) or,
with ``first_order=True``, through the last update only.

Update rules are modules with ``init_state(params)`` and ``forward(params,
grads, loss, state) -> (params, state)`` over a dict of named tensors:

* :class:`GradientStep`: ``p - lr * grad``, with a fixed rate (MAML) or
  meta-learned per-parameter rates (Meta-SGD);
* :class:`LSTMOptimizer`: the coordinate-wise LSTM of Andrychowicz et al.
  (2016), which outputs the update;
* :class:`MetaLearnerLSTM`: the LSTM of Ravi & Larochelle (2017) whose
  cell state is the learner's parameters.

:meth:`GradientAdaptation.imitation_loss` measures how far a rule's updates
are from gradient steps, to train a learned rule to imitate gradient descent
before it is meta-trained. They know nothing of scikit-learn.
"""

import contextlib
import functools
import math

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.func import functional_call
from torch.nn import functional as F

from .._param_validation import Boolean, Integer, Options, Positive, validate_params
from ._batch_norm import batch_statistics_from
from ._episode import n_classes
from ._fast_derivatives import fast_second_derivatives

HEAD_INITS = ("zero", "prototypes")
_HEAD = ("head.weight", "head.bias")
ADAPTS = ("all", "head")

#: The constraints of the adaptation options, shared by the module, the learners and the
#: classifiers that set them.
ADAPTATION_CONSTRAINTS = {
    "inner_steps": Integer(0),
    "inner_lr": Positive(),
    "first_order": Boolean(),
    "adapt": Options(*ADAPTS),
    "head_init": Options(*HEAD_INITS),
    "transductive": Boolean(),
}


# -- update rules -----------------------------------------------------------------------------


def _key(name):
    return name.replace(".", "__")


def _variable(tensor, create_graph):
    """A fresh node holding ``tensor``: a view in its graph, or a detached leaf."""
    if create_graph and tensor.requires_grad:
        return tensor.view_as(tensor)
    return tensor.detach().requires_grad_()


def _strided_like(value, like):
    """``value`` laid out in memory like ``like``: a copy only where the strides differ.

    A weight's gradient may come in another layout than the weight (e.g. a
    channels-last convolution with one input channel, whose gradient is
    contiguous); the adapted weight keeps the layout of the meta-parameter,
    which the convolutions of later passes follow.
    """
    if value.shape != like.shape or value.stride() == like.stride():
        return value
    return torch.empty_like(like).copy_(value)


class GradientStep(nn.Module):
    """The update ``p <- p - lr * grad``: MAML's inner step, or Meta-SGD's.

    Parameters
    ----------
    shapes : dict of str to tuple
        Names and shapes of the adapted tensors (used with ``learn_lr``).
    inner_lr : float, default=0.4
        The learning rate; with ``learn_lr=True``, the initial value of
        every learned rate.
    learn_lr : bool, default=False
        Meta-SGD (Li et al. 2017): one meta-learned rate per coordinate of
        each adapted tensor, in the tensor's shape. The head is created
        afresh for each episode and its classes are interchangeable, so its
        rates are shared: :func:`adapted_shapes` gives it one rate for its
        weights and one for its biases.
    """

    def __init__(self, shapes=None, inner_lr=0.4, learn_lr=False):
        super().__init__()
        validate_params(
            {"inner_lr": inner_lr, "learn_lr": learn_lr},
            {"inner_lr": Positive(), "learn_lr": Boolean()},
            "GradientStep",
        )
        self.inner_lr = inner_lr
        self.learn_lr = learn_lr
        if learn_lr:
            if not shapes:
                raise ValueError(
                    "GradientStep(learn_lr=True) needs the shapes of the adapted tensors."
                )
            self.rates = nn.ParameterDict(
                {
                    _key(name): nn.Parameter(torch.full(tuple(shape), float(inner_lr)))
                    for name, shape in shapes.items()
                }
            )

    #: A zero gradient leaves a tensor unchanged: :class:`GradientAdaptation` skips computing
    #: gradients it knows to be zero.
    zero_gradient_is_identity = True

    def init_state(self, params):
        """No state: the step depends on the current gradient only."""
        return

    def forward(self, params, grads, loss, state, scale=1.0):
        if self.learn_lr:
            return {
                name: p - scale * self.rates[_key(name)] * grads[name] for name, p in params.items()
            }, state
        return {name: p - scale * self.inner_lr * grads[name] for name, p in params.items()}, state


def preprocess(x, p=10.0):
    """Andrychowicz et al.'s gradient preprocessing: (log|x| / p, sign x) or (-1, e^p x).

    Maps each coordinate of ``x`` (any shape) to two features of similar
    scale whatever its magnitude; returns a tensor of shape (2, x.numel()):
    one row per feature, one column per coordinate (the layout of
    :func:`lstm_cell`).
    """
    x = x.reshape(-1)
    magnitude = x.abs()
    big = magnitude >= math.exp(-p)
    log_part = torch.where(big, magnitude.clamp_min(1e-30).log() / p, -1.0)
    sign_part = torch.where(big, torch.sign(x), x * math.exp(p))
    return torch.stack([log_part, sign_part])


# -- a coordinate-wise LSTM cell, fused ------------------------------------------------------
#
# The elementwise part of a step comes in two implementations of one pair of functions:
# ``forward(gates, c) -> (h, c_next, saved)`` from the gates' pre-activations, where
# ``saved = (activations, c, tanh(c_next))``, and ``backward(grad_h, grad_c, *saved) ->
# (grad_gates, grad_c)``. The eager pair works in place, one operation at a time; the
# other is written as plain expressions for torch.compile to fuse into one pass over
# memory each.


def _eager_forward(gates, c):
    size = c.shape[0]
    gates[: 3 * size].sigmoid_()
    gates[3 * size :].tanh_()
    i, f, o, g = gates.split(size)
    c_next = (f * c).addcmul_(i, g)
    tanh_c = torch.tanh(c_next)
    return o * tanh_c, c_next, (gates, c, tanh_c)


def _eager_backward(grad_h, grad_c, gates, c, tanh_c):
    size = c.shape[0]
    i, f, o, g = gates.split(size)
    grad_c_next = grad_h * o
    torch.ops.aten.tanh_backward.grad_input(grad_c_next, tanh_c, grad_input=grad_c_next)
    grad_c_next += grad_c
    grad_gates = torch.empty_like(gates)
    d_i, d_f, d_o, d_g = grad_gates.split(size)
    torch.mul(grad_c_next, g, out=d_i)
    torch.mul(grad_c_next, c, out=d_f)
    torch.mul(grad_h, tanh_c, out=d_o)
    torch.mul(grad_c_next, i, out=d_g)
    sigmoids = grad_gates[: 3 * size]
    torch.ops.aten.sigmoid_backward.grad_input(sigmoids, gates[: 3 * size], grad_input=sigmoids)
    torch.ops.aten.tanh_backward.grad_input(d_g, g, grad_input=d_g)
    return grad_gates, grad_c_next.mul_(f)


def _tanh(x):
    # As 2 sigmoid(2x) - 1: a compiled CPU kernel's tanh costs about three sigmoids.
    return 2.0 * torch.sigmoid(2.0 * x) - 1.0


def _fused_forward(gates, c):
    size = c.shape[0]
    i, f, o = (torch.sigmoid(gates[k * size : (k + 1) * size]) for k in range(3))
    g = _tanh(gates[3 * size :])
    c_next = f * c + i * g
    tanh_c = _tanh(c_next)
    return o * tanh_c, c_next, (torch.cat([i, f, o, g]), c, tanh_c)


def _fused_backward(grad_h, grad_c, gates, c, tanh_c):
    size = c.shape[0]
    i, f, o, g = gates.split(size)
    grad_c_next = grad_h * o * (1.0 - tanh_c * tanh_c) + grad_c
    grad_gates = torch.cat(
        [
            grad_c_next * g * i * (1.0 - i),
            grad_c_next * c * f * (1.0 - f),
            grad_h * tanh_c * o * (1.0 - o),
            grad_c_next * i * (1.0 - g * g),
        ]
    )
    return grad_gates, grad_c_next * f


@functools.cache
def _compiled_kernels():
    """``torch.compile`` of the fused pair, made on first use."""
    return torch.compile(_fused_forward), torch.compile(_fused_backward)


class _LSTMCellFunction(torch.autograd.Function):
    """One LSTM step over many independent coordinates, feature-major, with a hand backward.

    ``x`` (I, n), ``h``, ``c`` (H, n); ``weight`` (4H, I + H + 1) over
    ``[x; h; 1]`` (the bias is its last column) with its gate rows in the
    order input, forget, output, cell. The three sigmoid gates and the cell
    gate are contiguous row blocks, so every elementwise operation runs over
    contiguous memory; ``kernels`` computes the elementwise part of the step
    and of its backward (one autograd node per step).
    """

    @staticmethod
    def forward(ctx, x, h, c, weight, kernels):
        xh = torch.cat([x, h, x.new_ones(1, x.shape[1])])
        forward, ctx.kernel_backward = kernels
        h_next, c_next, saved = forward(weight @ xh, c)
        ctx.save_for_backward(xh, weight, *saved)
        return h_next, c_next

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h, grad_c):
        xh, weight, *saved = ctx.saved_tensors
        grad_gates, grad_c = ctx.kernel_backward(grad_h, grad_c, *saved)
        inputs = xh.shape[0] - 1 - grad_c.shape[0]
        # The products below in the forms the CPU libraries run fastest for these
        # shapes (measured with bfloat16 matrix units: 1.5-3x faster than one product
        # for [x; h] and than grad_gates @ xh.T for fewer than 32 rows of xh): a
        # contiguous W^T on the left, one product per input, and the weight's
        # gradient computed transposed for a short xh.
        grad_x = grad_h = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = weight[:, :inputs].t().contiguous() @ grad_gates
        if ctx.needs_input_grad[1]:
            grad_h = weight[:, inputs:-1].t().contiguous() @ grad_gates
        if ctx.needs_input_grad[3]:
            short = xh.shape[0] < 32
            grad_weight = (xh @ grad_gates.t()).t() if short else grad_gates @ xh.t()
        return grad_x, grad_h, grad_c, grad_weight, None


def lstm_cell(cell, x, state, *, compile=False):
    """One step of an LSTM cell over many independent coordinates, feature-major.

    Computes what ``cell(x.T, (h.T, c.T))`` computes, transposed, for
    coordinate-wise learned optimizers, which run one small cell over every
    coordinate of a network (about 10^5 for Conv4). In this layout each gate
    is a contiguous block of rows; the gates come from one matrix product
    and the backward is written by hand (one autograd node per step), which
    saves :class:`torch.nn.LSTMCell`'s transposes and per-gate operations
    (``benchmarks/learned_optimizer_speed.py`` measures the learners built
    on it).

    Parameters
    ----------
    cell : torch.nn.LSTMCell
        The cell whose weights are used (with biases).
    x : torch.Tensor of shape (input_size, n)
        The inputs, one column per coordinate.
    state : tuple of two torch.Tensor of shape (hidden_size, n)
        The hidden and cell states ``(h, c)``. The step is computed in their
        type: bfloat16 states (what the learned rules' ``init_state`` gives
        under :func:`torch.autocast` to bfloat16, i.e. the learners'
        ``precision="bfloat16"``) run it in bfloat16.
    compile : bool, default=False
        Compute the elementwise part of the step and of its backward with
        kernels made by :func:`torch.compile` (one pass over memory each,
        instead of one per operation). They are compiled on first use (some
        seconds; torch caches them on disk) and need what
        :func:`torch.compile` needs (a C++ compiler on a CPU).

    Returns
    -------
    h, c : tuple of two torch.Tensor of shape (hidden_size, n)
        The next hidden and cell states.

    Examples
    --------
    >>> import torch
    >>> from skfewshot.nn import lstm_cell
    >>> cell = torch.nn.LSTMCell(2, 4)
    >>> x, h, c = torch.randn(10, 2), torch.zeros(10, 4), torch.zeros(10, 4)
    >>> h_next, c_next = lstm_cell(cell, x.T, (h.T, c.T))
    >>> torch.allclose(h_next.T, cell(x, (h, c))[0], atol=1e-6)
    True
    """
    h, c = state
    bias = (cell.bias_ih + cell.bias_hh)[:, None]
    # torch's gate rows are input, forget, cell, output; the function's input, forget, output, cell.
    i, f, g, o = torch.cat([cell.weight_ih, cell.weight_hh, bias], dim=1).split(cell.hidden_size)
    weight = torch.cat([i, f, o, g])
    kernels = _compiled_kernels() if compile else (_eager_forward, _eager_backward)
    with torch.autocast(x.device.type, enabled=False):
        return _LSTMCellFunction.apply(x.to(h.dtype), h, c, weight.to(h.dtype), kernels)


def _state_dtype(like):
    """bfloat16 under autocast to it (mixed precision), else the parameters' type."""
    device = like.device.type
    if hasattr(torch, "get_autocast_dtype"):
        enabled, dtype = torch.is_autocast_enabled(device), torch.get_autocast_dtype(device)
    elif device == "cpu":  # torch < 2.4
        enabled, dtype = torch.is_autocast_cpu_enabled(), torch.get_autocast_cpu_dtype()
    else:
        enabled, dtype = torch.is_autocast_enabled(), torch.get_autocast_gpu_dtype()
    return torch.bfloat16 if enabled and dtype == torch.bfloat16 else like.dtype


def _flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors.values()])


def _unflat(flat, like):
    out, start = {}, 0
    for name, t in like.items():
        out[name] = flat[start : start + t.numel()].view_as(t)
        start += t.numel()
    return out


class LSTMOptimizer(nn.Module):
    """A learned optimizer: the coordinate-wise LSTM of Andrychowicz et al. (2016).

    "Learning to learn by gradient descent by gradient descent": every
    coordinate of the adapted tensors is updated by the same two-layer LSTM,
    with its own hidden state, from its preprocessed gradient
    (:func:`preprocess`); the update is ``p <- p + output_scale *
    linear(h)``. Gradients enter as inputs (the paper drops the second
    derivatives), so the rule is meta-trained through the unrolled
    trajectory of updates. A gradient step ``-alpha * grad`` is no exact
    output of the network (its input is the logarithm of the gradient's
    magnitude); :meth:`GradientAdaptation.imitation_loss` trains it to
    approximate one.

    Parameters
    ----------
    shapes : dict, default=None
        Unused (the rule is coordinate-wise); accepted for a common signature.
    hidden_size : int, default=20
        Units of each LSTM layer.
    output_scale : float, default=0.1
        Multiplies the LSTM's output.
    preprocess_p : float, default=10.0
        The ``p`` of the gradient preprocessing.
    compile : bool, default=False
        Run the LSTM's elementwise kernels through :func:`torch.compile` (see
        :func:`lstm_cell`): faster meta-training, after some seconds of
        compilation on first use.
    """

    def __init__(
        self, shapes=None, hidden_size=20, output_scale=0.1, preprocess_p=10.0, compile=False
    ):
        super().__init__()
        self.hidden_size = hidden_size
        self.output_scale = output_scale
        self.preprocess_p = preprocess_p
        self.compile = compile
        self.cell1 = nn.LSTMCell(2, hidden_size)
        self.cell2 = nn.LSTMCell(hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, 1)
        with torch.no_grad():  # start close to "no update"
            self.out.weight.mul_(0.1)
            self.out.bias.zero_()

    def init_state(self, params):
        n = sum(p.numel() for p in params.values())
        like = next(iter(params.values()))
        zeros = like.new_zeros(self.hidden_size, n, dtype=_state_dtype(like))
        return (zeros, zeros, zeros, zeros)

    def forward(self, params, grads, loss, state, scale=1.0):
        h1, c1, h2, c2 = state
        x = preprocess(_flat(grads).detach(), self.preprocess_p)
        h1, c1 = lstm_cell(self.cell1, x, (h1, c1), compile=self.compile)
        h2, c2 = lstm_cell(self.cell2, h1, (h2, c2), compile=self.compile)
        with torch.autocast(h2.device.type, enabled=False):
            out = torch.addmm(self.out.bias[:, None], self.out.weight, h2.to(self.out.weight.dtype))
        step = _unflat(scale * self.output_scale * out[0], params)
        return {name: p + step[name] for name, p in params.items()}, (h1, c1, h2, c2)


class MetaLearnerLSTM(nn.Module):
    """A learned optimizer: the meta-learner LSTM of Ravi & Larochelle (2017).

    The cell state is the learner's parameters. For every coordinate, an
    LSTM layer reads the preprocessed gradient and loss, and two learned
    gates update the parameter like a gradient step with a learned
    coordinate-wise rate and decay:

    ``i = sigmoid(W_i [h, p, i_prev] + b_i)``, ``f = sigmoid(W_f [h, p, f_prev] + b_f)``,
    ``p <- f * p - i * grad``.

    The forget bias starts high and the input bias low, so the rule starts
    close to gradient descent with a small rate and a small decay. Gradient
    descent of rate ``alpha`` is the rule with ``f = 1`` and ``i = alpha``,
    to which :meth:`GradientAdaptation.imitation_loss` trains it. Gradients
    and the loss enter as inputs (no second derivatives, as in the paper).

    Parameters
    ----------
    shapes : dict, default=None
        Unused (the rule is coordinate-wise); accepted for a common signature.
    hidden_size : int, default=20
        Units of the LSTM layer.
    preprocess_p : float, default=10.0
        The ``p`` of the input preprocessing.
    compile : bool, default=False
        Run the LSTM's elementwise kernels through :func:`torch.compile` (see
        :func:`lstm_cell`): faster meta-training, after some seconds of
        compilation on first use.
    """

    def __init__(self, shapes=None, hidden_size=20, preprocess_p=10.0, compile=False):
        super().__init__()
        self.hidden_size = hidden_size
        self.preprocess_p = preprocess_p
        self.compile = compile
        self.lstm = nn.LSTMCell(4, hidden_size)
        self.input_gate = nn.Linear(hidden_size + 2, 1)
        self.forget_gate = nn.Linear(hidden_size + 2, 1)
        with torch.no_grad():
            for gate in (self.input_gate, self.forget_gate):
                gate.weight.uniform_(-0.01, 0.01)
            self.forget_gate.bias.uniform_(4.0, 6.0)
            self.input_gate.bias.uniform_(-5.0, -4.0)

    def init_state(self, params):
        n = sum(p.numel() for p in params.values())
        like = next(iter(params.values()))
        zeros = like.new_zeros(self.hidden_size, n, dtype=_state_dtype(like))
        gate = like.new_zeros(1, n)
        return (zeros, zeros, gate, gate)

    def forward(self, params, grads, loss, state, scale=1.0):
        h, c, i_prev, f_prev = state
        g = _flat(grads).detach()
        theta = _flat(params)
        x = torch.cat(
            [
                preprocess(g, self.preprocess_p),
                preprocess(loss.detach().reshape(1), self.preprocess_p).expand(2, len(g)),
            ]
        )
        h, c = lstm_cell(self.lstm, x, (h, c), compile=self.compile)
        with torch.autocast(h.device.type, enabled=False):
            h32 = h.to(theta.dtype)
            f = torch.sigmoid(_gate(self.forget_gate, h32, theta, f_prev))
            i = torch.sigmoid(_gate(self.input_gate, h32, theta, i_prev))
        theta = f[0] * theta - scale * i[0] * g
        return _unflat(theta, params), (h, c, i, f)


def _gate(linear, h, theta, previous):
    """``linear([h; theta; previous])`` over coordinates, feature-major: shape (1, n)."""
    return torch.addmm(linear.bias[:, None], linear.weight, torch.cat([h, theta[None], previous]))


# -- the episode model ------------------------------------------------------------------------


class GradientAdaptation(nn.Module):
    """An encoder with a per-episode linear head, adapted to the support set by an update rule.

    For an episode with ``n`` classes a head ``(n, d)`` is put on the
    encoder's ``d``-dimensional embeddings, initialised at zero or from the
    class prototypes. Then ``inner_steps`` times: the cross-entropy of the support
    set is differentiated (:func:`torch.autograd.grad` over
    :func:`torch.func.functional_call`) with respect to the adapted tensors,
    and the rule updates them. The query logits come from the adapted
    tensors. The module's own parameters (the encoder's initial weights
    and the rule's weights) are the meta-parameters: never changed here.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps a batch to (n, d) embeddings (more dimensions are flattened).
    rule : torch.nn.Module
        The update rule, e.g. :class:`GradientStep`.
    inner_steps : int, default=1
        Updates on the support set.
    first_order : bool, default=False
        Treat the inner gradients as constants (first-order MAML): cheaper,
        and no second derivatives. False differentiates through them.
    adapt : {"all", "head"}, default="all"
        Adapt the encoder and the head (MAML) or the head only (ANIL,
        Raghu et al. 2020; the embeddings are then computed once).
    head_init : {"zero", "prototypes"}, default="zero"
        The head's initial weights: zero (every class equally likely before
        the first step), or ``W_k = 2 c_k``, ``b_k = -|c_k|^2`` from the
        class means ``c_k`` of the support embeddings, so that the initial
        logits rank classes like a prototypical network (Proto-MAML,
        Triantafillou et al. 2020); gradients flow through the means.
    transductive : bool, default=False
        Batch-norm statistics of the queries. False normalises the queries
        with the support set's statistics (see
        :func:`batch_statistics_from`), so each query's logits depend on
        the support set and on itself only. True normalises them with the
        statistics of the query batch, as the original MAML code does.

    Notes
    -----
    The running statistics of batch-norm layers are neither used nor
    updated: every pass normalises with the support set's statistics.
    """

    #: Whether the inner gradients are constants whatever ``first_order`` says.
    always_first_order = False

    def __init__(
        self,
        encoder,
        rule,
        *,
        inner_steps=1,
        first_order=False,
        adapt="all",
        head_init="zero",
        transductive=False,
    ):
        super().__init__()
        options = {
            "inner_steps": inner_steps,
            "first_order": first_order,
            "adapt": adapt,
            "head_init": head_init,
            "transductive": transductive,
        }
        validate_params(options, ADAPTATION_CONSTRAINTS, type(self).__name__)
        rates = getattr(rule, "rates", None)
        if rates is not None:  # per-tensor rates (Meta-SGD): one for every adapted tensor
            names = ["head.weight", "head.bias"]
            if adapt == "all":
                names += [f"encoder.{name}" for name, _ in encoder.named_parameters()]
            missing = [name for name in names if _key(name) not in rates]
            if missing:
                raise ValueError(
                    f"{type(self).__name__}: the learned rates have none for the tensor "
                    f"{missing[0]!r}: they were meta-learned with another encoder. Pass the "
                    "encoder_ and rule_ of the same learner."
                )
        self.encoder = encoder
        self.rule = rule
        self.inner_steps = inner_steps
        self.first_order = first_order
        self.adapt = adapt
        self.head_init = head_init
        self.transductive = transductive

    # The adapted tensors live in one dict: "encoder.<name>" and "head.weight", "head.bias".

    def _embed(self, params, x, n_stats=None, statistics=None):
        encoder_params = {
            name[len("encoder.") :]: p for name, p in params.items() if name.startswith("encoder.")
        }
        # The encoder is differentiated twice when its own steps are (not ANIL's head steps).
        second_order = torch.is_grad_enabled() and self._create_graph() and self.adapt != "head"
        with (
            batch_statistics_from(self.encoder, n_stats, statistics=statistics),
            fast_second_derivatives() if second_order else contextlib.nullcontext(),
        ):
            z = functional_call(self.encoder, encoder_params, (x,), strict=False)
        return z.flatten(1)

    @staticmethod
    def _logits(params, z):
        return F.linear(z, params["head.weight"], params["head.bias"])

    def _init_head(self, z, labels, n):
        if self.head_init == "prototypes":
            counts = torch.bincount(labels, minlength=n).to(z.dtype)
            means = torch.zeros(n, z.shape[1], dtype=z.dtype, device=z.device)
            means = means.index_add(0, labels, z) / counts[:, None]
            return {"head.weight": 2 * means, "head.bias": -(means * means).sum(1)}
        return {"head.weight": z.new_zeros(n, z.shape[1]), "head.bias": z.new_zeros(n)}

    def _start(self, support, support_labels, inner_steps, statistics=None):
        """The tensors to adapt at their initial values, and the support embeddings under them.

        The embeddings (None when no step needs them) are computed once, in
        the autograd graph: the prototype head starts from them and the
        first step's support loss reuses them.
        """
        n = n_classes(support_labels)
        if self.adapt == "head":
            z = self._embed({}, support, statistics=statistics)
            return self._init_head(z, support_labels, n), z
        params = {f"encoder.{name}": p for name, p in self.encoder.named_parameters()}
        if inner_steps == 0 and self.head_init == "zero":
            with torch.no_grad():  # a zero head needs only the embedding's width
                z = self._embed(params, support[:1])
            params.update(self._init_head(z, support_labels, n))
            return params, None
        if not any(p.requires_grad for p in params.values()):
            # No meta-gradient (e.g. a classifier's fit): leaves to differentiate with respect to.
            params = {k: p.detach().requires_grad_() for k, p in params.items()}
        z = self._embed(params, support, statistics=statistics)
        params.update(self._init_head(z, support_labels, n))
        return params, z

    def _support_gradients(self, params, z, support, labels, *, create_graph, encoder=True):
        """The support cross-entropy and its gradients with respect to the adapted tensors.

        ``z``: the support embeddings under ``params`` (computed in the
        graph), or None to compute them. With ``create_graph`` the gradients
        are functions of ``params`` (second order); otherwise constants.
        ``encoder=False`` returns the head's gradients only (the encoder's
        are known to be zero).
        """
        # The loss reads fresh nodes (aliases, or leaves where no meta-gradient flows: first
        # order, a zero head), so that its gradients are partial derivatives: other adapted
        # tensors may depend on the same ones (a head computed from the encoder's output).
        head = {k: _variable(params[k], create_graph) for k in _HEAD}
        if z is None:  # a later step of the whole network: embed under the current tensors
            tensors = {k: _variable(v, create_graph) for k, v in params.items() if k not in _HEAD}
            z = self._embed(tensors, support)
            loss = F.cross_entropy(self._logits(head, z), labels)
            names = [*tensors, *head]  # the order of ``params``, which learned rules flatten
            grads = torch.autograd.grad(
                loss, [*tensors.values(), *head.values()], create_graph=create_graph
            )
            return dict(zip(names, grads)), loss
        # The embeddings are given (the first step, or the head alone): the loss reads an alias of
        # them, so that its gradient with respect to them excludes the path through the head's
        # initialisation (the head is a variable of the support loss, as with torch.func.grad).
        embedded = z.view_as(z) if (create_graph or not encoder) else z.detach().requires_grad_()
        tensors = {k: v for k, v in params.items() if k not in _HEAD} if encoder else {}
        loss = F.cross_entropy(self._logits(head, embedded), labels)
        wrt = [*head.values()] + ([embedded] if tensors else [])
        grads = torch.autograd.grad(loss, wrt, create_graph=create_graph)
        out = dict(zip(head, grads))
        if tensors:
            out.update(
                zip(
                    tensors,
                    torch.autograd.grad(
                        z,
                        list(tensors.values()),
                        grad_outputs=grads[-1],
                        create_graph=create_graph,
                        retain_graph=True,  # the meta-gradient goes through z again
                    ),
                )
            )
        return {k: out[k] for k in params if k in out}, loss

    def adapt_to(self, support, support_labels, *, inner_steps=None, scale=1.0, statistics=None):
        """Adapt to a support set; returns the dict of adapted tensors.

        Parameters
        ----------
        support : torch.Tensor of shape (n_support, ...)
            Support samples.
        support_labels : torch.Tensor of shape (n_support,)
            Their episode-local labels, 0..n_way-1.
        inner_steps : int, default=None
            Number of updates; None uses ``self.inner_steps``.
        scale : float, default=1.0
            Multiplies the rule's step sizes (its learning rates).
        statistics : dict or None, default=None
            A dictionary that receives the support set's batch-norm
            statistics under the initial encoder weights, as
            :meth:`support_statistics` gives them, from the pass that embeds
            the support set first. They normalise the queries wherever the
            encoder ends unadapted (``adapt="head"``, or one step from a zero
            head).

        Returns
        -------
        params : dict of str to torch.Tensor
            ``"head.weight"``, ``"head.bias"`` and, with ``adapt="all"``,
            ``"encoder.<name>"`` for every encoder parameter.

        Notes
        -----
        The gradients come from :func:`torch.autograd.grad` over
        :func:`torch.func.functional_call` (with ``create_graph`` for the
        second order). The support set is embedded once per step: the
        first step reuses the embeddings the head starts from. From a zero
        head the first step's gradient with respect to the encoder is
        exactly zero (``dL/dz = (p - y) W = 0``); rules for which a zero
        gradient changes nothing (:class:`GradientStep`) skip computing it.
        """
        inner_steps = self.inner_steps if inner_steps is None else inner_steps
        create_graph = self._create_graph()
        with torch.enable_grad():
            params, z = self._start(support, support_labels, inner_steps, statistics)
            state = self.rule.init_state(params)
            for step in range(inner_steps):
                head_only = (
                    step == 0
                    and self.adapt == "all"
                    and self.head_init == "zero"
                    and getattr(self.rule, "zero_gradient_is_identity", False)
                )
                grads, loss = self._support_gradients(
                    params,
                    z if (step == 0 or self.adapt == "head") else None,
                    support,
                    support_labels,
                    create_graph=create_graph,
                    encoder=self.adapt == "all" and not head_only,
                )
                adapted = {k: params[k] for k in grads}
                updated, state = self.rule(adapted, grads, loss, state, scale=scale)
                params = {**params, **{k: _strided_like(v, params[k]) for k, v in updated.items()}}
        return params

    def _create_graph(self):
        """Whether the inner gradients are functions of the adapted tensors (second order)."""
        return not (self.first_order or self.always_first_order)

    def _keeps_encoder(self, inner_steps=None):
        """Whether :meth:`adapt_to` ends with the encoder's initial weights."""
        inner_steps = self.inner_steps if inner_steps is None else inner_steps
        return (
            self.adapt == "head"
            or inner_steps == 0
            or (
                inner_steps == 1
                and self.head_init == "zero"
                and getattr(self.rule, "zero_gradient_is_identity", False)
            )
        )

    def support_statistics(self, params, support):
        """The batch-norm statistics of the support set under adapted tensors.

        Returns the per-layer ``(mean, var)`` that normalise the queries (see
        :func:`batch_statistics_from`); pass them to :meth:`query_logits` to
        score queries without running the support set again.
        """
        statistics = {}
        self._embed(params, support, statistics=statistics)
        return statistics

    def query_logits(self, params, support, query, statistics=None):
        """Logits of the queries under adapted tensors (see :meth:`adapt_to`).

        ``statistics``, from :meth:`support_statistics`, saves running the
        support set again (non-transductive mode only).
        """
        if self.transductive:
            z = self._embed(params, query)
        elif statistics is not None:
            z = self._embed(params, query, statistics=dict(statistics))
        else:
            z = self._embed(params, torch.cat([support, query]), len(support))[len(support) :]
        return self._logits(params, z)

    def imitation_loss(self, support, support_labels, lr, *, inner_steps=None):
        """How far the rule's updates are from gradient steps of rate ``lr`` on a support set.

        The optimizee follows plain gradient descent from the initial
        tensors, ``theta_{t+1} = theta_t - lr * g_t`` with ``g_t`` the
        gradient of the support loss at ``theta_t`` (teacher forcing); at
        each of the ``inner_steps`` points the rule, with its own state,
        proposes the update ``u_t = rule(theta_t, g_t) - theta_t``. The loss
        is the squared error to the gradient step, relative to the step's
        squared norm, averaged over the steps::

            L = 1/T sum_t |u_t + lr g_t|^2 / |lr g_t|^2

        (norms over every adapted coordinate). It is 1 for a rule that does
        not move and 0 for gradient descent of rate ``lr``, and each step
        counts alike however small its gradients. The trajectory, the
        gradients and the targets are constants: the loss trains the rule's
        weights only, never the encoder's initialisation.

        A step whose target is below the tensors' floating-point resolution
        (``|lr g| <= eps |theta|``, ``eps`` of their type) has nothing to
        imitate: gradient descent would not change them. Such steps are left
        out of the average (an episode of none but them has loss 0). They
        come from a support loss of zero, as one shot from the prototype
        head gives: each class's prototype is its support sample.

        Parameters
        ----------
        support : torch.Tensor of shape (n_support, ...)
            Support samples.
        support_labels : torch.Tensor of shape (n_support,)
            Their episode-local labels, 0..n_way-1.
        lr : float
            The rate ``lr`` of the gradient steps to imitate.
        inner_steps : int, default=None
            Number of steps ``T`` (at least 1); None uses ``self.inner_steps``.

        Returns
        -------
        loss : torch.Tensor
            The scalar ``L``, differentiable with respect to the rule's weights.
        params : dict of str to torch.Tensor
            The end of the gradient-descent trajectory, detached (as
            :meth:`adapt_to` returns).
        """
        inner_steps = self.inner_steps if inner_steps is None else inner_steps
        if inner_steps < 1:
            raise ValueError(
                f"{type(self).__name__}: the imitation loss needs at least one inner step, "
                f"got inner_steps={inner_steps}."
            )
        with torch.no_grad():
            params, z = self._start(support, support_labels, inner_steps)
        params = {k: v.detach() for k, v in params.items()}
        z = z.detach() if self.adapt == "head" else None  # the whole network: embed at each step
        state = self.rule.init_state(params)
        losses, counted = [], 0
        for _ in range(inner_steps):
            with torch.enable_grad():
                grads, loss = self._support_gradients(
                    params,
                    z,
                    support,
                    support_labels,
                    create_graph=False,
                    encoder=self.adapt == "all",
                )
            steps = {k: -lr * g for k, g in grads.items()}
            updated, state = self.rule(params, grads, loss.detach(), state)
            error = sum(((updated[k] - p) - steps[k]).pow(2).sum() for k, p in params.items())
            target = sum(step.pow(2).sum() for step in steps.values())
            norm = sum(params[k].pow(2).sum() for k in steps)
            if target > torch.finfo(target.dtype).eps ** 2 * norm:
                losses.append(error / target.clamp_min(torch.finfo(target.dtype).tiny))
                counted += 1
            else:  # nothing to imitate (kept in the graph: every episode trains the same tensors)
                losses.append(error * 0)
            params = {k: p + steps[k] for k, p in params.items()}
        return torch.stack(losses).sum() / max(counted, 1), params

    def forward(self, support, support_labels, query, imitation_inner_lr=None):
        """Query logits after adapting to the support set (see :meth:`adapt_to`).

        With ``imitation_inner_lr``, the imitation phase of a learned rule:
        the output is the pair ``(query_logits, loss)``, the logits at the
        end of the gradient-descent trajectory (constants) and
        :meth:`imitation_loss` at the rate ``imitation_inner_lr``.
        """
        if imitation_inner_lr is not None:
            loss, params = self.imitation_loss(support, support_labels, imitation_inner_lr)
            with torch.no_grad():
                return self.query_logits(params, support, query), loss
        # Where the encoder ends as it started (ANIL, or one step from a zero head), the support
        # set's first pass keeps the statistics that normalise the queries.
        statistics = {} if not self.transductive and self._keeps_encoder() else None
        params = self.adapt_to(support, support_labels, statistics=statistics)
        if statistics:
            return self.query_logits(params, support, query, statistics=statistics)
        return self.query_logits(params, support, query)


def adapted_shapes(encoder, adapt):
    """Names and shapes of the tensors :class:`GradientAdaptation` adapts, heads shared by rows.

    The head's shapes are ``(1, 1)`` and ``(1,)``: its width is known only
    from the first batch, and its rows (classes) are interchangeable.
    """
    shapes = {}
    if adapt == "all":
        for name, p in encoder.named_parameters():
            if isinstance(p, nn.parameter.UninitializedParameter):
                raise ValueError(
                    "The encoder has uninitialised (lazy) parameters; give it its input "
                    "size (e.g. MLP(in_features=...)) so that per-parameter rates can be "
                    "created."
                )
            shapes[f"encoder.{name}"] = tuple(p.shape)
    shapes["head.weight"] = (1, 1)
    shapes["head.bias"] = (1,)
    return shapes


class ReptileAdaptation(GradientAdaptation):
    """Reptile (Nichol et al. 2018): adapt first-order, pull the initial weights towards the result.

    The same adaptation as :class:`GradientAdaptation` (the inner
    gradients are always treated as constants). In training mode the
    output is a pair ``(query_logits, distance)`` with ``distance = 1/2
    |theta - theta_adapted|^2`` over the encoder's parameters, the adapted
    ones held constant: its gradient is ``theta - theta_adapted``, the
    Reptile direction, which :class:`~skfewshot.nn.ReptileLoss` hands to
    the meta-optimizer (with SGD at rate ``epsilon``: ``theta <- theta +
    epsilon (theta_adapted - theta)``). In evaluation mode the output is the
    query logits. The query set is not used for the update.
    """

    always_first_order = True

    def forward(self, support, support_labels, query):
        params = self.adapt_to(support, support_labels)
        with torch.no_grad():
            logits = self.query_logits(params, support, query)
        if not self.training:
            return logits
        distance = sum(
            0.5 * (p - params[f"encoder.{name}"].detach()).pow(2).sum()
            for name, p in self.encoder.named_parameters()
        )
        return logits, distance
