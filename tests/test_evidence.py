"""Evidence a reader can rerun: probes that represent the data, provenance, `--verify`.

On small synthetic data stored class by class (as CIFAR-10 is), whose images carry their
class in one pixel: every probe the examples build (the study's parts, the cures'
`ReviveDeadUnits`, the CIFAR-10 example's `DeadUnitMonitor`) is captured where the
part hands it to the package and must hold every class. Every result file records what
produced it, and `dying_relu.py --verify` passes on a rerun and fails on a tampered
figure or another backend.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

import dying_relu  # noqa: E402
from cifar10 import train  # noqa: E402
from dying import cures  # noqa: E402
from dying import gradients  # noqa: E402
from dying import trained  # noqa: E402

from keras_relu import diagnostics  # noqa: E402

CLASSES = 10
MARK = 20  # The class's mark in pixel (0, 0, 0): class * MARK.


def _ordered(count, seed):
    """`count` images, class by class (the first tenth all class 0), marked with their class."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(CLASSES), count // CLASSES)
    images = rng.integers(0, 256, size=(len(labels), 32, 32, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = labels * MARK
    return images, labels


def _classes(images):
    return set((np.asarray(images)[:, 0, 0, 0] / MARK).round().astype(int).tolist())


def _synthetic_cifar(*args):
    return _ordered(300, 0), _ordered(100, 1)


TRAINED = {
    "train_images": 300,
    "test_images": 100,
    "epochs": 1,
    "batch_size": 100,
    "optimizer": "adam",
    "momentum": 0.9,
    "probe_images": 30,
}


@pytest.fixture
def probes(monkeypatch):
    """Records every probe handed to the package's monitors and reviver: `[(who, images)]`."""
    seen = []

    def recording(cls, who, take=lambda probe: probe):
        class Recording(cls):
            def __init__(self, probe, *args, **kwargs):
                seen.append((who, take(probe)))
                super().__init__(probe, *args, **kwargs)

        monkeypatch.setattr(diagnostics, cls.__name__, Recording)

    recording(diagnostics.DeadUnitMonitor, "DeadUnitMonitor")
    recording(diagnostics.ReviveDeadUnits, "ReviveDeadUnits")
    recording(diagnostics.GradientMonitor, "GradientMonitor", take=lambda probe: probe[0])
    original = gradients.EveryFewBatches

    class Accuracy(original):
        def __init__(self, every, dead_probe, accuracy_probe):
            seen.append(("accuracy probe", accuracy_probe[0]))
            super().__init__(every, dead_probe, accuracy_probe)

    monkeypatch.setattr(gradients, "EveryFewBatches", Accuracy)
    return seen


def _assert_every_class(seen, expected):
    assert sorted({who for who, _ in seen}) == sorted(expected)
    for who, images in seen:
        assert _classes(images) == set(range(CLASSES)), who


def test_the_study_s_probes_hold_every_class(probes):
    data = _synthetic_cifar()
    trained.train_run("relu", 1e-3, 0, data, TRAINED)
    config = {**TRAINED, "gradient_probe_images": 20, "accuracy_images": 20, "every": 2}
    gradients.gradient_run("relu", 1e-3, 0, data, config)
    cures.run_arm("revive", 1e-3, 0, data, TRAINED, clipnorm=1.0)
    _assert_every_class(
        probes, ["DeadUnitMonitor", "GradientMonitor", "ReviveDeadUnits", "accuracy probe"]
    )
    # The first rows of this data are one class: the check can fail.
    assert _classes(data[0][0][: TRAINED["probe_images"]]) == {0}


def test_the_cifar10_example_s_probe_holds_every_class(probes, tmp_path, monkeypatch):
    monkeypatch.setattr(train, "PROBE_SIZE", 40)
    (x_train, y_train), (x_test, y_test) = _synthetic_cifar()
    config = {"epochs": 1, "batch_size": 100, "peak_lr": 0.1, "momentum": 0.9, "weight_decay": 0}
    result = train.train_arm("relu", 0, ((x_train, y_train), (x_test[:20], y_test[:20])), config,
                             tmp_path, verbose=0)  # fmt: skip
    _assert_every_class(probes, ["DeadUnitMonitor"])
    assert len(probes[0][1]) == 40 and result["probe"] == "stratified, seed 0, 40 training images"
    stored = json.loads(train.run_path(tmp_path, "relu", 0).read_text())
    assert stored["provenance"]["config"] == config


def test_provenance_records_code_libraries_and_command(monkeypatch):
    record = train.provenance({"epochs": 1})
    git = record["git"]
    assert len(git["commit"]) == 40 and isinstance(git["clean"], bool)
    assert git["clean"] == (git["changed"] == [])
    assert record["backend"] == keras.config.backend()
    assert record["libraries"]["keras"] == keras.__version__
    assert record["libraries"]["numpy"] == np.__version__
    assert record["python"] == ".".join(map(str, sys.version_info[:3]))
    assert record["command"] == sys.argv and record["config"] == {"epochs": 1}

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert train.provenance()["git"] is None


@pytest.fixture
def study(tmp_path, monkeypatch):
    """The trained part's tiny cells: `(out, args)` after one run."""
    monkeypatch.setattr(dying_relu.data_lib, "load", _synthetic_cifar)
    config = tmp_path / "tiny.json"
    sizes = {**TRAINED, "learning_rates": [1e-3], "seeds": [0]}
    config.write_text(json.dumps({"trained": sizes}))
    out = tmp_path / "results"
    args = ["--part", "trained", "--config", str(config), "--out", str(out)]
    assert dying_relu.main([*args, "--variants", "relu,leaky_relu"]) == 0
    return out, args


def test_results_record_provenance_and_their_probe(study):
    out, _ = study
    result = json.loads((out / "trained" / "relu_lr0.001_seed0.json").read_text())
    assert result["config"]["probe"] == "stratified, seed 0, 30 training images"
    assert result["provenance"]["config"]["learning_rates"] == [1e-3]  # The part's config.
    assert result["provenance"]["backend"] == keras.config.backend()


def test_a_result_measured_with_another_probe_is_rerun(study, capsys):
    out, args = study
    path = out / "trained" / "relu_lr0.001_seed0.json"
    old = json.loads(path.read_text())
    del old["config"]["probe"]  # As written before the probe was recorded.
    old["test_accuracy"] = -1.0
    path.write_text(json.dumps(old))
    assert dying_relu.main([*args, "--variants", "relu"]) == 0
    assert "no recorded protocol" in capsys.readouterr().out
    rerun = json.loads(path.read_text())
    assert rerun["config"]["probe"] and rerun["test_accuracy"] >= 0


def _verify(out, *extra):
    return dying_relu.main(
        ["--verify", "--part", "trained", "--out", str(out), "--data-dir", "unused", *extra]
    )


def test_verify_reproduces_the_stored_cells(study, capsys):
    out, _ = study
    assert _verify(out) == 0
    printed = capsys.readouterr().out
    assert "trained/relu_lr0.001_seed0" in printed and "trained/leaky_relu_lr0.001_seed0" in printed
    assert "2 of 2 cells reproduced" in printed and "DIFFERS" not in printed


def test_verify_fails_on_a_tampered_figure_naming_it(study, tmp_path, capsys):
    out, _ = study
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    path = copy / "trained" / "relu_lr0.001_seed0.json"
    result = json.loads(path.read_text())
    result["history"]["dead_fraction"][-1] += 1e-4
    result["provenance"]["libraries"]["keras"] = "0.0.0"
    path.write_text(json.dumps(result))
    assert _verify(copy, "--cells", "relu_*") == 1
    printed = capsys.readouterr().out
    assert "trained/relu_lr0.001_seed0" in printed and "DIFFERS: 1" in printed
    last = len(result["history"]["dead_fraction"]) - 1
    assert f"history.dead_fraction[{last}]: stored" in printed
    assert f"provenance: keras 0.0.0 -> {keras.__version__}" in printed
    assert "0 of 1 cells reproduced" in printed
    assert _verify(copy, "--cells", "relu_*", "--tolerance", "1e-3") == 0  # Within it.


def test_verify_refuses_another_backend_and_unknown_cells(study, capsys):
    out, _ = study
    path = out / "trained" / "relu_lr0.001_seed0.json"
    result = json.loads(path.read_text())
    other = "torch" if keras.config.backend() != "torch" else "jax"
    result["backend"] = other
    path.write_text(json.dumps(result))
    assert _verify(out, "--cells", "relu_*") == 1
    assert f"REFUSED: made on {other}" in capsys.readouterr().out
    assert _verify(out, "--cells", "gelu_*") == 2
    assert "no results of trained match 'gelu_*'" in capsys.readouterr().err


def test_the_comparison_report_says_which_probe_its_dead_unit_figures_came_from(tmp_path):
    from cifar10 import report

    old, new = {}, {"probe": train.describe_probe(512)}
    assert report._probe_note([new], tmp_path) == "on stratified, seed 0, 512 training images"
    assert report._probe_note([old, new], tmp_path).startswith("measured on one class (airplanes)")
    figures = {"dead_fraction": 0.0, "sparsity": 0.25}
    model = {"arm": "relu", "seed": 0, "stratified": figures, "airplanes": {"sparsity": 0.5}}
    measured = {"probe": new["probe"], "models": {"relu_seed0": model}}
    (tmp_path / "stratified_probe.json").write_text(json.dumps(measured))
    note = report._probe_note([old], tmp_path)
    assert "relu seed 0 0.000 and 0.250 (0.500 on airplanes)" in note


def test_verify_reruns_a_cell_of_every_part(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(dying_relu.data_lib, "load", _synthetic_cifar)
    sizes = {
        "born_dead": {
            "runs": 4, "init_runs": 4, "points": 8, "steps": 10, "learning_rate": 3e-3,
            "seed": 0, "widths": [2], "depths": [3], "train_widths": [2], "train_depths": [3],
        },
        "trained": {**TRAINED, "learning_rates": [1e-3], "seeds": [0]},
        "cures": {
            **TRAINED, "learning_rates": [1e-3], "seeds": [0], "arms": ["revive", "clipnorm"],
            "relu_seeds": [], "clipnorm": 1.0, "clipnorm_healthy_lr": 1e-3,
        },
        "gradients": {
            **TRAINED, "gradient_probe_images": 20, "accuracy_images": 20, "every": 2,
            "learning_rates": [1e-3], "seeds": [0], "remedies": ["clipnorm"],
            "remedy_variant": "relu", "remedy_learning_rate": 1e-3,
        },
    }  # fmt: skip
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(sizes))
    out = tmp_path / "results"
    args = ["--config", str(config), "--out", str(out), "--variants", "relu"]
    for part in ("all", "gradients"):  # "all" is born_dead, trained and cures.
        assert dying_relu.main([*args, "--part", part]) == 0
    capsys.readouterr()
    verify = ["--verify", "--part", "all", "--out", str(out), "--data-dir", "unused"]
    assert dying_relu.main(verify) == 0
    printed = capsys.readouterr().out
    for cell in (
        "born_dead/relu_w2_d3",
        "trained/relu_lr0.001_seed0",
        "cures/revive_lr0.001_seed0",
        "cures/clipnorm_lr0.001_seed0",
        "gradients/relu_lr0.001_seed0 ",
        "gradients/relu_lr0.001_seed0_clipnorm",
    ):
        assert cell in printed
    assert "6 of 6 cells reproduced" in printed
