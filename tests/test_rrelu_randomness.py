"""RReLU's randomness: seeds, the seed generator's state, inference and compiled use.

The slopes come from the layer's `keras.random.SeedGenerator`, whose state is a
non-trainable Keras variable `[seed, counter]`: a seeded layer repeats its
training-mode outputs on a backend, each training-mode call advances the state,
and compiled or stateless calls carry the state as any other variable (no Python
or NumPy randomness is involved, which a compiled function would freeze).
"""

import keras
import numpy as np
import pytest
from keras import ops

import keras_relu

BACKEND = keras.config.backend()
LOWER, UPPER = 0.1, 0.4
XLA_ONLY = pytest.mark.skipif(
    BACKEND not in ("tensorflow", "jax"),
    reason="jit_compile=True means XLA only on the TensorFlow and JAX backends; on torch "
    "it selects torch.compile (TorchDynamo), not XLA",
)


def _negatives(n=2000):
    return -np.linspace(0.5, 3.0, n, dtype="float32")[None, :]


def _mixed(n=64):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, n)).astype("float32")
    x[0, :4] = [-1.0, 0.0, 1.0, -2.0]  # both signs and zero, whatever the draw
    return x


def _train(layer, x):
    return ops.convert_to_numpy(layer(x, training=True))


def _state(layer):
    return ops.convert_to_numpy(layer.seed_generator.state.value).copy()


def _check_rrelu(x, y, lower, upper):
    """Positives unchanged, zero stays zero, negatives scaled by slopes in [lower, upper]."""
    positive, negative = x > 0, x < 0
    np.testing.assert_array_equal(y[positive], x[positive])
    np.testing.assert_array_equal(y[x == 0], 0.0)
    slopes = y[negative] / x[negative]
    assert slopes.min() >= lower - 1e-6, slopes.min()
    assert slopes.max() <= upper + 1e-6, slopes.max()
    return slopes


@pytest.mark.parametrize("seed", [None, 3])
def test_slopes_come_from_a_tracked_keras_seed_generator(seed):
    """The seed state is a SeedGenerator variable the layer tracks (so fit/jit carry it)."""
    layer = keras_relu.RReLU(seed=seed)
    assert isinstance(layer.seed_generator, keras.random.SeedGenerator)
    state = layer.seed_generator.state
    assert any(v is state for v in layer.non_trainable_variables)
    assert not layer.trainable_variables
    if seed is not None:
        np.testing.assert_array_equal(_state(layer), [seed, 0])


def test_training_slopes_lie_in_bounds_and_vary_per_element():
    """Training mode: y/x for x < 0 lies in [lower, upper], one draw per element."""
    x = np.concatenate([_negatives(), -_negatives()], axis=1)
    layer = keras_relu.RReLU(lower=LOWER, upper=UPPER, seed=11)
    slopes = _check_rrelu(x, _train(layer, x), LOWER, UPPER)
    # 2000 uniform draws: they spread over the interval around its middle.
    assert len(np.unique(slopes.round(5))) > 1000
    assert slopes.min() < LOWER + 0.02 and slopes.max() > UPPER - 0.02
    assert abs(slopes.mean() - (LOWER + UPPER) / 2) < 0.01


def _grid_index(slopes, lower=LOWER, upper=UPPER):
    """k in `lower + (upper - lower) * (k + 1/2) / 2**16`, as a float."""
    return (np.asarray(slopes, "float64") - lower) / ((upper - lower) / 2**16) - 0.5


def test_slopes_are_sixteen_bit_draws_from_the_layer_generator():
    """y / x is `random_slopes` from the same generator state: a cell midpoint of the
    2**16 equal cells of [lower, upper], one per element."""
    x = _negatives()
    y = _train(keras_relu.RReLU(LOWER, UPPER, seed=5), x)
    generator = keras.random.SeedGenerator(5)
    expected = ops.convert_to_numpy(
        keras_relu.activations.random_slopes(x, LOWER, UPPER, seed=generator)
    )
    np.testing.assert_allclose(y / x, expected, rtol=1e-6)
    k = _grid_index(expected)
    np.testing.assert_allclose(k, np.round(k), atol=0.05)  # float32 rounding of the slope
    assert k.min() > -0.5 and k.max() < 2**16 - 0.5


def test_random_slopes_are_uniform_over_the_grid():
    """200,000 slopes: mean, spread and every bit of k as a uniform draw gives them."""
    slopes = ops.convert_to_numpy(
        keras_relu.activations.random_slopes(ops.ones((400, 500)), LOWER, UPPER, seed=1)
    ).ravel()
    middle, width = (LOWER + UPPER) / 2, UPPER - LOWER
    assert abs(slopes.mean() - middle) < 5 * width / np.sqrt(12 * slopes.size)
    assert abs(slopes.std() - width / np.sqrt(12)) < 0.01 * width
    k = np.round(_grid_index(slopes)).astype(np.int64)
    for bit in range(16):  # Each bit of k is set half the time (both halves of a word).
        assert abs(((k >> bit) & 1).mean() - 0.5) < 0.01, bit
    counts = np.bincount(k >> 12, minlength=16) / k.size  # 16 equal bins
    np.testing.assert_allclose(counts, 1 / 16, atol=0.004)


def test_odd_sizes_and_float16_draw_in_bounds():
    """An odd number of elements (half a word left over) and float16 slopes."""
    for shape, dtype in (((3, 7), "float32"), ((1,), "float32"), ((5, 3), "float16")):
        slopes = ops.convert_to_numpy(
            keras_relu.activations.random_slopes(ops.ones(shape, dtype), LOWER, UPPER, seed=2)
        )
        assert slopes.shape == shape and slopes.dtype == dtype
        assert slopes.min() >= np.float16(LOWER) and slopes.max() <= np.float16(UPPER)


def test_inference_is_deterministic_with_the_mean_slope():
    """Inference (the default) uses (lower + upper) / 2, repeats, and draws no seed."""
    x = _mixed()
    layer = keras_relu.RReLU(lower=LOWER, upper=UPPER, seed=5)
    before = _state(layer)
    outputs = [ops.convert_to_numpy(layer(x)), ops.convert_to_numpy(layer(x, training=False))]
    expected = np.where(x > 0, x, np.float32((LOWER + UPPER) / 2) * x)
    for y in outputs:
        np.testing.assert_allclose(y, expected, rtol=1e-6, atol=0)
    np.testing.assert_array_equal(outputs[0], outputs[1])
    np.testing.assert_array_equal(_state(layer), before)


def test_same_seed_gives_the_same_training_outputs():
    """Two layers with one seed give the same sequence of draws; another seed does not."""
    x = _mixed()
    first, second = keras_relu.RReLU(seed=21), keras_relu.RReLU(seed=21)
    a = [_train(first, x) for _ in range(3)]
    b = [_train(second, x) for _ in range(3)]
    for ya, yb in zip(a, b, strict=True):
        np.testing.assert_array_equal(ya, yb)
    other = _train(keras_relu.RReLU(seed=22), x)
    assert not np.array_equal(other, a[0])


def test_successive_calls_of_a_seeded_layer_differ():
    """Each training-mode call advances the generator, so the slopes change."""
    x = _mixed()
    layer = keras_relu.RReLU(seed=4)
    before = _state(layer)
    y1 = _train(layer, x)
    middle = _state(layer)
    y2 = _train(layer, x)
    assert not np.array_equal(middle, before)
    assert not np.array_equal(_state(layer), middle)
    assert not np.array_equal(y1, y2)
    negative = x < 0
    np.testing.assert_array_equal(y1[~negative], y2[~negative])


def test_unseeded_layers_differ_from_call_to_call_and_from_each_other():
    """Without a seed, outputs still vary between calls and between layers."""
    x = _mixed()
    layer = keras_relu.RReLU()
    y1, y2 = _train(layer, x), _train(layer, x)
    assert not np.array_equal(y1, y2)
    assert not np.array_equal(_train(keras_relu.RReLU(), x), y1)
    for y in (y1, y2):
        _check_rrelu(x, y, keras_relu.activations.RRELU_LOWER, keras_relu.activations.RRELU_UPPER)


def _compiled_training_calls(layer, x, n):
    """n training-mode calls of `layer` inside one XLA-compiled function, state carried."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        step = tf.function(lambda x: layer(x, training=True), jit_compile=True)
        return [np.asarray(step(x)) for _ in range(n)]
    import jax

    step = jax.jit(lambda state, x: layer.stateless_call([], state, x, training=True))
    state = [v.value for v in layer.non_trainable_variables]
    outputs = []
    for _ in range(n):
        y, state = step(state, x)
        outputs.append(np.asarray(y))
    for variable, value in zip(layer.non_trainable_variables, state, strict=True):
        variable.assign(value)
    return outputs


@XLA_ONLY
def test_compiled_calls_repeat_per_seed_and_advance():
    """Under XLA, a seed repeats its draws, calls differ, and the state advances."""
    x = _mixed()
    layer, twin = keras_relu.RReLU(LOWER, UPPER, seed=8), keras_relu.RReLU(LOWER, UPPER, seed=8)
    before = _state(layer)
    outputs = _compiled_training_calls(layer, x, 3)
    np.testing.assert_array_equal(_state(layer), before + [0, 3])
    for y in outputs:
        _check_rrelu(x, y, LOWER, UPPER)
    assert not np.array_equal(outputs[0], outputs[1])
    assert not np.array_equal(outputs[1], outputs[2])
    for y, y_twin in zip(outputs, _compiled_training_calls(twin, x, 3), strict=True):
        np.testing.assert_array_equal(y, y_twin)
    other = _compiled_training_calls(keras_relu.RReLU(LOWER, UPPER, seed=9), x, 1)[0]
    assert not np.array_equal(other, outputs[0])


@XLA_ONLY
def test_compiled_and_eager_calls_draw_the_same_slopes():
    """A seeded layer draws the same slopes compiled as eagerly (TensorFlow draws with
    XLA's threefry in both)."""
    x = _mixed()
    compiled = _compiled_training_calls(keras_relu.RReLU(LOWER, UPPER, seed=6), x, 2)
    eager = keras_relu.RReLU(LOWER, UPPER, seed=6)
    for y in compiled:
        np.testing.assert_array_equal(_train(eager, x), y)


FIT_SAMPLES, FIT_BATCH, FIT_EPOCHS, FEATURES = 32, 8, 4, 6


def _fit_model(seed):
    init = keras.initializers.GlorotUniform
    inputs = keras.Input((FEATURES,))
    hidden = keras.layers.Dense(16, kernel_initializer=init(seed=1))(inputs)
    hidden = keras_relu.RReLU(seed=seed, name="rrelu")(hidden)
    outputs = keras.layers.Dense(1, kernel_initializer=init(seed=2))(hidden)
    return keras.Model(inputs, outputs)


def _compiled_fit(seed):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((FIT_SAMPLES, FEATURES)).astype("float32")
    y = (x @ rng.standard_normal((FEATURES, 1))).astype("float32")
    model = _fit_model(seed)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", jit_compile=True)
    # Keras silently drops jit_compile when a layer says it cannot be compiled.
    assert model.jit_compile is True
    initial = [np.array(w) for w in model.get_weights()]
    history = model.fit(
        x, y, batch_size=FIT_BATCH, epochs=FIT_EPOCHS, shuffle=False, verbose=0
    ).history
    return model, initial, history["loss"]


def test_compiled_fit_trains_and_advances_the_seed_state():
    """`fit(jit_compile=True)`: the model learns, one draw per step, draws repeat per seed."""
    if BACKEND not in ("tensorflow", "jax"):
        pytest.skip(
            "jit_compile=True is XLA only on TensorFlow and JAX; on torch it selects "
            "torch.compile (TorchDynamo), not XLA"
        )
    model, initial, losses = _compiled_fit(seed=13)
    layer = model.get_layer("rrelu")
    steps = FIT_EPOCHS * FIT_SAMPLES // FIT_BATCH
    np.testing.assert_array_equal(_state(layer), [13, steps])
    weights = [np.array(w) for w in model.get_weights()]
    assert all(np.isfinite(w).all() for w in weights)
    assert all(not np.array_equal(w, w0) for w, w0 in zip(weights, initial, strict=True))
    assert losses[-1] < 0.5 * losses[0], losses

    twin, _, twin_losses = _compiled_fit(seed=13)
    np.testing.assert_allclose(twin_losses, losses, rtol=1e-6)
    for w, w_twin in zip(weights, twin.get_weights(), strict=True):
        np.testing.assert_allclose(np.array(w_twin), w, rtol=1e-6, atol=1e-7)
    # The random slopes reach the gradients: another seed trains to other weights.
    other, _, _ = _compiled_fit(seed=14)
    assert not np.allclose(other.get_weights()[0], weights[0], rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(BACKEND != "jax", reason="threads the state through jax.jit; JAX backend only")
def test_stateless_jax_call_is_deterministic_given_the_state():
    """stateless_call: the passed seed state alone fixes the draw; nothing is mutated."""
    import jax

    x = _mixed()
    layer = keras_relu.RReLU(LOWER, UPPER, seed=17)
    state = [v.value for v in layer.non_trainable_variables]
    before = _state(layer)

    y1, new1 = layer.stateless_call([], state, x, training=True)
    y2, new2 = layer.stateless_call([], state, x, training=True)
    np.testing.assert_array_equal(np.asarray(y1), np.asarray(y2))
    np.testing.assert_array_equal(np.asarray(new1[0]), np.asarray(new2[0]))
    np.testing.assert_array_equal(np.asarray(new1[0]), before + [0, 1])
    np.testing.assert_array_equal(_state(layer), before)  # the layer is untouched
    _check_rrelu(x, np.asarray(y1), LOWER, UPPER)

    y_next, _ = layer.stateless_call([], new1, x, training=True)
    assert not np.array_equal(np.asarray(y_next), np.asarray(y1))

    jitted = jax.jit(lambda s, x: layer.stateless_call([], s, x, training=True))
    y_jit, new_jit = jitted(state, x)
    np.testing.assert_allclose(np.asarray(y_jit), np.asarray(y1), rtol=1e-6, atol=0)
    np.testing.assert_array_equal(np.asarray(new_jit[0]), np.asarray(new1[0]))

    # The stateful call from the same state is the same draw.
    np.testing.assert_array_equal(_train(layer, x), np.asarray(y1))
