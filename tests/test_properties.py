"""Property-based tests (hypothesis) over every layer.

Random shapes (rank 2 to 5, and `None` dimensions in models), dtypes (float16,
bfloat16, float32, float64), arguments drawn from their valid ranges and inputs
mixing ordinary values with +-inf, NaN, -0.0, the largest finite values, the
smallest normal and subnormal values and the formula's own kinks (threshold,
max_value, 6). Each test checks one invariant of the formula, so that a failure
names the property that broke:

- shape (CReLU doubles its axis, the others keep it) and output dtype;
- NaN in => NaN out at the same positions, and no NaN where the input had none;
- values against the float64 NumPy references of tests/references.py, with
  infinite inputs mapped to the formula's limits at +-inf;
- ranges: ReLU (no slope, threshold >= 0) and CReLU never negative, ReLU6 in
  [0, 6], ReLU under max_value, ELU/SELU above their saturation values, RReLU's
  training slopes within [lower, upper];
- monotonicity where the formula is monotonic;
- CReLU's halves recombine to x as relu(x) - relu(-x);
- `None` dimensions in functional models, called eagerly and compiled.

NaN at infinite inputs: the formulas are taken on the extended reals, so f(+-inf)
must be lim f(x). The only tolerated exception is a finite limit at -inf of a
formula that IEEE arithmetic evaluates as 0 * inf there: x * sigmoid(beta * x)
(Swish, beta > 0), x * Phi(x) and its tanh form (GELU), and slope * x with a
slope of exactly 0 (LeakyReLU, PReLU, RReLU, ReLU): the product is the formula as
written, and the kernels of all three backends (tf.nn.silu, jax.nn.gelu,
torch.nn.functional.silu, ...) return NaN there. Where the limit is infinite
(Swish with beta = 0 at +-inf, for one), or the input finite, NaN is a bug.

Examples are derandomized so that CI is reproducible; run with
`--hypothesis-show-statistics` to see the counts.
"""

import math

import hypothesis.extra.numpy as hnp
import keras
import ml_dtypes
import numpy as np
import pytest
import references as ref
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from keras import ops

import keras_relu

BACKEND = keras.config.backend()


def _float64_supported():
    if BACKEND != "jax":
        return True
    import jax

    return bool(jax.config.jax_enable_x64)


# JAX without `jax_enable_x64` (its default, and how CI runs it) turns every float64
# array into float32, so a float64 layer computes and returns float32 there: float64
# is not drawn on that backend (the float64 tests below say so with a skip).
DTYPES = ("float16", "bfloat16", "float32") + (("float64",) if _float64_supported() else ())
NAMES = keras_relu.names()
PIECEWISE_LINEAR = ("relu", "leaky_relu", "prelu", "rrelu", "relu6", "crelu")
# Monotonic formulas (ReLU only for threshold >= 0, PReLU only for alpha >= 0: see
# test_monotonic). GELU and Swish (beta > 0) have a minimum; CReLU is not elementwise.
MONOTONIC = ("relu", "leaky_relu", "prelu", "rrelu", "elu", "selu", "relu6")

# The autouse fixture of conftest.py (seed, float32 policy) is function-scoped: it runs
# once per test, not per example, which is what these tests need (each example sets the
# dtype on its layer, never the global policy).
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)


def _finfo(dtype):
    return ml_dtypes.finfo(dtype)


def _np_dtype(dtype):
    return ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)


def _round(values, dtype):
    """float64 values rounded to `dtype` and back (overflow gives inf, as a cast does)."""
    with np.errstate(all="ignore"):
        return np.asarray(values, dtype=np.float64).astype(_np_dtype(dtype)).astype(np.float64)


def _round_scalar(value, dtype):
    return float(_round(value, dtype))


def _same(actual, expected, dtype):
    """Equal, NaN equal to NaN, or both below the smallest normal number of `dtype`:
    CPUs may flush subnormal inputs and results to zero (TensorFlow does for bfloat16)."""
    tiny = float(_finfo(dtype).tiny)
    with np.errstate(invalid="ignore"):
        flushed = (np.abs(actual) < tiny) & (np.abs(expected) < tiny)
        return (actual == expected) | (np.isnan(actual) & np.isnan(expected)) | flushed


# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------

SHAPES = hnp.array_shapes(min_dims=2, max_dims=5, min_side=1, max_side=4)
if BACKEND == "jax":
    # JAX compiles every op for each new shape and dtype (0.05 to 0.4 s a layer, where a
    # cached call takes 2 ms), so it draws from a fixed pool of ranks 2 to 5 instead,
    # which keeps its run of this file in budget. The other backends draw any shape.
    SHAPES = st.sampled_from(
        [(1, 1), (2, 3), (4, 1), (3, 2, 2), (1, 4, 3), (2, 1, 3, 2), (1, 3, 2, 4), (2, 2, 1, 3, 2)]
    )
# Slopes are 0 exactly or at least 1e-3, so that slope * 1e300 tells a finite limit at
# -inf (slope 0) from an infinite one.
SLOPES = st.one_of(st.just(0.0), st.floats(1e-3, 1.0), st.sampled_from([0.01, 0.5, 1.0]))


@st.composite
def layer_kwargs(draw, name, rank, dtype):
    """Constructor arguments for `name`, anywhere in their valid ranges."""
    if name == "relu":
        kwargs = {}
        if draw(st.booleans()):
            kwargs["negative_slope"] = draw(SLOPES)
        if draw(st.booleans()):
            kwargs["max_value"] = draw(st.one_of(st.sampled_from([0.0, 6.0]), st.floats(0, 10)))
        if draw(st.booleans()):
            # Representable in the compute dtype: the formula jumps at the threshold,
            # and the layer compares x with the threshold rounded to that dtype.
            kwargs["threshold"] = _round_scalar(draw(st.floats(-5, 5)), dtype)
        return kwargs
    if name == "leaky_relu":
        return {"negative_slope": draw(SLOPES)}
    if name == "prelu":
        # Negative alphas are allowed too; like the slopes, none below 1e-3 in size,
        # which bfloat16 would round to 0 (a legitimate rounding, not a bug).
        kwargs = {"alpha_initializer": draw(st.one_of(SLOPES, st.floats(-1.0, -1e-3)))}
        if draw(st.booleans()):
            axes = draw(st.lists(st.integers(1, rank - 1), unique=True, max_size=rank - 1))
            # Each axis given as positive or as negative, counted from the end.
            kwargs["shared_axes"] = [a - rank if draw(st.booleans()) else a for a in axes]
        return kwargs
    if name == "rrelu":
        lower, upper = sorted([draw(SLOPES), draw(SLOPES)])
        return {"lower": lower, "upper": upper, "seed": draw(st.integers(0, 2**16))}
    if name == "elu":
        return {"alpha": draw(st.one_of(st.sampled_from([0.0, 1.0]), st.floats(1e-3, 3.0)))}
    if name == "crelu":
        axis = draw(st.integers(1, rank - 1))
        return {"axis": axis - rank if draw(st.booleans()) else axis}
    if name == "gelu":
        return {"approximate": draw(st.booleans())}
    if name == "swish":
        beta = draw(st.one_of(st.sampled_from([0.0, 1.0]), st.floats(1e-3, 5.0)))
        return {"beta": beta, "learn_beta": draw(st.booleans())}
    return {}  # selu, relu6


def _kinks(name, kwargs):
    """Where the formula changes branch: inputs worth hitting exactly."""
    points = [0.0, 6.0] if name in ("relu6", "relu") else [0.0]
    for key in ("threshold", "max_value"):
        if kwargs.get(key) is not None:
            points.append(kwargs[key])
    return points


@st.composite
def inputs(draw, shape, dtype, kinks=(0.0,), allow_nan=True, allow_infinity=True):
    """An array of `shape` holding values representable in `dtype`, as float64."""
    info = _finfo(dtype)
    largest = float(info.max)
    specials = [-0.0, 0.0, 1.0, -1.0, largest, -largest]
    specials += [float(info.tiny), -float(info.tiny), float(info.smallest_subnormal)]
    specials += [float(k) for k in kinks] + [-float(k) for k in kinks]
    if allow_nan:
        specials.append(math.nan)
    if allow_infinity:
        specials += [math.inf, -math.inf]
    elements = st.one_of(
        st.floats(-8.0, 8.0),  # where the formulas bend
        st.floats(-largest, largest),  # anywhere in the dtype's range
        st.sampled_from(specials),
    )
    x = draw(hnp.arrays(np.float64, shape, elements=elements))
    if draw(st.booleans()):
        # Half the time every special value is in (as far as the size allows), so that
        # each rare combination of argument and extreme input is drawn often.
        tiled = np.resize(np.array(draw(st.permutations(specials))), x.size)
        x.flat[: len(specials)] = tiled[: len(specials)]
    return _round(x, dtype)


def _tensor(x, dtype):
    """`x` (float64, representable in `dtype`) as a `dtype` tensor: the casts are exact."""
    if dtype != "float64":
        x = x.astype(np.float32)  # JAX (no x64) warns on float64 arrays
    return ops.cast(ops.convert_to_tensor(x), dtype)


def _numpy(y):
    """A backend tensor as float64 NumPy (the casts from low precision are exact)."""
    dtype = keras.backend.standardize_dtype(y.dtype)
    if dtype != "float64":
        y = ops.cast(y, "float32")
    return ops.convert_to_numpy(y).astype(np.float64)


def _make(name, kwargs, dtype):
    return keras_relu.variant(name).layer(dtype=dtype, **kwargs)


def _call(layer, x, **call_kwargs):
    return layer(_tensor(x, layer.compute_dtype), **call_kwargs)


# ---------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------


def _reference(name, kwargs, x):
    """The formula in float64 NumPy, elementwise (CReLU's halves concatenated)."""
    with np.errstate(all="ignore"):
        if name == "relu":
            return ref.relu(
                x,
                kwargs.get("negative_slope", 0.0),
                kwargs.get("max_value"),
                kwargs.get("threshold", 0.0),
            )
        if name == "leaky_relu":
            return ref.leaky_relu(x, kwargs["negative_slope"])
        if name == "prelu":
            return ref.leaky_relu(x, kwargs["alpha_initializer"])
        if name == "rrelu":  # inference
            return ref.leaky_relu(x, (kwargs["lower"] + kwargs["upper"]) / 2.0)
        if name == "elu":
            return ref.elu(x, kwargs["alpha"])
        if name == "selu":
            return ref.selu(x)
        if name == "relu6":
            return ref.relu6(x)
        if name == "crelu":
            return ref.crelu(x, kwargs["axis"])
        if name == "gelu":
            return ref.gelu(x, kwargs["approximate"])
        if name == "swish":
            return ref.swish(x, kwargs["beta"])
    raise AssertionError(name)


def _limits(name, kwargs):
    """lim f(x) at x -> -inf and x -> +inf, from the reference at -+1e300."""
    big = np.array([[-1e300, 1e300]])
    kwargs = {**kwargs, "axis": -1} if name == "crelu" else kwargs
    values = _reference(name, kwargs, big)
    if name == "crelu":
        values = values[:, :2] - values[:, 2:]  # relu(x) - relu(-x) = x: +-inf
    values = values[0]
    return tuple(math.copysign(math.inf, v) if abs(v) > 1e250 else float(v) for v in values)


def _expected(name, kwargs, x):
    """The formula at every input, infinities mapped to the limits."""
    finite_x = np.where(np.isinf(x), 0.0, x)
    expected = _reference(name, kwargs, finite_x)
    at_minus_inf, at_plus_inf = _limits(name, kwargs)
    if name == "crelu":
        axis = kwargs["axis"]
        pos_lim = np.where(x == np.inf, np.inf, np.where(x == -np.inf, 0.0, np.nan))
        neg_lim = np.where(x == -np.inf, np.inf, np.where(x == np.inf, 0.0, np.nan))
        limits = np.concatenate([pos_lim, neg_lim], axis=axis)
        doubled_x = np.concatenate([x, x], axis=axis)
        expected = np.where(np.isinf(doubled_x), limits, expected)
        return np.where(np.isnan(doubled_x), np.nan, expected)
    expected = np.where(x == -np.inf, at_minus_inf, expected)
    expected = np.where(x == np.inf, at_plus_inf, expected)
    return np.where(np.isnan(x), np.nan, expected)


def _tolerated_nan(name, kwargs, x):
    """Where NaN may stand for a finite limit at -inf (see the module docstring)."""
    if name not in ("relu", "leaky_relu", "prelu", "rrelu", "gelu", "swish"):
        return np.zeros(x.shape, dtype=bool)
    at_minus_inf, _ = _limits(name, kwargs)
    if name == "swish" and kwargs["learn_beta"] and kwargs["beta"] == 0:
        # A learned beta of exactly 0 is 0 * inf at +-inf (documented in activations.swish).
        return np.isinf(x)
    return (x == -np.inf) & math.isfinite(at_minus_inf)


def _tolerances(name, dtype, x):
    """(rtol, atol array) for the layer against the float64 reference.

    The piecewise-linear formulas are a rounding or two of slope * (x - threshold),
    with the slope itself rounded to the dtype: 4 eps. The exp/erf/tanh ones get 8 eps, plus an
    absolute 8 eps * |x| for the cancellation in 1 + erf(.), 1 + tanh(.) and exp(x) - 1
    near their zeros. Both get the smallest normal number absolutely, since CPUs may
    flush subnormal results to zero.
    """
    info = _finfo(dtype)
    eps = float(info.eps)
    tiny = float(info.tiny)
    if name in PIECEWISE_LINEAR:
        return 4 * eps, np.full(x.shape, tiny)
    magnitude = np.where(np.isfinite(x), np.abs(x), 0.0)
    return 8 * eps, tiny + 8 * eps * np.maximum(1.0, magnitude)


def _doubled(x, name, kwargs):
    """`x` matched to the output's positions (CReLU: concatenated with itself)."""
    if name == "crelu":
        return np.concatenate([x, x], axis=kwargs["axis"])
    return x


@st.composite
def cases(draw, name, allow_nan=True, allow_infinity=True, dtypes=DTYPES):
    """(dtype, kwargs, x) for the variant `name`."""
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(SHAPES)
    kwargs = draw(layer_kwargs(name, len(shape), dtype))
    x = draw(
        inputs(
            shape,
            dtype,
            kinks=_kinks(name, kwargs),
            allow_nan=allow_nan,
            allow_infinity=allow_infinity,
        )
    )
    return dtype, kwargs, x


def _describe(name, dtype, kwargs, x):
    return f"{name}({kwargs}) in {dtype} on input of shape {x.shape}"


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_shape_dtype_and_nan_structure(name, data):
    """Shape and dtype are kept (CReLU doubles its axis); NaN in <=> NaN out."""
    dtype, kwargs, x = data.draw(cases(name))
    layer = _make(name, kwargs, dtype)
    y = _call(layer, x)
    what = _describe(name, dtype, kwargs, x)

    expected_shape = list(x.shape)
    if name == "crelu":
        expected_shape[kwargs["axis"]] *= 2
    assert tuple(y.shape) == tuple(expected_shape), what
    assert keras.backend.standardize_dtype(y.dtype) == dtype, what
    assert layer.compute_dtype == dtype, what

    actual = _numpy(y)
    x_out = _doubled(x, name, kwargs)
    nan_in = np.isnan(x_out)
    nan_out = np.isnan(actual)
    lost = nan_in & ~nan_out
    assert not lost.any(), f"{what}: NaN inputs gave {actual[lost]}"
    made = nan_out & ~nan_in & ~_doubled(_tolerated_nan(name, kwargs, x), name, kwargs)
    assert not made.any(), f"{what}: NaN out for inputs {x_out[made]}"


def _check_values(name, data, dtypes, tolerance_dtype=None):
    dtype, kwargs, x = data.draw(cases(name, allow_nan=False, dtypes=dtypes))
    layer = _make(name, kwargs, dtype)
    actual = _numpy(_call(layer, x))
    # The formula rounded to the dtype: a true value beyond the largest finite one is inf.
    expected = _round(_expected(name, kwargs, x), dtype)
    x_out = _doubled(x, name, kwargs)
    rtol, atol = _tolerances(name, tolerance_dtype or dtype, x_out)

    checked = ~np.isnan(actual) | ~_doubled(_tolerated_nan(name, kwargs, x), name, kwargs)
    with np.errstate(all="ignore"):
        error = np.abs(actual - expected)
        close = (actual == expected) | (error <= atol + rtol * np.abs(expected))
    bad = checked & ~close
    assert not bad.any(), (
        f"{_describe(name, dtype, kwargs, x)}: inputs {x_out[bad][:5]} gave "
        f"{actual[bad][:5]}, expected {expected[bad][:5]}"
    )


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_values_match_float64_reference(name, data):
    """In float16, bfloat16 and float32, every non-NaN output equals the formula
    computed in float64 and rounded to the dtype (limits at +-inf)."""
    _check_values(name, data, dtypes=("float16", "bfloat16", "float32"))


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_float64_layers_are_float64_accurate(name, data):
    """The same in float64, to a few float64 ulps: arguments such as slopes, thresholds
    and beta must not pass through float32 on the way."""
    if "float64" not in DTYPES:
        pytest.skip("JAX without jax_enable_x64 computes float64 as float32 (a backend limit)")
    # TensorFlow keeps some float64 arguments at float32 precision: tf.nn.leaky_relu's
    # slope is a float32 attribute, a Python float becomes a float32 tensor before it is
    # cast (Keras's Constant initializer, ops.cast), and tf.nn.gelu's float64 kernel is
    # float32-accurate. So there, float32's tolerances; elsewhere float64's.
    on_tf = keras.config.backend() == "tensorflow"
    _check_values(name, data, dtypes=("float64",), tolerance_dtype="float32" if on_tf else None)


@pytest.mark.parametrize("name", ["relu", "relu6", "crelu", "elu", "selu", "leaky_relu", "prelu"])
@SETTINGS
@given(data=st.data())
def test_output_ranges(name, data):
    """The bounds the formula implies, on every non-NaN output."""
    dtype, kwargs, x = data.draw(cases(name))
    actual = _numpy(_call(_make(name, kwargs, dtype), x))
    valid = ~np.isnan(actual)
    y = actual[valid]
    what = _describe(name, dtype, kwargs, x)
    if name == "relu":
        if kwargs.get("negative_slope", 0.0) == 0.0 and kwargs.get("threshold", 0.0) >= 0:
            assert np.all(y >= 0), f"{what}: negative outputs {y[y < 0]}"
        if kwargs.get("max_value") is not None:
            ceiling = _round_scalar(kwargs["max_value"], dtype)
            assert np.all(y <= ceiling), f"{what}: outputs {y[y > ceiling]} above max_value"
    elif name == "relu6":
        assert np.all((y >= 0) & (y <= 6)), f"{what}: outputs {y[(y < 0) | (y > 6)]}"
    elif name == "crelu":
        assert np.all(y >= 0), f"{what}: negative outputs {y[y < 0]}"
    elif name in ("elu", "selu"):
        alpha, scale = (kwargs["alpha"], 1.0) if name == "elu" else (ref.SELU_ALPHA, ref.SELU_SCALE)
        floor = _round_scalar(-alpha * scale, dtype) * (1 + 4 * float(_finfo(dtype).eps))
        assert np.all(y >= floor), f"{what}: outputs {y[y < floor]} below {floor}"
    else:  # leaky_relu, prelu: x > 0 is kept, x <= 0 keeps its sign times the slope's
        slope = kwargs.get("negative_slope", kwargs.get("alpha_initializer"))
        x_valid = x[valid]
        kept = x_valid > 0
        assert np.all(_same(y[kept], x_valid[kept], dtype)), f"{what}: {y[kept]}"
        below = y[x_valid <= 0]
        assert np.all(below <= 0 if slope >= 0 else below >= 0), f"{what}: {below}"


@pytest.mark.parametrize("name", MONOTONIC)
@SETTINGS
@given(data=st.data())
def test_monotonic(name, data):
    """Sorting the input sorts the output, for the monotonic formulas."""
    dtype, kwargs, x = data.draw(cases(name, allow_nan=False, allow_infinity=False))
    if name == "relu":
        # Below a negative threshold the output, slope * (x - threshold), is above the
        # threshold it jumps down to: the formula is monotonic only for threshold >= 0.
        kwargs["threshold"] = abs(kwargs.get("threshold", 0.0))
    if name == "prelu":
        kwargs["alpha_initializer"] = abs(kwargs["alpha_initializer"])
    # Sorted along the last axis; every channel has the same alpha (a constant).
    x = np.sort(x, axis=-1)
    actual = _numpy(_call(_make(name, kwargs, dtype), x))
    down = actual[..., 1:] < actual[..., :-1]  # no subtraction: inf - inf is NaN
    assert not down.any(), (
        f"{_describe(name, dtype, kwargs, x)}: decreasing at inputs "
        f"{x[..., :-1][down][:5]} -> {x[..., 1:][down][:5]}"
    )


@SETTINGS
@given(data=st.data())
def test_crelu_halves_recombine_to_x(data):
    """relu(x) - relu(-x) == x exactly, NaN and +-inf included; one half is always 0."""
    dtype, kwargs, x = data.draw(cases("crelu"))
    actual = _numpy(_call(_make("crelu", kwargs, dtype), x))
    positive, negative = np.split(actual, 2, axis=kwargs["axis"])
    what = _describe("crelu", dtype, kwargs, x)
    with np.errstate(invalid="ignore"):
        recombined = positive - negative
        both = (positive != 0) & (negative != 0) & ~np.isnan(x)
    bad = ~_same(recombined, x, dtype)
    assert not bad.any(), f"{what}: inputs {x[bad]} recombined to {recombined[bad]}"
    assert not both.any(), f"{what}: both halves non-zero at inputs {x[both]}"


@SETTINGS
@given(data=st.data())
def test_rrelu_training_slopes_within_bounds(data):
    """In training, x > 0 is kept and x <= 0 becomes a * x with lower <= a <= upper."""
    dtype, kwargs, x = data.draw(cases("rrelu", allow_nan=False, allow_infinity=False))
    actual = _numpy(_call(_make("rrelu", kwargs, dtype), x, training=True))
    what = _describe("rrelu", dtype, kwargs, x)
    assert not np.isnan(actual).any(), what
    positive = x > 0
    kept = _same(actual[positive], x[positive], dtype)
    assert np.all(kept), f"{what}: {x[positive][~kept]} -> {actual[positive][~kept]}"
    # a * x for a in [lower, upper], with the slope and product rounded to the dtype.
    slack = 4 * float(_finfo(dtype).eps)
    xn = x[~positive]
    yn = actual[~positive]
    with np.errstate(over="ignore"):
        upper_bound = kwargs["lower"] * xn * (1 - slack) + float(_finfo(dtype).tiny)
        lower_bound = kwargs["upper"] * xn * (1 + slack) - float(_finfo(dtype).tiny)
    assert np.all(yn <= upper_bound), f"{what}: {xn[yn > upper_bound]} -> {yn[yn > upper_bound]}"
    assert np.all(yn >= lower_bound), f"{what}: {xn[yn < lower_bound]} -> {yn[yn < lower_bound]}"


@st.composite
def model_cases(draw, name):
    """(kwargs, number of None axes, channels, two concrete input shapes)."""
    rank = draw(st.integers(2, 5))  # with the batch axis; rank - 2 axes are None
    unknown = rank - 2
    channels = draw(st.integers(1, 4))
    kwargs = draw(layer_kwargs(name, rank, "float32"))
    if name == "prelu":
        # alpha needs a known size on every axis it does not share: share the None
        # ones (shared_axes=None shares them all), and maybe the channels too.
        shared = list(range(1, rank - 1)) + ([rank - 1] if draw(st.booleans()) else [])
        kwargs["shared_axes"] = draw(st.sampled_from([None, shared]))
    sides = st.sampled_from([1, 3])  # few distinct shapes: JAX compiles each one
    shapes = [
        (draw(sides),) + tuple(draw(sides) for _ in range(unknown)) + (channels,) for _ in range(2)
    ]
    return kwargs, unknown, channels, shapes


@pytest.mark.parametrize("name", NAMES)
@settings(SETTINGS, max_examples=4)
@given(data=st.data())
def test_none_dimensions_in_models(name, data):
    """A model over `keras.Input(shape=(None,) * k + (C,))` runs on concrete shapes,
    eagerly and compiled (predict_on_batch), as the layer does on its own."""
    kwargs, unknown, channels, shapes = data.draw(model_cases(name))
    model_input = keras.Input(shape=(None,) * unknown + (channels,))
    model = keras.Model(model_input, keras_relu.variant(name).layer(**kwargs)(model_input))

    symbolic = [None] * (unknown + 1) + [channels]
    if name == "crelu":
        axis = kwargs["axis"] % len(symbolic)
        symbolic[axis] = None if symbolic[axis] is None else 2 * symbolic[axis]
    assert tuple(model.output.shape) == tuple(symbolic), kwargs

    for shape in shapes:
        # Values are the business of the tests above: finite ones here, with the kinks.
        x = data.draw(inputs(shape, "float32", _kinks(name, kwargs), False, False))
        x = np.clip(x, -1e3, 1e3)
        expected_shape = list(shape)
        if name == "crelu":
            expected_shape[kwargs["axis"]] *= 2
        alone = keras_relu.variant(name).layer(**kwargs)
        if name == "prelu":
            alone.build(shape)
            alone.set_weights(model.get_weights())
        direct = _numpy(alone(_tensor(x, "float32")))
        eager = _numpy(model(_tensor(x, "float32")))
        compiled = np.asarray(model.predict_on_batch(x.astype("float32")), dtype=np.float64)
        rtol, atol = _tolerances(name, "float32", _doubled(x, name, kwargs))
        for actual in (eager, compiled):
            assert actual.shape == tuple(expected_shape), (kwargs, shape)
            # TensorFlow traces PReLU to a different (equal up to rounding) form.
            assert np.all(np.abs(actual - direct) <= atol + rtol * np.abs(direct)), kwargs


def test_float64_is_float64():
    """float64 layers compute in float64 (the dtype the tests above draw from)."""
    if not _float64_supported():
        pytest.skip("JAX without jax_enable_x64 computes float64 as float32 (a backend limit)")
    y = keras_relu.ELU(dtype="float64")(_tensor(np.array([[1e-300, -1e-300]]), "float64"))
    assert keras.backend.standardize_dtype(y.dtype) == "float64"
    assert _numpy(y)[0, 0] == 1e-300
