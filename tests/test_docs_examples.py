"""Every Python code block of README.md and the documentation runs, as a reader would run it.

The blocks of a page run in order in one namespace, in a temporary folder (they save models
and export files). Where the text uses placeholders (`model`, `x`, `y`, `x_val`, ...), the
page's setup below defines them on tiny data, so the whole run stays short. A block that is
only illustrative (output shown as comments that a tiny run cannot reproduce, a fragment) is
marked with the line `<!-- illustrative -->` just above its fence, and is not run; the marker
is documented in docs/development.md.
"""

import re
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_relu
from keras_relu import diagnostics

ROOT = Path(__file__).resolve().parents[1]
ILLUSTRATIVE = "<!-- illustrative -->"
_FENCE = re.compile(r"^```python\n(.*?)^```\n", re.S | re.M)


def code_blocks(text):
    """`[(line, code, illustrative)]`: the ```python blocks of a Markdown text, in order."""
    blocks = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        line = text.count("\n", 0, match.start()) + 2  # The block's first line of code.
        blocks.append((line, match.group(1), before.strip() == ILLUSTRATIVE))
    return blocks


def pages():
    found = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [path for path in found if code_blocks(path.read_text())]


# The tiny stand-ins for the text's placeholders.


def _images(rows, seed, side=32):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, side, side, 3)).astype("float32")
    return x, np.arange(rows) % 10  # Every class, as sample_probe's `labels` expect.


def _small_model(side):
    """A small model like the tour's, compiled."""
    model = keras.Sequential(
        [
            keras.Input((side, side, 3)),
            keras.layers.Conv2D(4, 3),
            keras_relu.PReLU(),
            keras.layers.Conv2D(4, 3, activation="crelu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _images_setup(side=32):
    """README's tour builds its own 32x32 model; it needs the 512 rows it probes."""
    x, y = _images(32, 0, side)
    x_val, y_val = _images(512, 1, side)
    return {"x": x, "y": y, "x_val": x_val, "y_val": y_val, "x_batch": x_val[:32]}


def _trained_model_setup():
    """Pages that use a `model` they do not build: a small one on 8x8 images (fast)."""
    model = _small_model(8)
    return {"keras": keras, "keras_relu": keras_relu, "model": model, **_images_setup(8)}


def _mlp_setup():
    """The cures page: an MLP whose activation layers are named as the page's output shows."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1024, 16)).astype("float32")  # The page's probes take up to 1,000.
    y = np.arange(1024) % 10
    inputs = keras.Input((16,))
    hidden = inputs
    for index in (1, 2, 3):
        hidden = keras.layers.Dense(32)(hidden)
        hidden = keras.layers.Activation("relu", name=f"act{index}")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(10)(hidden))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return {"model": model, "x": x, "y": y, "x_train": x, "y_train": y, "x_val": x, "y_val": y}


SETUPS = {
    "README.md": _images_setup,
    "docs/export.md": _trained_model_setup,
    "docs/dying-relu/index.md": _trained_model_setup,
    "docs/dying-relu/dead-units.md": _trained_model_setup,
    "docs/dying-relu/gradients.md": _trained_model_setup,
    "docs/dying-relu/cures.md": _mlp_setup,
    "docs/dying-relu/guard.md": _mlp_setup,
}

# Pages whose code needs what a backend lacks: {page: (backends it runs on, why)}.
BACKENDS = {
    "docs/export.md": (
        {"tensorflow"},
        "the page exports through TensorFlow graphs (TFLite, tf2onnx), as it says",
    ),
}


def run_blocks(name, text, namespace):
    """Runs the page's blocks that are not illustrative in `namespace`; how many ran."""
    ran = 0
    for line, code, illustrative in code_blocks(text):
        if illustrative:
            continue
        with warnings.catch_warnings():
            # The monitors warn when a tiny, random run looks unhealthy: that is their job,
            # not a failure of the example. Any other warning fails it.
            for category in (diagnostics.DeadUnitWarning, diagnostics.GradientWarning):
                warnings.filterwarnings("ignore", category=category)
            try:
                exec(compile(code, f"{name}:{line}", "exec"), namespace)
            except Exception as error:
                raise AssertionError(f"the code block at {name}:{line} fails: {error!r}") from error
        ran += 1
    return ran


@pytest.mark.parametrize("page", [p.relative_to(ROOT).as_posix() for p in pages()])
def test_code_blocks_run(page, tmp_path, monkeypatch):
    backends, why = BACKENDS.get(page, (None, ""))
    if backends and keras.config.backend() not in backends:
        pytest.skip(f"{page}: {why} (backend is {keras.config.backend()})")
    monkeypatch.chdir(tmp_path)  # The blocks write model.keras, model.onnx, ...
    namespace = {"__name__": "__docs__", **SETUPS.get(page, dict)()}
    assert run_blocks(page, (ROOT / page).read_text(), namespace), (
        f"{page}: every code block is marked illustrative"
    )


def test_setups_name_pages_with_code():
    with_code = {p.relative_to(ROOT).as_posix() for p in pages()}
    assert set(SETUPS) <= with_code and set(BACKENDS) <= with_code


def test_code_blocks_are_found_with_their_marker():
    text = (
        "# Page\n\n```python\na = 1\n```\n\ntext\n\n"
        f"{ILLUSTRATIVE}\n```python\nb = 2\n```\n\n```bash\nls\n```\n"
    )
    assert code_blocks(text) == [(4, "a = 1\n", False), (11, "b = 2\n", True)]


def test_a_failing_block_fails_with_its_page_and_line():
    """README's tour once fit a model it never compiled (issue 27, item 15)."""
    text = (
        "# Tour\n\n```python\nmodel = keras.Sequential([keras.Input((8, 8, 3)), "
        "keras.layers.Flatten(), keras.layers.Dense(10)])\nmodel.fit(x, y, verbose=0)\n```\n"
    )
    namespace = {"keras": keras, **_images_setup(8)}
    with pytest.raises(AssertionError, match=r"README\.md:4 fails: .*compile"):
        run_blocks("README.md", text, namespace)
    illustrative = text.replace("```python", f"{ILLUSTRATIVE}\n```python")
    assert run_blocks("README.md", illustrative, namespace) == 0
