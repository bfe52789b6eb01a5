"""`diagnostics.sample_probe` and `probe_rows`: random, seeded, stratified by class."""

import numpy as np
import pytest

from keras_relu import diagnostics


def ordered_labels(per_class=100, classes=10):
    return np.repeat(np.arange(classes), per_class)  # Class by class, as CIFAR-10 is stored.


def test_stratified_probe_takes_each_class_in_proportion():
    labels = ordered_labels()
    rows = diagnostics.probe_rows(len(labels), 50, labels=labels, seed=3)
    assert len(set(rows.tolist())) == 50
    np.testing.assert_array_equal(np.bincount(labels[rows], minlength=10), [5] * 10)


def test_unequal_classes_get_shares_that_add_up():
    labels = np.array([0] * 70 + [1] * 20 + [2] * 10)
    rows = diagnostics.probe_rows(100, 9, labels=labels, seed=0)
    counts = np.bincount(labels[rows], minlength=3)
    assert counts.sum() == 9
    np.testing.assert_array_equal(np.sort(counts), [1, 2, 6])  # 6.3, 1.8, 0.9 rounded.


def test_same_seed_same_rows_other_seed_other_rows():
    labels = ordered_labels()
    first = diagnostics.probe_rows(1000, 64, labels=labels, seed=1)
    np.testing.assert_array_equal(first, diagnostics.probe_rows(1000, 64, labels=labels, seed=1))
    assert set(first.tolist()) != set(diagnostics.probe_rows(1000, 64, labels=labels, seed=2))


def test_unlabelled_probe_is_not_the_first_rows():
    rows = diagnostics.probe_rows(1000, 100, seed=0)
    assert len(set(rows.tolist())) == 100
    assert rows.max() > 500  # The first 100 rows would be one class of ordered data.


def test_sample_probe_keeps_structure_and_one_hot_labels():
    labels = ordered_labels(per_class=4, classes=5)
    x = {"a": np.arange(20.0), "b": np.arange(40.0).reshape(20, 2)}
    one_hot = np.eye(5)[labels]
    probe, probe_labels = diagnostics.sample_probe(x, 5, labels=one_hot, seed=0)
    np.testing.assert_array_equal(probe["b"][:, 0], 2 * probe["a"])
    assert sorted(probe_labels.argmax(axis=1).tolist()) == [0, 1, 2, 3, 4]
    assert diagnostics.sample_probe(np.zeros((7, 3)), 2).shape == (2, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, "`size` must be between 1"),
        ({"size": 11}, "`size` must be between 1"),
        ({"size": 2.5}, "`size` must be an integer"),
        ({"size": 2, "labels": np.zeros(3)}, "`labels` must have one entry per row"),
        ({"size": 2, "seed": -1}, "`seed` must be in"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, message):
    with pytest.raises(ValueError, match=message):
        diagnostics.sample_probe(np.zeros((10, 2)), **kwargs)


def test_arrays_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="different numbers of rows"):
        diagnostics.sample_probe((np.zeros(4), np.zeros(5)), 2)
