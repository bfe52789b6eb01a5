"""keras_relu.diagnostics.revive_dead_units and ReviveDeadUnits, on models with known dead units."""

import keras
import numpy as np
import pytest

import keras_relu
from keras_relu import diagnostics

# Centred inputs: a unit with bias -100 never goes above 0, and a re-drawn unit (bias 0)
# is above 0 on about half of them.
INPUTS = np.random.default_rng(0).normal(size=(32, 6)).astype("float32")
TARGETS = np.random.default_rng(1).normal(size=(32, 2)).astype("float32")
DEAD = 1  # The unit killed in each test model.


def kill_unit(layer, unit=DEAD):
    """Sets `layer`'s bias of `unit` to -100 (dead on INPUTS), weights otherwise kept."""
    kernel, bias = layer.get_weights()
    bias[unit] = -100.0
    layer.set_weights([kernel, bias])


def mlp(activation_layer=None, units=4, name="mlp"):
    """Dense(4) -> activation (inline relu when `activation_layer` is None) -> Dense(2)."""
    inputs = keras.Input((6,))
    if activation_layer is None:
        x = keras.layers.Dense(units, activation="relu", name="hidden")(inputs)
    else:
        x = keras.layers.Dense(units, name="hidden")(inputs)
        x = activation_layer(x)
    outputs = keras.layers.Dense(2, name="head")(x)
    model = keras.Model(inputs, outputs, name=name)
    kill_unit(model.get_layer("hidden"))
    return model


def weights(layer):
    return [np.array(w) for w in layer.get_weights()]


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "layer"])
def test_a_dead_unit_is_revived_and_the_outputs_are_unchanged(inline):
    model = mlp(None if inline else keras_relu.ReLU(name="act"))
    place = "hidden" if inline else "act"
    kernel, bias = weights(model.get_layer("hidden"))
    before = model.predict(INPUTS, verbose=0)
    assert diagnostics.activation_stats(model, INPUTS)[place]["dead_fraction"] == 0.25

    report = diagnostics.revive_dead_units(model, INPUTS, seed=0)

    assert report == {place: 1} and report.units == {place: [DEAD]} and report.skipped == {}
    assert report.total == 1
    np.testing.assert_allclose(model.predict(INPUTS, verbose=0), before, rtol=0, atol=1e-6)
    new_kernel, new_bias = weights(model.get_layer("hidden"))
    # Only the dead unit's column and bias changed; the bias from zeros, its initializer.
    others = np.arange(4) != DEAD
    np.testing.assert_array_equal(new_kernel[:, others], kernel[:, others])
    np.testing.assert_array_equal(new_bias[others], bias[others])
    assert new_bias[DEAD] == 0.0
    assert not np.allclose(new_kernel[:, DEAD], kernel[:, DEAD])
    head_kernel = weights(model.get_layer("head"))[0]
    np.testing.assert_array_equal(head_kernel[DEAD], 0.0)
    assert np.all(head_kernel[others] != 0)
    assert diagnostics.activation_stats(model, INPUTS)[place]["dead_fraction"] == 0.0


def test_the_revived_unit_learns_again():
    model = mlp()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    hidden = model.get_layer("hidden")
    column = weights(hidden)[0][:, DEAD]
    model.train_on_batch(INPUTS, TARGETS)
    # Dead: no gradient reaches its incoming weights.
    np.testing.assert_array_equal(weights(hidden)[0][:, DEAD], column)

    diagnostics.revive_dead_units(model, INPUTS, seed=0)
    revived_column = weights(hidden)[0][:, DEAD]
    model.train_on_batch(INPUTS, TARGETS)  # Its outgoing weights leave 0...
    assert np.all(weights(model.get_layer("head"))[0][DEAD] != 0)
    model.train_on_batch(INPUTS, TARGETS)  # ...then its incoming weights get a gradient.
    assert np.all(weights(hidden)[0][:, DEAD] != revived_column)


def test_each_call_draws_new_weights_and_a_seed_repeats_them():
    draws = []
    for seed in (0, 1, None, None, 0):
        model = mlp()
        diagnostics.revive_dead_units(model, INPUTS, seed=seed)
        draws.append(weights(model.get_layer("hidden"))[0][:, DEAD])
    np.testing.assert_array_equal(draws[0], draws[4])
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.array_equal(draws[i], draws[j])


def test_threshold_is_inclusive_on_the_redo_score():
    # Units' outputs are constant 0, 1, 2 (zero kernel): mean |y| over the layer's mean
    # gives scores 0, 1, 2 (less 1e-9).
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(3, activation="relu", name="hidden")
    outputs = keras.layers.Dense(2, name="head")(hidden(inputs))
    model = keras.Model(inputs, outputs)
    hidden.set_weights([np.zeros((6, 3), "float32"), np.array([0.0, 1.0, 2.0], "float32")])
    revived = {}
    for threshold in (0.0, 0.5, 1.0, 2.5):
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        revived[threshold] = diagnostics.revive_dead_units(clone, INPUTS, threshold=threshold)
    assert {t: r.units["hidden"] for t, r in revived.items()} == {
        0.0: [0],
        0.5: [0],
        1.0: [0, 1],
        2.5: [0, 1, 2],
    }


def test_inactive_units_of_leaky_variants_only_on_request():
    model = mlp(keras_relu.LeakyReLU(name="act"))
    assert diagnostics.revive_dead_units(model, INPUTS) == {"act": 0}
    before = model.predict(INPUTS, verbose=0)
    head_row = weights(model.get_layer("head"))[0][DEAD]
    kernel, bias = weights(model.get_layer("hidden"))
    slope = model.get_layer("act").negative_slope
    negative_side = slope * (INPUTS @ kernel[:, DEAD] + bias[DEAD])  # What the unit output.
    report = diagnostics.revive_dead_units(model, INPUTS, revive_inactive=True)
    assert report.units == {"act": [DEAD]}
    # Not a dead unit: its outgoing weights took its (negative-side) output along.
    after = model.predict(INPUTS, verbose=0)
    np.testing.assert_allclose(before - after, np.outer(negative_side, head_row), atol=1e-4)


def test_flatten_interleaves_the_channels():
    inputs = keras.Input((4, 5, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv")(inputs)
    x = keras.layers.ReLU(name="act")(x)
    x = keras.layers.MaxPooling2D(name="pool")(x)  # (2, 2, 3)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Flatten()(x)  # Index f holds channel f % 3.
    outputs = keras.layers.Dense(2, name="head")(x)
    model = keras.Model(inputs, outputs)
    kill_unit(model.get_layer("conv"))
    images = np.random.default_rng(2).uniform(0, 1, (8, 4, 5, 2)).astype("float32")
    head_kernel = weights(model.get_layer("head"))[0]
    before = model.predict(images, verbose=0)

    assert diagnostics.revive_dead_units(model, images) == {"act": 1}

    np.testing.assert_allclose(model.predict(images, verbose=0), before, rtol=0, atol=1e-6)
    new_kernel = weights(model.get_layer("head"))[0]
    zeroed = np.flatnonzero(np.all(new_kernel == 0, axis=1))
    np.testing.assert_array_equal(zeroed, [1, 4, 7, 10])
    kept = np.setdiff1d(np.arange(12), zeroed)
    np.testing.assert_array_equal(new_kernel[kept], head_kernel[kept])


def test_reshape_keeps_units_where_the_mapping_is_known():
    inputs = keras.Input((6,))
    x = keras.layers.Dense(4, activation="relu", name="hidden")(inputs)
    x = keras.layers.Reshape((1, 4))(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Reshape((2, 2))(x)  # Index 0 and 1 of the last axis each hold 2 units.
    outputs = keras.layers.Dense(2, name="head")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    kill_unit(model.get_layer("hidden"))
    report = diagnostics.revive_dead_units(model, INPUTS)
    assert report == {} and "Reshape" in report.skipped["hidden"]
    assert "mixes units" in report.skipped["hidden"]


def test_batch_norm_between_producer_and_activation_is_reset():
    inputs = keras.Input((6,))
    x = keras.layers.Dense(4, name="hidden")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="act")(x)
    outputs = keras.layers.Dense(2, name="head")(x)
    model = keras.Model(inputs, outputs)
    bn = model.get_layer("bn")
    gamma, beta = np.full(4, 2.0, "float32"), np.full(4, 0.5, "float32")
    mean, variance = np.full(4, 0.3, "float32"), np.full(4, 4.0, "float32")
    beta[DEAD] = -100.0
    bn.set_weights([gamma, beta, mean, variance])
    before = model.predict(INPUTS, verbose=0)

    assert diagnostics.revive_dead_units(model, INPUTS) == {"act": 1}

    new = weights(bn)
    expected = [gamma.copy(), beta.copy(), mean.copy(), variance.copy()]
    for array, start in zip(expected, (1.0, 0.0, 0.0, 1.0), strict=True):
        array[DEAD] = start
    for got, want in zip(new, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(model.predict(INPUTS, verbose=0), before, rtol=0, atol=1e-6)


def _slots(model, variable, kinds):
    """The optimizer variables named after `variable` and one of `kinds`."""
    stem = variable.path.replace("/", "_")
    found = [v for v in model.optimizer.variables if v.name in {f"{stem}_{k}" for k in kinds}]
    assert len(found) == len(kinds), [v.name for v in model.optimizer.variables]
    return found


@pytest.mark.parametrize(
    "optimizer, kinds",
    [
        (lambda: keras.optimizers.Adam(1e-3), ("momentum", "velocity")),
        (lambda: keras.optimizers.SGD(1e-2, momentum=0.9), ("momentum",)),
    ],
    ids=["adam", "sgd_momentum"],
)
def test_optimizer_state_is_reset_for_exactly_the_changed_entries(optimizer, kinds):
    model = mlp()
    model.compile(optimizer=optimizer(), loss="mse")
    model.train_on_batch(INPUTS, TARGETS)
    hidden, head = model.get_layer("hidden"), model.get_layer("head")
    slots = {}
    for variable in (hidden.kernel, hidden.bias, head.kernel, head.bias):
        for slot in _slots(model, variable, kinds):
            slot.assign(np.full(slot.shape, 7.0, "float32"))
            slots[slot.name] = (variable, slot)

    diagnostics.revive_dead_units(model, INPUTS, reset_optimizer="zero")

    changed = {
        id(hidden.kernel): np.zeros((6, 4), bool),
        id(hidden.bias): np.arange(4) == DEAD,
        id(head.kernel): np.zeros((4, 2), bool),
        id(head.bias): np.zeros(2, bool),
    }
    changed[id(hidden.kernel)][:, DEAD] = True
    changed[id(head.kernel)][DEAD, :] = True
    for variable, slot in slots.values():
        value = keras.ops.convert_to_numpy(slot.value)
        expected = np.where(changed[id(variable)], 0.0, 7.0)
        np.testing.assert_array_equal(value, expected, err_msg=slot.name)


def test_unsupported_places_are_skipped_whole_with_the_reason():
    inputs = keras.Input((6,))
    x = keras.layers.Dense(6, name="hidden")(inputs)
    x = keras.layers.ReLU(name="act")(x)
    residual = keras.layers.Add(name="add")([x, inputs])
    y = keras.layers.Dense(4, activation="relu", name="second")(residual)
    z = keras.layers.ReLU(name="after_add")(keras.layers.Add(name="add2")([y, y]))
    outputs = keras.layers.Dense(2, name="head")(z)
    model = keras.Model(inputs, outputs)
    kill_unit(model.get_layer("hidden"))
    kept = [weights(model.get_layer(n)) for n in ("hidden", "second", "head")]

    report = diagnostics.revive_dead_units(model, INPUTS)

    assert report == {}
    assert set(report.skipped) == {"act", "second", "after_add"}
    assert "'add' (Add)" in report.skipped["act"]
    assert "also feeds" in report.skipped["second"] or "Add" in report.skipped["second"]
    assert "'add2' (Add)" in report.skipped["after_add"]
    for name, before in zip(("hidden", "second", "head"), kept, strict=True):
        for got, want in zip(weights(model.get_layer(name)), before, strict=True):
            np.testing.assert_array_equal(got, want)


def test_shared_layers_and_model_outputs_are_skipped():
    shared = keras.layers.ReLU(name="shared")
    inputs = keras.Input((6,))
    a = shared(keras.layers.Dense(4, name="a")(inputs))
    b = shared(keras.layers.Dense(4, name="b")(inputs))
    last = keras.layers.Dense(2, activation="relu", name="last")
    model = keras.Model(inputs, last(keras.layers.Concatenate()([a, b])))
    report = diagnostics.revive_dead_units(model, INPUTS)
    assert report == {}
    assert "called 2 times" in report.skipped["shared"]
    assert "called more than once" in report.skipped["shared@1"]
    assert "model output" in report.skipped["last"]


@pytest.mark.parametrize("jit_compile", [False, True], ids=["eager", "jit"])
def test_callback_revives_during_fit(jit_compile):
    model = mlp()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", jit_compile=jit_compile)
    reviver = diagnostics.ReviveDeadUnits(INPUTS, every_n_batches=2, seed=0)
    history = model.fit(
        INPUTS, TARGETS, batch_size=8, epochs=2, callbacks=[reviver], verbose=0, shuffle=False
    )
    assert model.jit_compile is jit_compile
    # The first call (batch 2) revives the dead unit, and training goes on from the
    # assigned weights: compiled steps see them, JAX's state does not overwrite them.
    assert reviver.reports[0][2].units == {"hidden": [DEAD]}
    assert history.history["revived_units"][0] >= 1
    assert history.history["revived_units/hidden"] == history.history["revived_units"]
    assert len(reviver.reports) == 4  # 4 batches per epoch, every 2.
    assert weights(model.get_layer("hidden"))[1][DEAD] > -50
    assert diagnostics.activation_stats(model, INPUTS)["hidden"]["dead_fraction"] < 0.25


def test_callback_revives_at_epoch_end_by_default():
    model = mlp()
    model.compile(optimizer=keras.optimizers.SGD(1e-2), loss="mse")
    reviver = diagnostics.ReviveDeadUnits(INPUTS)
    history = model.fit(INPUTS, TARGETS, batch_size=16, epochs=2, callbacks=[reviver], verbose=0)
    assert [(epoch, batch) for epoch, batch, _ in reviver.reports] == [(0, None), (1, None)]
    assert history.history["revived_units"][0] == 1


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"threshold": -0.1}, ValueError, "threshold"),
        ({"threshold": "0"}, TypeError, "threshold"),
        ({"threshold": float("nan")}, ValueError, "threshold"),
        ({"revive_inactive": 1}, TypeError, "revive_inactive"),
        ({"reset_optimizer": None}, TypeError, "reset_optimizer"),
        ({"seed": -1}, ValueError, "seed"),
        ({"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        diagnostics.revive_dead_units(mlp(), INPUTS, **kwargs)
    with pytest.raises(error, match=match):
        diagnostics.ReviveDeadUnits(INPUTS, **kwargs)


@pytest.mark.parametrize("every", [0, 1.5, True])
def test_bad_every_n_batches(every):
    with pytest.raises(ValueError, match="every_n_batches"):
        diagnostics.ReviveDeadUnits(INPUTS, every_n_batches=every)


def test_empty_probe_and_subclassed_model():
    with pytest.raises(ValueError, match="probe"):
        diagnostics.revive_dead_units(mlp(), INPUTS[:0])

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2, activation="relu")

        def call(self, x):
            return self.dense(x)

    model = Subclassed()
    model(INPUTS)
    with pytest.raises(ValueError, match="Functional or Sequential"):
        diagnostics.revive_dead_units(model, INPUTS)


def test_sequential_model():
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(4, name="hidden"), keras.layers.ReLU(name="act")]
        + [keras.layers.Dense(2, name="head")]
    )
    kill_unit(model.get_layer("hidden"))
    before = model.predict(INPUTS, verbose=0)
    assert diagnostics.revive_dead_units(model, INPUTS) == {"act": 1}
    np.testing.assert_allclose(model.predict(INPUTS, verbose=0), before, rtol=0, atol=1e-6)


def probe_with_nan(size=256, row=100):
    """Centred inputs, like INPUTS, with NaN in one entry of one row."""
    probe = np.random.default_rng(4).normal(size=(size, 6)).astype("float32")
    probe[row, 2] = np.nan
    return probe


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "layer"])
def test_a_non_finite_probe_output_raises_before_any_change(inline):
    # Before: NaN scored as alive, so one NaN example revived 0 units, silently.
    model = mlp(None if inline else keras_relu.ReLU(name="act"))
    place = "hidden" if inline else "act"
    kept = [weights(model.get_layer(name)) for name in ("hidden", "head")]
    probe = probe_with_nan()
    with pytest.raises(ValueError, match=rf"non-finite .* '{place}' \(1 of 256 examples\)"):
        diagnostics.revive_dead_units(model, probe)
    for name, before in zip(("hidden", "head"), kept, strict=True):
        for got, want in zip(weights(model.get_layer(name)), before, strict=True):
            np.testing.assert_array_equal(got, want)
    # Without that row the dead unit is found.
    clean = np.delete(probe, 100, axis=0)
    assert diagnostics.revive_dead_units(model, clean).units == {place: [DEAD]}


def test_callback_warns_and_leaves_a_non_finite_place_alone():
    model = mlp()
    model.compile(optimizer=keras.optimizers.SGD(1e-2), loss="mse")
    reviver = diagnostics.ReviveDeadUnits(probe_with_nan(), every_n_batches=2, seed=0)
    with pytest.warns(diagnostics.NonFiniteProbeWarning, match=r"'hidden' \(1 of 256 examples\)"):
        history = model.fit(INPUTS, TARGETS, batch_size=8, epochs=1, callbacks=[reviver], verbose=0)
    assert len(reviver.reports) == 2
    for _, _, report in reviver.reports:
        assert report == {} and report.skipped == {"hidden": "the probe gives NaN or inf there"}
    assert history.history["revived_units"] == [0]
    assert weights(model.get_layer("hidden"))[1][DEAD] == -100.0  # Still dead, not edited.


def masked_text_model():
    """Embedding(mask_zero=True) -> Dense -> ReLU -> GlobalAveragePooling1D -> Dense."""
    inputs = keras.Input((7,), dtype="int32")
    x = keras.layers.Embedding(20, 6, mask_zero=True, name="embedding")(inputs)
    x = keras.layers.Dense(4, name="hidden")(x)
    x = keras.layers.ReLU(name="act")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)  # Takes the mask as an input.
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    kill_unit(model.get_layer("hidden"))
    return model


def test_a_masked_text_model_is_revived_and_its_probe_outputs_kept():
    model = masked_text_model()
    tokens = np.random.default_rng(5).integers(1, 20, size=(32, 7))
    tokens[:, 4:] = 0  # Padding, masked out of the pooling.
    tokens[::3, 2:] = 0
    before = model.predict(tokens, verbose=0)
    assert diagnostics.activation_stats(model, tokens)["act"]["dead_fraction"] == 0.25

    report = diagnostics.revive_dead_units(model, tokens, seed=0)

    assert report.units == {"act": [DEAD]} and report.skipped == {}
    np.testing.assert_allclose(model.predict(tokens, verbose=0), before, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(weights(model.get_layer("head"))[0][DEAD], 0.0)
    assert diagnostics.activation_stats(model, tokens)["act"]["dead_fraction"] < 0.25


def test_a_mask_is_not_taken_for_a_second_data_input():
    # A layer that combines the unit with another data tensor is still skipped.
    inputs = keras.Input((7,), dtype="int32")
    x = keras.layers.Embedding(20, 4, mask_zero=True)(inputs)
    y = keras.layers.Dense(4, activation="relu", name="hidden")(x)
    z = keras.layers.Add(name="add")([y, x])
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(z)))
    report = diagnostics.revive_dead_units(model, np.ones((4, 7), "int32"))
    assert "'add' (Add)" in report.skipped["hidden"]


def test_outputs_are_kept_on_the_probe_only():
    # Unit 1 fires only where x0 > 3: dead on a probe without such rows, alive elsewhere.
    model = mlp()
    hidden = model.get_layer("hidden")
    kernel, bias = weights(hidden)
    kernel[:, DEAD] = [1, 0, 0, 0, 0, 0]
    bias[DEAD] = -3.0
    hidden.set_weights([kernel, bias])
    probe = INPUTS[INPUTS[:, 0] < 3]
    held_out = np.random.default_rng(6).normal(size=(64, 6)).astype("float32")
    held_out[:8, 0] = 4.0  # Here unit 1 outputs 1.
    on_probe, elsewhere = model.predict(probe, verbose=0), model.predict(held_out, verbose=0)

    assert diagnostics.revive_dead_units(model, probe, seed=0).units == {"hidden": [DEAD]}

    # Exactly kept on the probe: the unit's outputs there were 0.
    np.testing.assert_array_equal(model.predict(probe, verbose=0), on_probe)
    # Moved on held-out rows where it was alive: its outgoing weights are now 0.
    moved = np.abs(model.predict(held_out, verbose=0) - elsewhere).max(axis=1)
    assert np.all(moved[:8] > 0.01)
    head_row = np.abs(weights(model.get_layer("head"))[0][DEAD])
    assert head_row.max() == 0.0
