"""README.md stays true: its variants table is the registry's, its commands are CI's."""

import re
from pathlib import Path

import keras_relu

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_variants_table_is_the_registry_table():
    match = re.search(
        r"<!-- variants-table:.*?-->\n(.*?)\n<!-- end of variants-table -->", README, re.S
    )
    assert match, "README.md lost its variants-table markers"
    assert match.group(1) == keras_relu.registry.markdown_table()


def test_ci_runs_the_test_command_the_readme_gives():
    command = 'pip install -e ".[test]" && python -m pytest'
    assert command in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install --quiet --disable-pip-version-check -e ".[test]"' in ci
    assert 'KERAS_BACKEND="$backend" python -m pytest 2>&1' in ci
