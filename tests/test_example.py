"""The CIFAR-10 example end to end, on a few dozen images it writes itself.

Both on-disk layouts the example reads are made in `tmp_path`: the CIFAR-10 python
batches (`cifar-10-batches-py`) and `train/<class>/*.jpg` folders. The run must write
its table, plots and models, the models must load back, and a second run must skip
what is done.
"""

import csv
import hashlib
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

import cifar10_compare  # noqa: E402
import finetune_swap  # noqa: E402
from cifar10 import cli  # noqa: E402
from cifar10 import data as data_lib  # noqa: E402
from cifar10 import model as model_lib  # noqa: E402
from cifar10 import report  # noqa: E402
from cifar10 import train  # noqa: E402

PIL = pytest.importorskip("PIL.Image", reason="the JPEG layout is written with Pillow")

PER_CLASS = {"train": 3, "test": 1}  # 30 training and 10 test images.


def _images(split, seed):
    rng = np.random.default_rng(seed)
    count = PER_CLASS[split] * len(data_lib.CLASSES)
    # Smooth images (a colour and a ramp), which JPEG keeps close to the original.
    colours = rng.integers(40, 216, size=(count, 1, 1, 3))
    ramp = np.linspace(-30, 30, 32).reshape(1, 32, 1, 1)
    images = np.broadcast_to(colours + ramp, (count, 32, 32, 3)).round().astype(np.uint8)
    labels = np.repeat(np.arange(len(data_lib.CLASSES)), PER_CLASS[split])
    return images, labels


def _write_pickles(root):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    x, y = _images("train", 0)
    for index, rows in enumerate(np.array_split(np.arange(len(x)), 5), start=1):
        _write_batch(folder / f"data_batch_{index}", x[rows], y[rows])
    _write_batch(folder / "test_batch", *_images("test", 1))
    return root


def _write_batch(path, images, labels):
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # channels first, as CIFAR
    with open(path, "wb") as file:
        pickle.dump({b"data": rows, b"labels": labels.tolist()}, file)


def _write_jpegs(root):
    for split, seed in (("train", 0), ("test", 1)):
        images, labels = _images(split, seed)
        for index, (image, label) in enumerate(zip(images, labels, strict=True)):
            folder = root / split / data_lib.CLASSES[label]
            folder.mkdir(parents=True, exist_ok=True)
            PIL.fromarray(image).save(folder / f"{index:04d}.jpg", quality=95)
    return root


def test_both_layouts_decode_to_the_same_arrays(tmp_path):
    pickles = data_lib.load(_write_pickles(tmp_path / "py"), tmp_path / "cache")
    jpegs = data_lib.load(_write_jpegs(tmp_path / "jpg"), tmp_path / "cache")
    for (x_py, y_py), (x_jpg, y_jpg), split in zip(pickles, jpegs, ("train", "test"), strict=True):
        expected_x, expected_y = _images(split, 0 if split == "train" else 1)
        np.testing.assert_array_equal(x_py, expected_x)
        np.testing.assert_array_equal(y_py, expected_y)
        np.testing.assert_array_equal(y_jpg, expected_y)
        assert x_jpg.shape == expected_x.shape and x_jpg.dtype == np.uint8
        assert np.abs(x_jpg.astype(int) - expected_x).mean() < 3  # JPEG is lossy.


@pytest.mark.parametrize("layout", ["pickles", "jpegs"])
def test_example_runs_end_to_end_and_resumes(tmp_path, layout, capsys):
    writer = _write_pickles if layout == "pickles" else _write_jpegs
    data_dir = writer(tmp_path / "data")
    out = tmp_path / "out"
    arms = ["relu", "crelu_half"]
    argv = [
        "--data-dir", str(data_dir),
        "--cache-dir", str(tmp_path / "cache"),
        "--out", str(out),
        "--variants", ",".join(arms),
        "--epochs", "1",
        "--batch-size", "16",
        "--seeds", "0",
    ]  # fmt: skip
    assert cifar10_compare.main(argv) == 0

    with open(out / "results.csv") as file:
        rows = {row["arm"]: row for row in csv.DictReader(file)}
    assert set(rows) == set(arms)
    markdown = (out / "results.md").read_text()
    for arm in arms:
        assert arm in markdown
        run = json.loads((out / "runs" / f"{arm}_seed0.json").read_text())
        assert run["config"]["train_images"] == 30 and run["config"]["test_images"] == 10
        assert len(run["history"]["val_accuracy"]) == 1
        assert 0 <= run["history"]["dead_fraction"][0] <= 1
        model = keras.saving.load_model(out / "models" / f"{arm}.keras", safe_mode=True)
        assert model.count_params() == int(rows[arm]["params"]) + _non_trainable(model)
        assert model.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0).shape == (2, 10)
    for plot in ("val_accuracy", "dead_fraction", "activations"):
        assert (out / "plots" / f"{plot}.png").stat().st_size > 1000
    assert "different machines" not in markdown  # Both runs were made here.

    # Half filters keep CReLU's parameter count close to ReLU's (the paper's comparison).
    assert 0.5 < int(rows["crelu_half"]["params"]) / int(rows["relu"]["params"]) < 1.5

    before = {p: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    capsys.readouterr()
    assert cifar10_compare.main(argv) == 0
    assert "done already, skipped" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").iterdir()} == before

    # --report-only rewrites a Markdown file below its hand-written preface, every time.
    results = tmp_path / "RESULTS.md"
    preface = f"# How these runs were made\n\nBy hand.\n\n{report.PREFACE_END}"
    results.write_text(preface + "\n\nan old report")
    report_argv = ["--report-only", "--out", str(out), "--markdown", str(results)]
    for _ in range(2):
        assert cifar10_compare.main(report_argv) == 0
        text = results.read_text()
        assert text.startswith(preface + "\n\n# CIFAR-10") and text.count(preface) == 1
        assert "an old report" not in text and "crelu_half" in text

    # A run from another machine makes s/epoch a comparison of machines too; the report says so.
    moved = out / "runs" / "relu_seed0.json"
    run = json.loads(moved.read_text())
    moved.write_text(json.dumps({**run, "machine": run["machine"] + " (another one)"}))
    assert cifar10_compare.main(report_argv) == 0
    assert "made on 2 different machines" in results.read_text()


def _non_trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)


def test_one_seed_gives_every_arm_the_same_batches(tmp_path, monkeypatch):
    # The report's per-seed gaps are paired only if this holds: the arms differ in
    # shapes, weights and random layers (RReLU), yet must see the same batches.
    batches = []
    original = train.AugmentedBatches.__getitem__

    def recording(self, index):
        images, labels = original(self, index)
        batches.append(hashlib.sha1(images.tobytes()).hexdigest())
        return images, labels

    monkeypatch.setattr(train.AugmentedBatches, "__getitem__", recording)
    data = (_images("train", 0), _images("test", 1))
    config = {"epochs": 2, "batch_size": 8, "peak_lr": 0.1, "momentum": 0.9, "weight_decay": 0.0}
    seen = {}
    for arm, seed in [("relu", 0), ("prelu", 0), ("rrelu", 0), ("crelu_half", 0), ("relu", 1)]:
        batches.clear()
        train.train_arm(arm, seed, data, config, tmp_path / f"{arm}{seed}", verbose=0)
        seen[arm, seed] = list(batches)
    assert len(seen["relu", 0]) >= 2 * 4  # two epochs of four batches
    for arm in ("prelu", "rrelu", "crelu_half"):
        assert seen[arm, 0] == seen["relu", 0], arm
    assert seen["relu", 1] != seen["relu", 0]


def test_a_missing_or_malformed_data_set_is_a_message_not_a_traceback(tmp_path, capsys):
    out = ["--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]
    assert cifar10_compare.main(["--data-dir", str(tmp_path / "absent"), *out]) == 2
    assert "no such file or folder" in capsys.readouterr().err

    broken = tmp_path / "broken" / "cifar-10-batches-py"
    broken.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (broken / name).write_bytes(b"not a pickle")
    assert cifar10_compare.main(["--data-dir", str(broken.parent), *out]) == 2
    assert "not a CIFAR-10 python batch" in capsys.readouterr().err


def test_every_arm_builds_with_its_declared_shapes():
    for name, arm in model_lib.ARMS.items():
        model = model_lib.build_model(name, seed=0)
        assert model.output.shape == (None, 10), name
        assert model_lib.multiply_adds(model) > 0
        if arm.variant == "crelu":
            # Every CReLU doubles its channels: the next conv reads twice its filters' width.
            conv = model.get_layer("block1_conv1")
            assert conv.kernel.shape[2] == 2 * int(model_lib.STEM_WIDTH * arm.width_factor)


FULL = {"epochs": 10, "batch_size": 128, "train_images": 50_000, "test_images": 10_000}


@pytest.mark.parametrize(
    "changes,reason",
    [
        ({}, None),
        ({"epochs": 5}, "5 of 10 epochs"),
        (
            {"train_images": 5000, "test_images": 1000},
            "5,000 of 50,000 training images, 1,000 of 10,000 test images",
        ),
    ],
)
def test_fewer_images_or_epochs_than_the_full_protocol_make_a_smoke_run(changes, reason):
    runs = [{"config": FULL}, {"config": {**FULL, **changes}}]
    assert report.smoke_run_reason(runs) == reason
    assert report.smoke_run_reason(runs[:1]) is None


# TensorFlow's C++ logs, as TF 2.21 prints them when not muted (tests below check the pattern):
# "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
# "I0000 00:00:1796300939.555743    6662 cudart_stub.cc:31] Could not find cuda drivers ...",
# "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow ...",
# "oneDNN custom operations are on. You may see slightly different numerical results ...".
C_LOG_LINE = re.compile(
    r"^[IWEF]\d{4} |absl::InitializeLog|oneDNN custom operations|cuda drivers|cuInit"
    r"|rebuild TensorFlow with the appropriate compiler flags|cpu_feature_guard"
)


def test_quick_mode_is_a_readable_smoke_run_without_verdicts(tmp_path):
    # As a user runs it: a new process, output to a pipe (a line per epoch), on the
    # 30-image data set, with two arms and 2 epochs to stay fast.
    out = tmp_path / "out"
    command = [
        sys.executable,
        str(EXAMPLES / "cifar10_compare.py"),
        "--quick",
        "--variants", "relu,gelu",  # A published claim, "gelu > relu", could get a verdict.
        "--epochs", "2",
        "--batch-size", "16",
        "--data-dir", str(_write_pickles(tmp_path / "data")),
        "--cache-dir", str(tmp_path / "cache"),
        "--out", str(out),
    ]  # fmt: skip
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = (done.stdout + done.stderr).splitlines()
    assert max(len(line) for line in lines) <= 200, max(lines, key=len)
    # TensorFlow is installed, so it logs on every backend (JAX's and torch's data adapters use it).
    assert not [line for line in lines if C_LOG_LINE.search(line)], done.stderr[-3000:]

    arms = ["relu", "gelu"]
    epoch_lines = [line for line in done.stdout.splitlines() if " - val_accuracy: " in line]
    assert len(epoch_lines) == 2 * len(arms)  # One line per epoch.
    for line in epoch_lines:
        assert " - loss: " in line and " - accuracy: " in line
        assert re.search(r" - dead \d+\.\d% - inactive \d+\.\d%$", line), line
        assert "dead_fraction" not in line and "sparsity" not in line  # No per-layer ones.
    assert "A smoke run (30 of 50,000 training images, 10 of 10,000 test images" in done.stdout

    # The per-layer figures are in the CSV log and the JSON, not lost.
    for arm in arms:
        with open(out / "logs" / f"{arm}_seed0.csv") as file:
            header = next(csv.reader(file))
        layer_keys = [key for key in header if key.startswith("dead_fraction/")]
        assert len(layer_keys) == 7, header  # The stem and six convolutions.
        history = json.loads((out / "runs" / f"{arm}_seed0.json").read_text())["history"]
        assert set(header) - {"epoch"} <= set(history)

    markdown = (out / "results.md").read_text()
    assert markdown.startswith("# CIFAR-10: the ReLU family compared (smoke run)")
    assert "**A smoke run**: 30 of 50,000 training images, 10 of 10,000 test images" in markdown
    assert "None for a smoke run" in markdown
    assert f"| Keras {keras.__version__}, " in markdown  # The Runs table names both versions.
    for verdict in ("agrees", "disagrees", "tie (gap", "needs two seeds", "gelu > relu"):
        assert verdict not in markdown, verdict


def test_progress_line_shows_the_overall_figures_only(capsys):
    logger = train.CompactProgbarLogger()
    logger.set_params({"verbose": 2, "epochs": 2, "steps": 1})
    per_layer = {f"{key}/re_lu_{i}": 0.5 for key in ("dead_fraction", "sparsity") for i in range(7)}
    logs = {"loss": 1.5, "accuracy": 0.25, "val_loss": 1.75, "val_accuracy": 0.375}
    logs |= {"dead_fraction": 0.125, "sparsity": 0.5, "epoch_seconds": 3.0, **per_layer}
    for extra in ({}, {"inactive_fraction": 0.0625}):  # DeadUnitMonitor's, where it has it
        logger.on_epoch_begin(0)
        logger.on_train_batch_end(0, {"loss": 1.5, "accuracy": 0.25})
        logger.on_epoch_end(0, {**logs, **extra})
        header, line = capsys.readouterr().out.splitlines()
        assert header == "Epoch 1/2"
        shown = re.findall(r" - (\w+): ", line)
        assert shown == ["loss", "accuracy", "val_accuracy"], line
        percentages = " - dead 12.5%" + (" - inactive 6.2%" if extra else "")
        assert line.endswith(percentages), line
        assert len(line) < 160, line


def test_c_log_pattern_catches_tensorflow_s_startup_lines():
    # The first three: what TensorFlow 2.21 prints here at import when not muted; the last: the
    # line it prints on CPUs where oneDNN is on, in its usual format.
    startup = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796300939.555743    6662 cudart_stub.cc:31] Could not find cuda drivers "
        "on your machine, GPU will not be used.",
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild "
        "TensorFlow with the appropriate compiler flags.",
        "2026-12-03 11:00:00.000000: I tensorflow/core/util/port.cc:153] oneDNN custom "
        "operations are on. You may see slightly different numerical results.",
    ]
    assert all(C_LOG_LINE.search(line) for line in startup)
    assert not C_LOG_LINE.search("Epoch 1/5")
    assert not C_LOG_LINE.search("relu, seed 0: test accuracy 52.90%.")


def test_runs_table_names_keras_and_the_backend_library_with_their_versions():
    run = {"arm": "relu", "seed": 0, "keras": "3.15.1", "backend": "tensorflow"}
    assert report.versions({**run, "backend_version": "2.21.0"}) == (
        "Keras 3.15.1, TensorFlow 2.21.0"
    )
    assert report.versions({**run, "backend": "torch", "backend_version": "2.13.0"}) == (
        "Keras 3.15.1, PyTorch 2.13.0"
    )
    assert report.versions(run) == "Keras 3.15.1, TensorFlow"  # Runs before it was recorded.
    backend_module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
    expected = __import__(backend_module[keras.config.backend()]).__version__
    assert train.backend_version() == expected


# --- The command lines' errors (issue 27): one line naming what is wrong, no traceback.


def _argument_error(main, argv, capsys):
    """The exit code and the message of a command line argparse refuses."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    error = capsys.readouterr().err.strip().splitlines()[-1]
    return exited.value.code, error


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["--epochs", "0"], "argument --epochs: must be an integer >= 1. Received: '0'"),
        (["--epochs", "-1"], "argument --epochs: must be an integer >= 1. Received: '-1'"),
        (["--batch-size", "0"], "argument --batch-size: must be an integer >= 1. Received: '0'"),
        (["--limit-train", "0"], "argument --limit-train: must be an integer >= 1."),
        (["--limit-test", "x"], "argument --limit-test: must be an integer >= 1."),
        (["--seeds", "a"], "argument --seeds: must be comma-separated integers >= 0"),
        (["--seeds", "0,-1"], "argument --seeds: must be comma-separated integers >= 0"),
        (["--quick", "--epochs", "0"], "argument --epochs: must be an integer >= 1."),
    ],
)
def test_bad_counts_and_seeds_are_refused_before_anything_runs(tmp_path, capsys, argv, expected):
    out = tmp_path / "out"
    code, error = _argument_error(cifar10_compare.main, [*argv, "--out", str(out)], capsys)
    assert code == 2 and expected in error, error
    assert not out.exists()  # No run file, no report: nothing to poison a later run.


@pytest.mark.parametrize("below", ["", "results"])
def test_an_out_that_is_a_file_is_refused(tmp_path, capsys, below):
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    out = afile / below if below else afile
    for main, argv in ((cifar10_compare.main, []), (finetune_swap.main, ["--report"])):
        code, error = _argument_error(main, [*argv, "--out", str(out)], capsys)
        assert code == 2, error
        assert f"argument --out: must be a folder, and {afile} is a file" in error
    assert afile.read_text() == "mine"


def _run_file(arm="relu", seed=0, **changes):
    """A run file as `train.train_arm` writes it, without the per-layer figures."""
    return {
        "arm": arm,
        "seed": seed,
        "config": {"epochs": 1, "batch_size": 16, "train_images": 30, "test_images": 10},
        "params": 10,
        "multiply_adds": 100,
        "test_accuracy": 0.5,
        "test_loss": 1.5,
        "train_seconds": 1.0,
        "history": {
            "val_accuracy": [0.5],
            "epoch_seconds": [1.0],
            "dead_fraction": [0.0],
            "sparsity": [0.5],
        },
        "command": "cifar10_compare.py",
        "backend": "jax",
        "keras": "3",
        "machine": "here",
        "finished": "now",
        **changes,
    }


@pytest.mark.parametrize(
    "content,reason",
    [
        (json.dumps(_run_file())[:200], "not valid JSON: "),  # Cut short by a full disk.
        ("", "not valid JSON: Expecting value at line 1 column 1"),
        ("[1, 2]", "not a JSON object"),
        # What `--epochs 0` used to write: the run trained nothing and has no history.
        (json.dumps(_run_file(history={})), "no 'history.val_accuracy'"),
        (json.dumps({k: v for k, v in _run_file().items() if k != "test_loss"}), "no 'test_loss'"),
    ],
)
def test_a_damaged_run_file_is_named_with_what_to_do(
    tmp_path, capsys, monkeypatch, content, reason
):
    out = tmp_path / "out"
    (out / "runs").mkdir(parents=True)
    train.write_json_atomically(out / "runs" / "gelu_seed0.json", _run_file("gelu"))
    damaged = out / "runs" / "relu_seed0.json"
    damaged.write_text(content)
    expected = f"error: {damaged} is not a finished result ({reason}"
    ending = "; delete it to retrain that arm."

    assert cifar10_compare.main(["--report-only", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(expected) and error.endswith(ending + "\n") and error.count("\n") == 1

    # A rerun names it before training anything, whichever arm it reaches first.
    def refuse(*args, **kwargs):
        raise AssertionError("trained with a damaged run file in the folder")

    monkeypatch.setattr(train, "train_arm", refuse)
    data_dir = _write_pickles(tmp_path / "data")
    argv = ["--data-dir", str(data_dir), "--cache-dir", str(tmp_path / "cache")]
    argv += ["--out", str(out), "--variants", "gelu,relu", "--epochs", "1", "--seeds", "0"]
    assert cifar10_compare.main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith(expected) and error.endswith(ending + "\n")

    # Deleting it, as told, gives a report of the others.
    damaged.unlink()
    assert cifar10_compare.main(["--report-only", "--out", str(out)]) == 0
    assert "| gelu | 0 | 50.00% |" in (out / "results.md").read_text()


def test_a_report_of_no_runs_does_not_replace_a_markdown_report(tmp_path, capsys):
    results = tmp_path / "RESULTS.md"
    results.write_text(f"# Preface\n{report.PREFACE_END}\n\n# CIFAR-10\n\n22 finished runs\n")
    before = results.read_text()
    argv = ["--report-only", "--out", str(tmp_path / "typo"), "--markdown", str(results)]
    assert cifar10_compare.main(argv) == 2
    assert "holds no finished runs" in capsys.readouterr().err
    assert results.read_text() == before


def test_ctrl_c_during_training_exits_130_and_the_same_command_resumes(
    tmp_path, capsys, monkeypatch
):
    argv = [
        "--data-dir", str(_write_pickles(tmp_path / "data")),
        "--cache-dir", str(tmp_path / "cache"),
        "--out", str(tmp_path / "out"),
        "--variants", "relu",
        "--epochs", "1",
        "--batch-size", "16",
        "--seeds", "0",
    ]  # fmt: skip

    def pressed(self, epoch, logs=None):  # Ctrl-C inside `fit`, before its first step.
        raise KeyboardInterrupt

    monkeypatch.setattr(train.EpochTimer, "on_epoch_begin", pressed)
    assert cifar10_compare.main(argv) == 130
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines()[-1] == cli.INTERRUPTED
    assert "Traceback" not in captured.err
    runs = tmp_path / "out" / "runs"
    assert not runs.exists() or not list(runs.iterdir())  # No half-written run file.

    monkeypatch.undo()
    assert cifar10_compare.main(argv) == 0
    assert "relu, seed 0: test accuracy" in capsys.readouterr().out
    assert sorted(p.name for p in runs.iterdir()) == ["relu_seed0.json"]
    assert report.load_run(runs / "relu_seed0.json")["history"]["epoch_seconds"]


def test_finetune_report_needs_its_markdown_file_and_refuses_a_report_of_no_runs(tmp_path, capsys):
    code, error = _argument_error(
        finetune_swap.main, ["--report", "--markdown", str(tmp_path / "absent.md")], capsys
    )
    assert code == 2
    assert error.endswith(
        f"argument --markdown: must be an existing Markdown file to write the section into. "
        f"Received: '{tmp_path / 'absent.md'}'"
    )

    # The committed runs give the committed section's table; a folder of none is refused.
    out = tmp_path / "out"
    runs = sorted((EXAMPLES / "results" / "finetune_swap" / "runs").glob("*.json"))
    (out / "runs").mkdir(parents=True)
    for path in runs:
        (out / "runs" / path.name).write_text(path.read_text())
    results = tmp_path / "RESULTS.md"
    results.write_text(f"# Results\n\n{finetune_swap.BEGIN}\nold\n{finetune_swap.END}\n\nrest\n")
    assert finetune_swap.main(["--report", "--out", str(out), "--markdown", str(results)]) == 0
    written = results.read_text()
    assert f"{len(runs)} runs, " in written and "\nold\n" not in written
    assert written.endswith(f"{finetune_swap.END}\n\nrest\n")
    capsys.readouterr()
    for empty in (tmp_path / "typo", tmp_path / "empty"):
        (empty / "runs").mkdir(parents=True, exist_ok=empty.name == "empty")
        argv = ["--report", "--out", str(empty), "--markdown", str(results)]
        assert finetune_swap.main(argv) == 2
        error = capsys.readouterr().err
        assert error.startswith(f"error: {empty / 'runs'} holds no finished runs") and (
            error.count("\n") == 1
        )
        assert results.read_text() == written  # The section with runs is kept.

    # A section whose end marker was deleted is refused, not cut at a guess.
    broken = tmp_path / "BROKEN.md"
    broken.write_text(f"# Results\n\n{finetune_swap.BEGIN}\nold\n\nrest\n")
    assert finetune_swap.main(["--report", "--out", str(out), "--markdown", str(broken)]) == 2
    assert "has the section's first marker but not its last" in capsys.readouterr().err
    assert broken.read_text().endswith("old\n\nrest\n")

    # A damaged run file is named, and the section is kept.
    (out / "runs" / runs[0].name).write_text(runs[0].read_text()[:100])
    assert finetune_swap.main(["--report", "--out", str(out), "--markdown", str(results)]) == 2
    assert f"{out / 'runs' / runs[0].name} is not a finished result" in capsys.readouterr().err
    assert results.read_text() == written


def test_finetune_ctrl_c_exits_130_and_the_same_command_resumes(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(
        finetune_swap.data_lib, "load", lambda *args: (_images("train", 0), _images("test", 1))
    )
    monkeypatch.setitem(finetune_swap.PROTOCOL, "epochs", 1)
    monkeypatch.setitem(finetune_swap.PROTOCOL, "batch_size", 16)
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n")
    argv = ["--arms", "relu", "--seeds", "0", "--out", str(tmp_path / "out")]
    argv += ["--markdown", str(results)]

    def pressed(self, epoch, logs=None):  # Ctrl-C inside `fit`, before its first step.
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(keras.callbacks.History, "on_epoch_begin", pressed, raising=False)
        assert finetune_swap.main(argv) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == cli.INTERRUPTED
    runs = tmp_path / "out" / "runs"
    assert not runs.exists() or not list(runs.iterdir())
    assert results.read_text() == "# Results\n"

    assert finetune_swap.main(argv) == 0
    assert sorted(p.name for p in runs.iterdir()) == ["relu_seed0.json"]
    assert "| relu | 1 |" in results.read_text()
