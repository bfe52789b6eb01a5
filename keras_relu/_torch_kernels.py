"""PyTorch forms of the ReLU family that torch's own kernels compute faster than Keras ops.

Imported only on the torch backend. Its classes are defined at module level so that
`torch.compile` traces them without a graph break (a class made inside a traced call, or
reached through an object Dynamo cannot name, breaks the graph).
"""

import torch


class NegativeSlope(torch.autograd.Function):
    """`x if x > 0 else slope * x`, `slope` broadcastable to `x` (PReLU's weight or RReLU's
    drawn slopes), in torch's own PReLU kernel.

    A select (`torch.where`) is many times slower than `relu` on a CPU, and its autograd
    runs two more, so the derivative is written with ReLU's own backward kernel:
    `d x = g [x > 0] + slope * g [x <= 0]` (the slope at 0, as on every backend), and
    `d slope = min(x, 0) * g` summed to the slope's shape, computed only when the slope
    needs it.
    """

    @staticmethod
    def forward(x, slope):
        return torch.ops.aten._prelu_kernel(x, slope)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, upstream):
        x, slope = ctx.saved_tensors
        positive = torch.ops.aten.threshold_backward(upstream, x, 0)  # g where x > 0
        d_x = torch.addcmul(positive, slope, upstream - positive)
        d_slope = None
        if ctx.needs_input_grad[1]:
            d_slope = (torch.clamp(x, max=0) * upstream).sum_to_size(slope.shape)
        return d_x, d_slope


def negative_slope(x, slope):
    """`x if x > 0 else slope * x` through `NegativeSlope`.

    Example:
    >>> negative_slope(torch.tensor([-2.0, 3.0]), torch.tensor([0.25]))  # [-0.5, 3.0]
    """
    return NegativeSlope.apply(x, slope)
