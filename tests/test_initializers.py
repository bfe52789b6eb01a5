"""`keras_relu.initializers.RandomizedAsymmetric` (RAI, Lu et al. 2019): its distribution
over many seeded draws, seeding, config, the `"randomized_asymmetric"` string."""

import math
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

import keras_relu
from keras_relu.initializers import RandomizedAsymmetric

DRAWS = 50  # Independent draws: a new seeded instance each (a seeded instance repeats itself).


def draws(shape, **kwargs):
    """`DRAWS` kernels of `shape`, reshaped to `(DRAWS, fan_in, units)`."""
    kernels = [
        ops.convert_to_numpy(RandomizedAsymmetric(seed=seed, **kwargs)(shape))
        for seed in range(DRAWS)
    ]
    return np.stack(kernels).reshape(DRAWS, -1, shape[-1])


def positive_entries(kernels):
    """With a vanishing symmetric part, the positive entry is each column's only large one."""
    chosen = kernels > 1e-9
    assert np.all(chosen.sum(axis=1) == 1)  # Exactly one per unit.
    return chosen


@pytest.mark.parametrize("shape", [(64, 32), (3, 3, 4, 16)])
def test_one_positive_entry_per_unit_at_a_uniform_position(shape):
    kernels = draws(shape, scale=1e-12)
    chosen = positive_entries(kernels)
    fan_in = math.prod(shape[:-1])
    counts = chosen.sum(axis=(0, 2))  # Per position, over draws and units.
    expected = DRAWS * shape[-1] / fan_in
    chi_square = np.sum((counts - expected) ** 2 / expected)
    # Chi-square with fan_in - 1 degrees of freedom: mean fan_in - 1, sd sqrt(2 (fan_in - 1)).
    assert chi_square < fan_in - 1 + 5 * math.sqrt(2 * (fan_in - 1))
    # Units of one kernel choose independently (not one position for the whole kernel).
    assert len(set(np.argmax(chosen[0], axis=0))) > 1


def test_the_positive_entry_is_beta_2_1():
    kernels = draws((16, 32), scale=1e-12)
    values = kernels[positive_entries(kernels)]  # 1,600 draws.
    standard_error = math.sqrt(1 / 18 / values.size)
    assert values.min() > 0 and values.max() < 1
    assert abs(values.mean() - 2 / 3) < 5 * standard_error
    # Beta(2, 1)'s CDF is x^2: a quarter below 0.5 (a uniform would put half there).
    assert abs(np.mean(values < 0.5) - 0.25) < 5 * math.sqrt(0.25 * 0.75 / values.size)


def test_other_positive_distributions():
    kernels = draws((16, 32), scale=1e-12, positive_alpha=1.0, positive_beta=3.0)
    values = kernels[positive_entries(kernels)]
    assert abs(values.mean() - 1 / 4) < 5 * math.sqrt((3 / 80) / values.size)


@pytest.mark.parametrize("shape", [(64, 32), (2, 2, 16, 32)])
def test_the_symmetric_entries_are_normal_with_sigma_0_6007_over_root_fan_in(shape):
    # Beta(1e6, 1) is 1 within 1e-4: the positive entry is found exactly, the rest measured.
    kernels = draws(shape, positive_alpha=1e6)
    chosen = np.abs(kernels - 1) < 1e-3
    assert np.all(chosen.sum(axis=1) == 1)
    symmetric = kernels[~chosen]
    sigma = 0.6007 / math.sqrt(math.prod(shape[:-1]))
    assert abs(symmetric.mean()) < 5 * sigma / math.sqrt(symmetric.size)
    # The sample sd's standard error is about sigma / sqrt(2 n).
    assert abs(symmetric.std() - sigma) < 5 * sigma / math.sqrt(2 * symmetric.size)
    # Normal, not uniform: about 4.6% beyond 2 sigma (a uniform of that sd has none).
    assert abs(np.mean(np.abs(symmetric) > 2 * sigma) - 0.0455) < 0.01


def test_scale_sets_the_standard_deviation():
    kernels = draws((64, 32), scale=2.0, positive_alpha=1e6)
    symmetric = kernels[np.abs(kernels - 1) >= 1e-3]
    assert symmetric.std() == pytest.approx(2.0 / 8, rel=0.02)


def test_an_integer_seed_repeats_and_seeds_differ():
    first = ops.convert_to_numpy(RandomizedAsymmetric(seed=7)((8, 4)))
    again = RandomizedAsymmetric(seed=7)
    np.testing.assert_array_equal(ops.convert_to_numpy(again((8, 4))), first)
    np.testing.assert_array_equal(ops.convert_to_numpy(again((8, 4))), first)  # Keras's way.
    other = ops.convert_to_numpy(RandomizedAsymmetric(seed=8)((8, 4)))
    assert not np.array_equal(other, first)


def test_unseeded_draws_as_keras_s_own_initializers_do():
    # The same values at every call, and reproducible under keras.utils.set_random_seed.
    keras.utils.set_random_seed(3)
    initializer = RandomizedAsymmetric()
    first = ops.convert_to_numpy(initializer((8, 4)))
    np.testing.assert_array_equal(ops.convert_to_numpy(initializer((8, 4))), first)
    keras.utils.set_random_seed(3)
    np.testing.assert_array_equal(ops.convert_to_numpy(RandomizedAsymmetric()((8, 4))), first)
    assert not np.array_equal(ops.convert_to_numpy(RandomizedAsymmetric()((8, 4))), first)


def test_a_seed_generator_advances():
    initializer = RandomizedAsymmetric(seed=keras.random.SeedGenerator(5))
    first, second = (ops.convert_to_numpy(initializer((8, 4))) for _ in range(2))
    assert not np.array_equal(first, second)
    replay = RandomizedAsymmetric(seed=keras.random.SeedGenerator(5))
    np.testing.assert_array_equal(ops.convert_to_numpy(replay((8, 4))), first)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_dtype(dtype):
    kernel = RandomizedAsymmetric(seed=0)((4, 3), dtype=dtype)
    assert keras.backend.standardize_dtype(kernel.dtype) == dtype


def test_config_round_trip():
    initializer = RandomizedAsymmetric(scale=0.5, positive_alpha=3.0, positive_beta=2.0, seed=4)
    config = initializer.get_config()
    assert config == {"scale": 0.5, "positive_alpha": 3.0, "positive_beta": 2.0, "seed": 4}
    restored = keras.initializers.deserialize(keras.initializers.serialize(initializer))
    assert type(restored) is RandomizedAsymmetric and restored.get_config() == config
    np.testing.assert_array_equal(
        ops.convert_to_numpy(restored((6, 5))), ops.convert_to_numpy(initializer((6, 5)))
    )


@pytest.mark.parametrize("name", ["randomized_asymmetric", "RandomizedAsymmetric"])
def test_the_string_names_it(name):
    assert type(keras.initializers.get(name)) is RandomizedAsymmetric
    assert keras_relu.initializers.RandomizedAsymmetric is RandomizedAsymmetric


def test_keras_s_own_names_are_untouched():
    assert type(keras.initializers.get("he_normal")) is keras.initializers.HeNormal


@pytest.mark.parametrize(
    "layer, input_shape",
    [
        (lambda: keras.layers.Dense(64, kernel_initializer="randomized_asymmetric"), (32,)),
        (
            lambda: keras.layers.Conv2D(32, 3, kernel_initializer="randomized_asymmetric"),
            (8, 8, 8),
        ),
    ],
)
def test_the_string_in_dense_and_conv2d(layer, input_shape):
    layer = layer()
    layer.build((None, *input_shape))
    assert type(layer.kernel_initializer) is RandomizedAsymmetric
    kernel = ops.convert_to_numpy(layer.kernel).reshape(-1, layer.kernel.shape[-1])
    # Every unit has one entry of Beta(2, 1) (the largest, in practice); the rest is small.
    sigma = 0.6007 / math.sqrt(kernel.shape[0])
    assert np.all(kernel.max(axis=0) > 0)
    assert np.median(kernel) == pytest.approx(0, abs=sigma / 4)
    assert np.std(kernel) < 2 * sigma


def test_the_string_saves_and_loads_in_a_fresh_process(tmp_path):
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, activation="relu", kernel_initializer="randomized_asymmetric")(
        inputs
    )
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, kernel_initializer="randomized_asymmetric")(x)
    model = keras.Model(inputs, outputs)
    path = tmp_path / "model.keras"
    model.save(path)
    data = tmp_path / "x.npy"
    x_data = np.random.default_rng(0).normal(size=(5, 6, 6, 2)).astype("float32")
    np.save(data, x_data)
    script = (
        "import sys, numpy as np, keras, keras_relu; "
        "model = keras.saving.load_model(sys.argv[1], safe_mode=True); "
        "kinds = {type(layer.kernel_initializer).__name__ for layer in model.layers[1:] "
        "if hasattr(layer, 'kernel_initializer')}; "
        "assert kinds == {'RandomizedAsymmetric'}, kinds; "
        "np.save(sys.argv[2], keras.ops.convert_to_numpy(model(np.load(sys.argv[2]))))"
    )
    subprocess.run([sys.executable, "-c", script, str(path), str(data)], check=True)
    np.testing.assert_allclose(
        np.load(data), ops.convert_to_numpy(model(x_data)), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("name", ["scale", "positive_alpha", "positive_beta"])
@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), "1", True, None])
def test_bad_parameters(name, value):
    with pytest.raises(ValueError, match=name):
        RandomizedAsymmetric(**{name: value})


@pytest.mark.parametrize("seed", ["1", 1.5, -1, 2**31, True, [1]])
def test_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed"):
        RandomizedAsymmetric(seed=seed)


@pytest.mark.parametrize("shape", [(5,), (), (0, 3), (4, 0)])
def test_shapes_that_are_not_kernels(shape):
    with pytest.raises(ValueError, match="shape"):
        RandomizedAsymmetric(seed=0)(shape)


# Where each Keras layer's output units lie, checked through the layer itself: each kernel
# entry is made the only non-zero one, and the output channel it moves is its unit.
L = keras.layers
TINY = {"scale": 1e-6}  # Symmetric entries below 1e-5: the positive entry stands out.


def _rai(**kwargs):
    return RandomizedAsymmetric(seed=11, **{**TINY, **kwargs})


LAYERS = {
    "dense": (lambda: L.Dense(5, kernel_initializer=_rai()), (3,), "kernel"),
    "conv1d": (lambda: L.Conv1D(4, 2, kernel_initializer=_rai()), (3, 2), "kernel"),
    "conv2d_groups": (
        lambda: L.Conv2D(4, 2, groups=2, kernel_initializer=_rai()),
        (3, 3, 4),
        "kernel",
    ),
    "conv3d": (lambda: L.Conv3D(3, 2, kernel_initializer=_rai()), (2, 2, 2, 2), "kernel"),
    "conv1d_transpose": (
        lambda: L.Conv1DTranspose(5, 2, kernel_initializer=_rai()),
        (3, 2),
        "kernel",
    ),
    "conv2d_transpose": (
        lambda: L.Conv2DTranspose(6, 2, strides=2, kernel_initializer=_rai()),
        (2, 2, 3),
        "kernel",
    ),
    "conv3d_transpose": (
        lambda: L.Conv3DTranspose(4, 2, kernel_initializer=_rai()),
        (2, 2, 2, 2),
        "kernel",
    ),
    "depthwise_conv1d": (
        lambda: L.DepthwiseConv1D(2, depth_multiplier=3, depthwise_initializer=_rai()),
        (3, 4),
        "kernel",
    ),
    "depthwise_conv2d": (
        lambda: L.DepthwiseConv2D(2, depth_multiplier=4, depthwise_initializer=_rai()),
        (3, 3, 4),
        "kernel",
    ),
    "separable_conv1d_depthwise": (
        lambda: L.SeparableConv1D(6, 2, depth_multiplier=2, depthwise_initializer=_rai()),
        (3, 3),
        "depthwise_kernel",
    ),
    "separable_conv2d_depthwise": (
        lambda: L.SeparableConv2D(6, 2, depth_multiplier=2, depthwise_initializer=_rai()),
        (3, 3, 3),
        "depthwise_kernel",
    ),
    "separable_conv2d_pointwise": (
        lambda: L.SeparableConv2D(
            5, 2, depth_multiplier=2, depthwise_initializer="ones", pointwise_initializer=_rai()
        ),
        (3, 3, 3),
        "pointwise_kernel",
    ),
    "einsum_dense": (
        lambda: L.EinsumDense("ab,bc->ac", output_shape=5, kernel_initializer=_rai()),
        (3,),
        "kernel",
    ),
    "einsum_dense_two_unit_axes": (
        lambda: L.EinsumDense("abc,cde->abde", (2, 3, 4), kernel_initializer=_rai()),
        (2, 5),
        "kernel",
    ),
    "einsum_dense_unit_axis_first": (
        lambda: L.EinsumDense("abc,dc->abd", (2, 3), kernel_initializer=_rai()),
        (2, 4),
        "kernel",
    ),
}


def _unit_of_each_entry(layer, input_shape, weight, unit_axes):
    """The output unit (an index of the output's `unit_axes`) each kernel entry feeds."""
    variable = getattr(layer, weight)
    drawn = ops.convert_to_numpy(variable)
    ones = np.ones((1, *input_shape), "float32")
    units = []
    for entry in range(drawn.size):
        one_hot = np.zeros(drawn.size, "float32")
        one_hot[entry] = 1.0
        variable.assign(one_hot.reshape(drawn.shape))
        moved = np.abs(ops.convert_to_numpy(layer(ones)))
        kept = tuple(axis % moved.ndim for axis in unit_axes)
        per_unit = moved.sum(axis=tuple(a for a in range(moved.ndim) if a not in kept))
        fed = np.flatnonzero(per_unit.reshape(-1))
        assert len(fed) == 1, (entry, fed)
        units.append(fed[0])
    variable.assign(drawn)
    return np.array(units), drawn.reshape(-1)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_every_output_unit_of_every_layer_kind_gets_one_positive_entry(kind):
    make, input_shape, weight = LAYERS[kind]
    layer = make()
    layer.build((None, *input_shape))
    if hasattr(layer, "bias") and layer.bias is not None:
        layer.bias.assign(np.zeros(layer.bias.shape, "float32"))
    if weight == "depthwise_kernel":  # Depthwise channel k reaches output channel k.
        pointwise = layer.pointwise_kernel
        pointwise.assign(np.eye(pointwise.shape[-1], dtype="float32").reshape(pointwise.shape))
    unit_axes = (-2, -1) if kind == "einsum_dense_two_unit_axes" else (-1,)
    unit, values = _unit_of_each_entry(layer, input_shape, weight, unit_axes)
    units = math.prod(layer.compute_output_shape((1, *input_shape))[a] for a in unit_axes)
    assert sorted(set(unit)) == list(range(units))  # Every unit has incoming weights.
    positives = np.bincount(unit[values > 1e-3], minlength=units)
    np.testing.assert_array_equal(positives, np.ones(units))
    assert np.all(np.abs(values[values <= 1e-3]) < 1e-4)
    # The user's initializer is left as it was: the layer drew with a bound copy.
    for name, stored in vars(layer).items():
        if name.endswith("_initializer") and isinstance(stored, RandomizedAsymmetric):
            assert stored.output_axes is None, name


@pytest.mark.parametrize("layer_class", [L.LSTM, L.GRU, L.SimpleRNN])
def test_recurrent_kernels_have_one_positive_entry_per_column(layer_class):
    layer = layer_class(3, kernel_initializer=_rai(), recurrent_initializer=_rai())
    layer.build((None, 2, 4))
    for kernel in (layer.cell.kernel, layer.cell.recurrent_kernel):
        positives = (ops.convert_to_numpy(kernel) > 1e-3).sum(axis=0)
        np.testing.assert_array_equal(positives, np.ones(kernel.shape[-1]))


def test_multi_head_attention_projections_follow_their_equations():
    attention = L.MultiHeadAttention(2, 3, kernel_initializer=_rai())
    x = np.ones((1, 4, 5), "float32")
    attention(x, x)
    # Query/key/value: (dim, heads, key_dim), a unit per (head, key_dim); output:
    # (heads, key_dim, dim), a unit per dim.
    for dense, unit_axes in (
        (attention.query_dense, (1, 2)),
        (attention.key_dense, (1, 2)),
        (attention.value_dense, (1, 2)),
        (attention.output_dense, (2,)),
    ):
        kernel = ops.convert_to_numpy(dense.kernel) > 1e-3
        other = tuple(a for a in range(kernel.ndim) if a not in unit_axes)
        np.testing.assert_array_equal(kernel.sum(axis=other), 1, err_msg=dense.name)


def test_the_layout_changes_nothing_where_the_units_are_last():
    dense = L.Dense(5, kernel_initializer=RandomizedAsymmetric(seed=3))
    dense.build((None, 7))
    direct = RandomizedAsymmetric(seed=3)((7, 5))
    np.testing.assert_array_equal(ops.convert_to_numpy(dense.kernel), ops.convert_to_numpy(direct))


@pytest.mark.parametrize(
    "make",
    [
        lambda: L.Embedding(10, 4, embeddings_initializer="randomized_asymmetric"),
        lambda: L.PReLU(alpha_initializer="randomized_asymmetric"),
        lambda: keras_relu.PReLU(alpha_initializer="randomized_asymmetric"),
    ],
    ids=["embedding", "keras_prelu", "keras_relu_prelu"],
)
def test_weights_whose_units_are_not_known_are_refused(make):
    with pytest.raises(ValueError, match="cannot tell which axes .*output_axes="):
        make().build((None, 3, 4))


def test_explicit_axes_are_kept_and_a_layer_of_your_own_takes_the_last_axis():
    class Mine(keras.layers.Layer):
        def __init__(self, initializer):
            super().__init__()
            self.initializer = initializer

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(4, 6), initializer=self.initializer)

    for initializer, unit_axis in ((_rai(), 1), (_rai(output_axes=[0]), 0)):
        layer = Mine(initializer)
        layer.build((None, 4))
        positives = (ops.convert_to_numpy(layer.kernel) > 1e-3).sum(axis=1 - unit_axis)
        np.testing.assert_array_equal(positives, 1)
    # Explicit axes win over the layer's: here the depthwise kernel's last axis alone.
    layer = L.DepthwiseConv2D(2, depth_multiplier=2, depthwise_initializer=_rai(output_axes=[-1]))
    layer.build((None, 3, 3, 3))
    kernel = ops.convert_to_numpy(layer.kernel) > 1e-3
    np.testing.assert_array_equal(kernel.sum(axis=(0, 1, 2)), [1, 1])


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        ({"output_axes": [3]}, (2, 3)),
        ({"input_axes": [0], "output_axes": [0]}, (2, 3)),
        ({"input_axes": [0], "output_axes": [1]}, (2, 3, 4)),
    ],
)
def test_axes_that_do_not_fit_the_kernel(kwargs, shape):
    with pytest.raises(ValueError, match="axes"):
        RandomizedAsymmetric(seed=0, **kwargs)(shape)


@pytest.mark.parametrize("value", [[], 1, [1.0], [True], "1"])
def test_bad_axes(value):
    with pytest.raises(ValueError, match="output_axes"):
        RandomizedAsymmetric(output_axes=value)


def test_axes_round_trip_in_the_config():
    initializer = RandomizedAsymmetric(seed=2, input_axes=[0, 1], output_axes=[2])
    config = initializer.get_config()
    assert config["input_axes"] == [0, 1] and config["output_axes"] == [2]
    restored = RandomizedAsymmetric.from_config(config)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(restored((2, 3, 4))), ops.convert_to_numpy(initializer((2, 3, 4)))
    )


def test_fan_in_1_makes_every_first_layer_weight_positive():
    # The side effect the docstring states: on 1-D inputs with zero biases, every unit is
    # relu(w x) with w > 0, so the network is constant (here 0) on x <= 0.
    model = keras.Sequential(
        [
            keras.Input((1,)),
            L.Dense(8, activation="relu", kernel_initializer=RandomizedAsymmetric(seed=0)),
            L.Dense(1, kernel_initializer=RandomizedAsymmetric(seed=1)),
        ]
    )
    assert np.all(ops.convert_to_numpy(model.layers[0].kernel) > 0)
    x = np.linspace(-3, 3, 61, dtype="float32")[:, None]
    y = ops.convert_to_numpy(model(x))[:, 0]
    np.testing.assert_array_equal(y[x[:, 0] <= 0], 0.0)
    assert np.ptp(y[x[:, 0] > 0]) > 0


def test_rai_shrinks_the_signal_of_wide_deep_stacks():
    """The docs' caveat: 20 x Dense(256) + ReLU on normal inputs, mean square of the
    activations after the first and the last layer, RAI against He normal (5 seeds)."""

    def mean_squares(make_initializer, seed):
        x = np.random.default_rng(seed).standard_normal((500, 256)).astype("float32")
        squares = []
        for layer in range(20):
            kernel = keras.ops.convert_to_numpy(make_initializer(seed * 100 + layer)((256, 256)))
            x = np.maximum(x @ kernel, 0.0)
            squares.append(float(np.mean(x**2)))
        return squares[0], squares[-1]

    for seed in range(5):
        first, last = mean_squares(lambda s: RandomizedAsymmetric(seed=s), seed)
        assert 0.35 < first < 0.5 and last < 0.01
        first, last = mean_squares(lambda s: keras.initializers.HeNormal(seed=s), seed)
        assert 0.8 < first < 1.2 and last > 0.1
