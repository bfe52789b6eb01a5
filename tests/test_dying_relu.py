"""The dying-ReLU study (examples/dying_relu.py) end to end on tiny synthetic data.

Both parts run at toy sizes in seconds: files written, a second run skips them, a
run with other sizes is refused, the report and `resistance.json` are rebuilt, and
`DeadUnitMonitor` warns when a large negative bias has killed the ReLUs.
"""

import json
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

import dying_relu  # noqa: E402
from dying import born_dead  # noqa: E402
from dying import report  # noqa: E402
from dying import trained  # noqa: E402

TINY = {
    "born_dead": {
        "runs": 6,
        "init_runs": 8,
        "points": 16,
        "steps": 20,
        "learning_rate": 3e-3,
        "seed": 0,
        "widths": [2],
        "depths": [2, 3],
        "train_widths": [2],
        "train_depths": [3],
    },
    "trained": {
        "train_images": 48,
        "test_images": 24,
        "epochs": 1,
        "batch_size": 16,
        "optimizer": "adam",
        "momentum": 0.9,
        "probe_images": 24,
        "learning_rates": [0.1],
        "seeds": [0],
    },
}
VARIANTS = "relu,leaky_relu"


def _synthetic_cifar(*args):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(96, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(96) % 10
    return (images[:64], labels[:64]), (images[64:], labels[64:])


@pytest.fixture
def study(tmp_path, monkeypatch):
    monkeypatch.setattr(dying_relu.data_lib, "load", _synthetic_cifar)
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    out = tmp_path / "results"
    args = ["--config", str(config), "--out", str(out), "--variants", VARIANTS]
    return out, args, tmp_path


def test_both_parts_write_results_a_report_and_resume(study, monkeypatch):
    out, args, tmp_path = study
    markdown = tmp_path / "DYING_RELU.md"
    markdown.write_text(f"# Hand-written\n\nKept.\n{report.PREFACE_END}\nold report\n")
    assert dying_relu.main([*args, "--markdown", str(markdown)]) == 0
    born = sorted(p.name for p in (out / "born_dead").glob("*.json"))
    assert born == [f"{v}_w2_d{d}.json" for v in ("leaky_relu", "relu") for d in (2, 3)]
    relu_deep = json.loads((out / "born_dead" / "relu_w2_d3.json").read_text())
    assert len(relu_deep["per_run_collapsed"]) == 6 and "collapsed" in relu_deep
    assert "collapsed" not in json.loads((out / "born_dead" / "relu_w2_d2.json").read_text())
    runs = sorted(p.name for p in (out / "trained").glob("*.json"))
    assert runs == ["leaky_relu_lr0.1_seed0.json", "relu_lr0.1_seed0.json"]
    run = json.loads((out / "trained" / "relu_lr0.1_seed0.json").read_text())
    assert {"dead_fraction/act1", "inactive_fraction/act3", "val_accuracy"} <= set(run["history"])
    assert len(run["inactive_units_by_epoch"]) == 2  # Before training and after epoch 1.
    resistance = json.loads((out / "resistance.json").read_text())
    assert list(resistance) == ["relu", "leaky_relu"]
    assert all(isinstance(row["summary"], str) and row["summary"] for row in resistance.values())
    assert resistance["relu"]["learning_rates"] == [0.1]
    for name in ("collapse_vs_depth", "born_dead_vs_depth", "dead_vs_epoch", "final_dead_vs_lr"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 0
    text = markdown.read_text()
    assert text.startswith("# Hand-written\n\nKept.\n") and "old report" not in text
    assert "## Born dead" in text and "## Trained to death" in text
    assert "](results/plots/dead_vs_epoch.png)" in text

    # A second run finds every result and trains nothing.
    def refuse(*args, **kwargs):
        raise AssertionError("retrained a finished result")

    monkeypatch.setattr(born_dead, "run_point", refuse)
    monkeypatch.setattr(trained, "train_run", refuse)
    assert dying_relu.main(args) == 0


def test_the_cures_part_writes_results_a_report_and_resumes(study, monkeypatch):
    out, args, tmp_path = study
    tiny = {
        **TINY,
        "cures": {
            **TINY["trained"],
            "arms": ["relu", "revive", "clipnorm", "schedule", "guard", "lamb", "prelu"],
            "relu_seeds": [0],
            "clipnorm": 1.0,
            "clipnorm_healthy_lr": 0.1,
        },
    }
    config = tmp_path / "cures.json"
    config.write_text(json.dumps(tiny))
    markdown = tmp_path / "DYING_RELU.md"
    assert (
        dying_relu.main(
            [*args, "--part", "cures", "--config", str(config), "--markdown", str(markdown)]
        )
        == 0
    )
    runs = sorted(p.name for p in (out / "cures").glob("*.json"))
    assert runs == [
        f"{a}_lr0.1_seed0.json"
        for a in ("clipnorm", "guard", "lamb", "prelu", "relu", "revive", "schedule")
    ]
    revive = json.loads((out / "cures" / "revive_lr0.1_seed0.json").read_text())
    assert revive["cure"]["every_n_batches"] > 0 and revive["recycled_units"] == 0  # 3 batches.
    clipped = json.loads((out / "cures" / "clipnorm_lr0.1_seed0.json").read_text())
    assert clipped["cure"] == {"arm": "clipnorm", "clipnorm": 1.0}
    guarded = json.loads((out / "cures" / "guard_lr0.1_seed0.json").read_text())
    assert guarded["cure"]["max_update_ratio"] == 0.05 and guarded["guard"]["measurements"] > 0
    assert all(low["learning_rate"] < 0.1 for low in guarded["guard"]["lowerings"])
    assert (out / "plots" / "cures.png").stat().st_size > 0
    text = markdown.read_text()
    assert "## Cures" in text and "ReLU + clipnorm" in text and "PReLU (swapped in)" in text
    assert "ReLU + ReduceLROnHighUpdateRatio" in text and "keras.optimizers.Lamb" in text

    def refuse(*args, **kwargs):
        raise AssertionError("retrained a finished result")

    monkeypatch.setattr(trained, "train_run", refuse)
    assert dying_relu.main([*args, "--part", "cures", "--config", str(config)]) == 0


def test_results_made_with_other_sizes_are_not_mixed(study, capsys):
    out, args, tmp_path = study
    assert dying_relu.main([*args, "--part", "born_dead"]) == 0
    other = json.loads(json.dumps(TINY))
    other["born_dead"]["steps"] = 30
    config = tmp_path / "other.json"
    config.write_text(json.dumps(other))
    assert dying_relu.main([*args, "--part", "born_dead", "--config", str(config)]) == 2
    assert "use another --out" in capsys.readouterr().err


def test_vectorized_networks_are_independent_and_paired():
    config = {"runs": 16, "points": 16, "steps": 10, "learning_rate": 1e-2, "seed": 3}
    alone = born_dead.run_point(("relu",), 2, 5, config)
    together = born_dead.run_point(("leaky_relu", "relu", "prelu"), 2, 5, config)
    # Same initial weights per run index, whatever else shares the model.
    assert alone["relu"]["per_run_born_dead"] == together["relu"]["per_run_born_dead"]
    assert alone["relu"]["per_run_collapsed"] == together["relu"]["per_run_collapsed"]
    # A ReLU network with a layer stuck below 0 is a constant function.
    assert alone["relu"]["born_dead"] == alone["relu"]["constant_at_init"] > 0
    # Leaky ReLU never outputs a constant from the same weights.
    assert together["leaky_relu"]["constant_at_init"] == 0.0


def test_dead_unit_monitor_warns_when_a_negative_bias_killed_the_relus():
    config = {**TINY["trained"], "initial_bias": -3.0}
    config.pop("learning_rates"), config.pop("seeds")
    result = trained.train_run("relu", 1e-3, 0, _synthetic_cifar(), config)
    assert result["dead_unit_warnings"], result["history"]
    assert result["dead_unit_warnings"][0].startswith("Epoch 1: dead units above 20% in ")
    assert result["history"]["dead_fraction"][-1] > trained.WARN_ABOVE
    # Leaky ReLU keeps those units (not dead) but the inactive fraction shows them.
    leaky = trained.train_run("leaky_relu", 1e-3, 0, _synthetic_cifar(), config)
    assert leaky["dead_unit_warnings"] == [] and leaky["history"]["dead_fraction"][-1] == 0.0
    assert leaky["history"]["inactive_fraction"][-1] > trained.WARN_ABOVE


def test_rai_kernels_per_network_and_the_paper_s_rows_with_bias():
    kernels = born_dead.rai_kernels(runs=5, fan_in=6, units=3, seed=0)
    assert kernels.shape == (5, 6, 3)
    np.testing.assert_array_equal(kernels, born_dead.rai_kernels(5, 6, 3, seed=0))  # Seeded.
    assert np.all(kernels.max(axis=1) > 0)  # Every network's unit has a positive weight.
    rng = np.random.default_rng(0)
    kernel, bias = born_dead.rai_row_weights(rng, runs=400, fan_in=3, units=2)
    assert kernel.shape == (400, 3, 2) and bias.shape == (400, 2)
    rows = np.concatenate([kernel.transpose(0, 2, 1), bias[..., None]], axis=-1)
    # The positive entry may be the bias: about 1 in fan_in + 1 rows have it there.
    bias_is_largest = np.argmax(rows, axis=-1) == 3
    assert 0.15 < bias_is_largest.mean() < 0.4


def test_rai_arms_are_born_dead_less_than_he_and_crelu_runs_alone():
    config = {"runs": 300, "points": 16, "steps": 10, "learning_rate": 1e-2, "seed": 3}
    result = born_dead.run_point(("relu", "relu_rai", "relu_rai_row"), 2, 8, config, train=False)
    assert result["relu_rai"]["born_dead"] < result["relu"]["born_dead"] / 2
    assert result["relu_rai_row"]["born_dead"] < result["relu"]["born_dead"] / 2
    # The He arm is the plain variant's own draw: unchanged by the RAI arms beside it.
    alone = born_dead.run_point(("relu",), 2, 8, config, train=False)
    assert alone["relu"]["born_dead"] == result["relu"]["born_dead"]
    crelu = born_dead.run_point(("crelu",), 2, 4, {**config, "runs": 8}, train=True)
    assert crelu["crelu"]["constant_at_init"] == 0.0  # CReLU keeps both signs.
    with pytest.raises(ValueError, match="alone"):
        born_dead.run_point(("relu", "crelu"), 2, 4, config, train=False)


# --- The command line's errors (issue 27): one line naming what is wrong, no traceback.


def _argument_error(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        dying_relu.main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    return exited.value.code, lines[-1]


def _with(part, **changes):
    config = json.loads(json.dumps(TINY))
    config[part].update(changes)
    return config


@pytest.mark.parametrize(
    "content,expected",
    [
        (None, "cannot read {path}: No such file or directory"),
        ('{"born_dead": {', "{path} is not valid JSON: Expecting property name enclosed"),
        ("[1, 2]", "{path} must hold a JSON object of parts"),
        (json.dumps({"born": {}}), "{path}: ['born']: not a part; the parts: "),
        (
            json.dumps(_with("trained", epoch=1)),
            "{path}: ['trained'] must have the keys ['batch_size', ",
        ),
        (
            json.dumps({"trained": {k: v for k, v in TINY["trained"].items() if k != "seeds"}}),
            "missing keys ['seeds']",
        ),
        (
            json.dumps(_with("trained", epochs=0)),
            "{path}: ['trained']['epochs'] must be an integer >= 1. Received: epochs=0",
        ),
        (
            json.dumps(_with("trained", batch_size="16")),
            "['trained']['batch_size'] must be an integer. Received: batch_size='16'",
        ),
        (
            json.dumps(_with("trained", learning_rates=[0.1, -1])),
            "['learning_rates'] must be a list of a number > 0. Received: learning_rates=[0.1, -1]",
        ),
        (
            json.dumps(_with("trained", seeds=0)),
            "['trained']['seeds'] must be a list. Received: seeds=0",
        ),
        (
            json.dumps(_with("trained", optimizer="adamw")),
            "['optimizer'] must be one of ['adam', 'sgd']. Received: optimizer='adamw'",
        ),
        (
            json.dumps(_with("born_dead", learning_rate=float("nan"))),
            "['learning_rate'] must be a finite number. Received: learning_rate=nan",
        ),
    ],
)
def test_a_bad_config_is_one_line_naming_the_file(study, capsys, content, expected):
    out, args, tmp_path = study
    config = tmp_path / "bad.json"
    if content is not None:
        config.write_text(content)
    code, error = _argument_error([*args, "--config", str(config)], capsys)
    assert code == 2
    assert ": error: argument --config: " in error, error  # argparse's prefix.
    assert expected.format(path=config) in error
    assert not out.exists()


def test_a_config_without_the_part_asked_for_is_refused(study, capsys):
    out, args, tmp_path = study
    code, error = _argument_error([*args, "--part", "gradients"], capsys)
    assert code == 2
    assert "has no ['gradients'] sizes, which --part gradients needs" in error


@pytest.mark.parametrize("below", ["", "results"])
def test_an_out_that_is_a_file_is_refused(study, capsys, below):
    out, args, tmp_path = study
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    code, error = _argument_error([*args, "--out", str(afile / below)], capsys)
    assert code == 2 and f"argument --out: must be a folder, and {afile} is a file" in error


def test_a_damaged_result_file_is_named_on_a_rerun_and_the_report(study, capsys):
    out, args, tmp_path = study
    born = [*args, "--part", "born_dead"]
    assert dying_relu.main(born) == 0
    damaged = out / "born_dead" / "relu_w2_d3.json"
    whole = damaged.read_text()
    capsys.readouterr()
    for content in (whole[: len(whole) // 2], "[]", json.dumps({"variant": "relu"})):
        damaged.write_text(content)
        for argv in (born, [*args, "--report-only"]):
            assert dying_relu.main(argv) == 2
            error = capsys.readouterr().err
            assert error.startswith(f"error: {damaged} is not a finished result (")
            assert error.endswith("; delete it to rerun that result.\n") and error.count("\n") == 1
    damaged.unlink()  # As the message says: the rerun makes it again.
    assert dying_relu.main(born) == 0
    assert json.loads(damaged.read_text())["config"] == json.loads(whole)["config"]


def test_a_report_of_no_results_does_not_replace_a_markdown_report(study, capsys):
    out, args, tmp_path = study
    markdown = tmp_path / "DYING_RELU.md"
    markdown.write_text(f"# Kept\n{report.PREFACE_END}\n## Born dead\n\nthe committed tables\n")
    before = markdown.read_text()
    assert dying_relu.main([*args, "--report-only", "--markdown", str(markdown)]) == 2
    assert "holds no results" in capsys.readouterr().err
    assert markdown.read_text() == before


def test_ctrl_c_during_training_exits_130_and_the_same_command_resumes(study, capsys, monkeypatch):
    out, args, tmp_path = study
    argv = [*args, "--part", "trained"]
    ended = []
    original = trained.InactiveUnits.on_epoch_end

    def pressed_during_the_second_run(self, epoch, logs=None):
        ended.append(epoch)
        if len(ended) == 2:
            raise KeyboardInterrupt
        original(self, epoch, logs)

    with monkeypatch.context() as patch:
        patch.setattr(trained.InactiveUnits, "on_epoch_end", pressed_during_the_second_run)
        assert dying_relu.main(argv) == 130
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines()[-1] == "interrupted; rerun the same command to resume"
    assert "Traceback" not in captured.err
    finished = sorted(p.name for p in (out / "trained").iterdir())
    assert finished == ["relu_lr0.1_seed0.json"]  # The first, whole; not the second.

    runs = []
    original_run = trained.train_run
    monkeypatch.setattr(
        trained, "train_run", lambda *a, **k: runs.append(a[0]) or original_run(*a, **k)
    )
    assert dying_relu.main(argv) == 0
    assert runs == ["leaky_relu"]  # Only the interrupted run is trained again.
    assert len(list((out / "trained").glob("*.json"))) == 2


def test_the_schedule_is_sized_to_runs_of_any_length():
    for total in (1, 2, 4, 7, 40):
        schedule = trained.warmup_cosine(0.01, total)
        warmup = max(1, total // 4)  # One epoch of the study's four.

        def rate(step, schedule=schedule):
            return float(keras.ops.convert_to_numpy(schedule(step)))

        assert rate(0) == 0.0
        np.testing.assert_allclose(rate(warmup), 0.01, rtol=1e-5)  # The peak, after warm-up.
        if total > warmup:  # Then cosine decay, to 0 at the end of the run.
            np.testing.assert_allclose(rate(total), 0.0, atol=1e-8)
        if total - warmup > 1:
            assert 0.0 < rate(warmup + (total - warmup) // 2) < 0.01


def test_the_gradients_part_runs_for_one_epoch_with_the_schedule(study, tmp_path):
    out, args, _ = study
    config = tmp_path / "gradients.json"
    gradients_config = {
        **{k: TINY["trained"][k] for k in ("train_images", "test_images", "epochs")},
        **{k: TINY["trained"][k] for k in ("batch_size", "optimizer", "momentum")},
        "probe_images": 24,
        "gradient_probe_images": 16,
        "accuracy_images": 16,
        "every": 2,
        "learning_rates": [0.01],
        "seeds": [0],
        "remedies": ["schedule"],
        "remedy_variant": "relu",
        "remedy_learning_rate": 0.01,
    }
    assert gradients_config["epochs"] == 1
    config.write_text(json.dumps({"gradients": gradients_config}))
    argv = [*args, "--part", "gradients", "--variants", "relu", "--config", str(config)]
    assert dying_relu.main(argv) == 0
    files = sorted(p.name for p in (out / "gradients").glob("*.json"))
    assert files == ["relu_lr0.01_seed0.json", "relu_lr0.01_seed0_schedule.json"]
