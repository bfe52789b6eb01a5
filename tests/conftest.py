"""Shared test setup. The backend is fixed at import: run pytest once per
KERAS_BACKEND (tensorflow, jax, torch), as .ci/run does."""

import os

# Import torch before TensorFlow when both are present (a known import-order crash).
if os.environ.get("KERAS_BACKEND") == "torch":
    import torch  # noqa: F401

import keras
import pytest

import keras_relu


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.config.backend()}"


@pytest.fixture(autouse=True)
def _seed_and_policy():
    """Every test starts from the same seed and the float32 policy."""
    keras.utils.set_random_seed(1337)
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture(params=keras_relu.names())
def variant(request):
    """Parametrises a test over every registered variant."""
    return keras_relu.variant(request.param)
