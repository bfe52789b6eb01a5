"""Born dead: deep, narrow networks fitted to |x|, hundreds of initializations at once.

Lu, Shin, Su and Karniadakis (2019, arXiv 1903.06733, "Dying ReLU and
Initialization") prove that a ReLU network of fixed width whose weights and biases
come from symmetric distributions is, with probability tending to 1 as the depth
grows, a constant function at initialization ("born dead"), and show that such
networks collapse to a constant (the target's mean) after training.

Here one Keras model holds `runs` independent networks per variant, every variant
of `VARIANTS` side by side: the kernel of each layer is `(networks, in, out)` and the
loss is the sum of the networks' mean squared errors, so each network gets its own
gradient and Adam (elementwise) updates each on its own. Run r starts every variant
from the same weights (He normal, zero biases), so variants are compared pairwise.
The arms of `INITIALIZED_ARMS` are ReLU networks started otherwise: `relu_rai` with
`keras_relu.initializers.RandomizedAsymmetric` (the package's: the positive entry among
a unit's weights, zero biases), `relu_rai_row` with the paper's own row-with-bias RAI
(the positive entry among weights and bias, the bias drawn with them). `crelu` doubles
each layer's width, so it cannot share a vectorized model with the others: it runs alone.

```
x in [-sqrt(3), sqrt(3)] (a grid) -> depth x [Dense(width) -> activation] -> Dense(1)
target |x|; full-batch Adam
```
`depth` counts the hidden (activation) layers. Per network, on the grid:
- born dead: some hidden layer has every unit's input <= 0 at every point at
  initialization (a ReLU network is then constant);
- collapsed: after training, the output's standard deviation over the grid is below
  1% of the target's (the network is a constant, in practice the target's mean).
"""

import math

import keras
import numpy as np
from keras import ops

import keras_relu
from keras_relu.initializers import RandomizedAsymmetric

VARIANTS = ("relu", "leaky_relu", "prelu", "rrelu", "elu", "selu", "relu6", "gelu", "swish")
# Arms that differ from ReLU by their initialization: name -> (activation, initialization).
INITIALIZED_ARMS = {"relu_rai": ("relu", "rai"), "relu_rai_row": ("relu", "rai_row")}
ALONE = ("crelu",)  # Doubles the width: a model of its own.
ARMS = (*VARIANTS, *INITIALIZED_ARMS, *ALONE)
COLLAPSE_STD_RATIO = 0.01  # Output std over the grid below this share of |x|'s: constant.


class ParallelDense(keras.layers.Layer):
    """`networks` independent Dense layers: `(batch, networks or 1, in) -> (batch, networks, out)`.

    An input with one network is fed to all of them (the first layer).
    """

    def __init__(self, networks, units, **kwargs):
        super().__init__(**kwargs)
        self.networks = networks
        self.units = units

    def build(self, input_shape):
        shape = (self.networks, input_shape[2], self.units)
        self.kernel = self.add_weight(shape=shape, name="kernel")
        self.bias = self.add_weight(shape=shape[::2], initializer="zeros", name="bias")

    def call(self, inputs):
        # Broadcast multiply and sum, not einsum: the input may hold a single network.
        return ops.sum(ops.expand_dims(inputs, -1) * self.kernel, axis=-2) + self.bias


class PerVariantActivation(keras.layers.Layer):
    """Applies variant v to networks `[v * runs, (v + 1) * runs)` of a `(batch, networks, units)`.

    Each slice is flattened to `(batch, runs * units)` first, so PReLU's channel-wise
    slopes are one per network and unit (no slope shared between networks).
    """

    def __init__(self, variants, runs, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.runs = runs
        names = [activation_of(name) for name in variants]
        self.activations = [
            keras_relu.get(name, seed=seed) if name == "rrelu" else keras_relu.get(name)
            for name in names
        ]

    def call(self, inputs):
        units = inputs.shape[2]
        slices = []
        for index, activation in enumerate(self.activations):
            part = inputs[:, index * self.runs : (index + 1) * self.runs, :]
            if isinstance(activation, keras_relu.CReLU):  # Per unit, no weights: `(.., 2 units)`.
                slices.append(activation(part))
                continue
            part = ops.reshape(
                activation(ops.reshape(part, (-1, self.runs * units))), ops.shape(part)
            )
            slices.append(part)
        return ops.concatenate(slices, axis=1)


def activation_of(arm):
    """The registry name of the activation an arm uses."""
    return INITIALIZED_ARMS.get(arm, (arm, None))[0]


def rai_kernels(runs, fan_in, units, seed):
    """`runs` kernels `(runs, fan_in, units)` from `RandomizedAsymmetric`, one per network.

    One draw of shape `(fan_in, runs * units)` is RAI per network: each column (a unit
    of one network) gets its positive entry among its own `fan_in` weights.
    """
    kernel = ops.convert_to_numpy(RandomizedAsymmetric(seed=seed)((fan_in, runs * units)))
    return kernel.reshape(fan_in, runs, units).transpose(1, 0, 2)


def rai_row_weights(rng, runs, fan_in, units):
    """The paper's RAI: per unit, weights and bias one row of `fan_in + 1` entries drawn
    N(0, 0.6007^2 / fan_in), one of them (the bias possibly) replaced by a Beta(2, 1) draw.

    Returns:
        `(kernels (runs, fan_in, units), biases (runs, units))`.
    """
    rows = rng.normal(0, 0.6007 / math.sqrt(fan_in), (runs, units, fan_in + 1))
    positions = rng.integers(0, fan_in + 1, (runs, units))
    rows[np.arange(runs)[:, None], np.arange(units)[None, :], positions] = rng.beta(
        2, 1, (runs, units)
    )
    return rows[..., :-1].transpose(0, 2, 1), rows[..., -1]


def summed_squared_error(y_true, y_pred):
    """Per example, the sum over networks of the squared error: each network's own MSE."""
    return ops.sum(ops.square(y_pred - y_true), axis=-1)


def grid(points):
    """`points` inputs evenly over [-sqrt(3), sqrt(3)] (variance about 1) and |x|."""
    x = np.linspace(-math.sqrt(3), math.sqrt(3), points, dtype="float32")[:, None]
    return x, np.abs(x)


def build(variants, runs, width, depth, seed):
    """The vectorized model and a probe returning every hidden layer's pre-activation."""
    if any(name in ALONE for name in variants) and len(variants) > 1:
        raise ValueError(f"{ALONE} change the width: run them alone. Received: {variants}")
    keras.utils.set_random_seed(seed)
    networks = len(variants) * runs
    inputs = keras.Input((1,))
    x = keras.layers.Reshape((1, 1))(inputs)
    pre_activations = []
    for index in range(depth):
        x = ParallelDense(networks, width, name=f"dense{index + 1}")(x)
        pre_activations.append(x)
        x = PerVariantActivation(variants, runs, seed=seed, name=f"act{index + 1}")(x)
    outputs = ops.squeeze(ParallelDense(networks, 1, name="out")(x), -1)
    model = keras.Model(inputs, outputs)
    # He normal (plain, untruncated, as in the paper), the same draw for every variant;
    # the initialized arms their own (RAI), per network.
    rng = np.random.default_rng(seed)
    for layer_index, layer in enumerate(model.layers):
        if isinstance(layer, ParallelDense):
            fan_in, units = layer.kernel.shape[1:]
            he = rng.normal(0, math.sqrt(2 / fan_in), (runs, fan_in, units))
            kernels, biases = [], []
            for arm_index, arm in enumerate(variants):
                initialization = INITIALIZED_ARMS.get(arm, (arm, "he_normal"))[1]
                bias = np.zeros((runs, units))
                if initialization == "he_normal":
                    kernel = he
                elif initialization == "rai":
                    draw_seed = (seed * 131 + layer_index * 17 + arm_index) % 2**31
                    kernel = rai_kernels(runs, fan_in, units, draw_seed)
                else:
                    own = np.random.default_rng([seed, layer_index, arm_index])
                    kernel, bias = rai_row_weights(own, runs, fan_in, units)
                kernels.append(kernel)
                biases.append(bias)
            layer.kernel.assign(np.concatenate(kernels).astype("float32"))
            layer.bias.assign(np.concatenate(biases).astype("float32"))
    probe = keras.Model(inputs, [*pre_activations, outputs])
    return model, probe


def measure(probe, x, y, variants, runs):
    """Per variant: per-run born-dead flags, inactive-unit shares, output std and MSE."""
    *pre_activations, outputs = [ops.convert_to_numpy(t) for t in probe(x, training=False)]
    # A unit is inactive when its input is <= 0 at every grid point: (networks, units).
    inactive = np.stack([np.all(p <= 0, axis=0) for p in pre_activations])  # (layers, nets, units)
    dead_layer = np.any(np.all(inactive, axis=2), axis=0)  # (networks,)
    inactive_share = inactive.mean(axis=(0, 2))
    std_ratio = outputs.std(axis=0) / y.std()
    relative_mse = np.mean((outputs - y) ** 2, axis=0) / y.var()
    result = {}
    for index, name in enumerate(variants):
        rows = slice(index * runs, (index + 1) * runs)
        result[name] = {
            "dead_layer": dead_layer[rows],
            "inactive_share": inactive_share[rows],
            "std_ratio": np.nan_to_num(std_ratio[rows], nan=0.0),
            "relative_mse": relative_mse[rows],
        }
    return result


def _rates(before, after=None):
    rates = {
        "born_dead": float(before["dead_layer"].mean()),
        "constant_at_init": float(np.mean(before["std_ratio"] == 0)),
        "inactive_units_at_init": float(before["inactive_share"].mean()),
    }
    if after is not None:
        collapsed = after["std_ratio"] < COLLAPSE_STD_RATIO
        rates.update(
            {
                "collapsed": float(collapsed.mean()),
                "dead_layer_after": float(after["dead_layer"].mean()),
                "inactive_units_after": float(after["inactive_share"].mean()),
                "relative_mse_median": float(np.median(after["relative_mse"])),
                # Paired with the other variants by run index (same initial weights).
                "per_run_collapsed": collapsed.astype(int).tolist(),
                "per_run_born_dead": before["dead_layer"].astype(int).tolist(),
            }
        )
    return rates


def run_point(variants, width, depth, config, train=True, verbose=0):
    """Measures (and trains) `config["runs"]` networks per variant at one (width, depth).

    Args:
        variants: Names from `ARMS` (one of `ALONE` alone).
        width, depth: Units per hidden layer, hidden layers.
        config: `{"runs", "points", "steps", "learning_rate", "seed"}`.
        train: Also train them and measure the collapse. Default: True.
        verbose: Keras's `fit` verbosity. Default: 0.

    Returns:
        `{variant: {"born_dead", "constant_at_init", "inactive_units_at_init"[,
        "collapsed", "dead_layer_after", "inactive_units_after", "relative_mse_median",
        "per_run_collapsed", "per_run_born_dead"]}}`: shares of the runs.
    """
    runs = config["runs"]
    x, y = grid(config["points"])
    model, probe = build(variants, runs, width, depth, config["seed"] + 1000 * depth + width)
    before = measure(probe, x, y, variants, runs)
    if not train:
        return {name: _rates(before[name]) for name in variants}
    model.compile(
        optimizer=keras.optimizers.Adam(config["learning_rate"]), loss=summed_squared_error
    )
    # The grid repeated: one full-batch step per repetition, fewer `fit` epochs.
    repeats = min(config["steps"], 100)
    model.fit(
        np.tile(x, (repeats, 1)),
        np.tile(y, (repeats, 1)),
        batch_size=len(x),
        epochs=math.ceil(config["steps"] / repeats),
        shuffle=False,
        verbose=verbose,
    )
    after = measure(probe, x, y, variants, runs)
    return {name: _rates(before[name], after[name]) for name in variants}
