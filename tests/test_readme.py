"""README.md and the documentation stay true: the variants table of `docs/variants.md` is the
registry's, the "which one" table of `docs/choosing.md` is built from the committed results,
README's commands are CI's, README stays short and links only to pages that exist."""

import re
import sys
from pathlib import Path

import pytest

import keras_relu

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
README_LIMIT = 10_000  # Characters: a newcomer reads it to the end; the docs hold the rest.


def test_variants_table_is_the_registry_table():
    page = (DOCS / "variants.md").read_text()
    match = re.search(
        r"<!-- variants-table:.*?-->\n(.*?)\n<!-- end of variants-table -->", page, re.S
    )
    assert match, "docs/variants.md lost its variants-table markers"
    assert match.group(1) == keras_relu.registry.markdown_table()


def test_readme_is_short_and_its_links_lead_to_pages_that_exist():
    assert len(README) <= README_LIMIT, f"README.md has {len(README):,} characters"
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    assert "docs/getting-started.md" in targets and "docs/choosing.md" in targets
    missing = [target for target in targets if not (ROOT / target).is_file()]
    assert not missing, missing


def test_every_docs_page_is_in_the_site_navigation():
    mkdocs = (ROOT / "mkdocs.yml").read_text()
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if "_hooks" not in p.parts}
    listed = set(re.findall(r"^\s*-\s*(?:[^:\n]+:\s*)?([\w/.-]+\.md)\s*$", mkdocs, re.M))
    assert pages == listed


def test_ci_runs_the_test_command_the_readme_gives():
    command = 'pip install -e ".[test]" && python -m pytest'
    assert command in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert '-e ".[test' in ci  # The same extra (with the docs' next to it).
    assert 'KERAS_BACKEND="$backend" python -m pytest 2>&1' in ci


def test_ci_builds_the_documentation_strictly():
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install --quiet --disable-pip-version-check -e ".[test,docs]"' in ci
    assert "mkdocs build --strict" in ci


def _choose_variant():
    sys.path.insert(0, str(ROOT / "examples"))
    import choose_variant

    return choose_variant


def test_which_one_table_is_built_from_the_committed_results():
    choose_variant = _choose_variant()
    expected = choose_variant.markdown(*choose_variant.load_measurements())
    assert choose_variant.generated_part(choose_variant.PAGE.read_text()) == expected, (
        "docs/choosing.md's 'which one' table is stale: "
        "run `python examples/choose_variant.py --write`"
    )


def test_which_one_table_takes_every_figure_from_its_inputs():
    choose_variant = _choose_variant()
    runs, step_benchmark, _ = choose_variant.load_measurements()
    step = {arm: {"x_relu": 1.0 + index / 100} for index, arm in enumerate(["relu", "gelu"])}
    resistance = {"leaky_relu": {"summary": "keeps 97% of its units alive"}}
    relu = [run for run in runs if run["arm"] == "relu"]
    table = choose_variant.markdown_table(
        relu + [{**relu[0], "arm": "prelu", "params": 1}], step, resistance
    )
    rows = {line.split(" | ")[0].strip("| `"): line.split(" | ") for line in table.splitlines()[2:]}
    assert len(rows) == len(keras_relu.names())  # One row per variant.
    # Arms with different seed counts: each cell says its count; one seed has no spread.
    assert rows["relu"][1:3] == [f"{100 * _mean(relu):.2f} ± {100 * _sd(relu):.2f} (2)", "1.00x"]
    assert rows["prelu"][1:4] == [
        f"{100 * relu[0]['test_accuracy']:.2f} (1), one seed",
        "not measured",
        f"{1 - relu[0]['params']:+,} (one slope per channel)",
    ]
    assert rows["gelu"][1:3] == ["not run", "1.01x"]
    assert rows["leaky_relu"][4] == "keeps 97% of its units alive"
    assert rows["relu"][4] == "not measured yet"


def test_which_one_table_says_better_only_when_the_paired_interval_excludes_0():
    choose_variant = _choose_variant()
    runs, _, _ = choose_variant.load_measurements()
    relu = sorted((run for run in runs if run["arm"] == "relu"), key=lambda run: run["seed"])
    shifted = [
        {**run, "arm": "gelu", "test_accuracy": run["test_accuracy"] + shift}
        for run, shift in zip(relu, [0.02, 0.021], strict=False)
    ]
    noisy = [
        {**run, "arm": "elu", "test_accuracy": run["test_accuracy"] + shift}
        for run, shift in zip(relu, [0.05, -0.01], strict=False)
    ]
    table = choose_variant.markdown_table(relu + shifted + noisy, {}, {})
    rows = {line.split(" | ")[0].strip("| `"): line.split(" | ") for line in table.splitlines()[2:]}
    assert rows["gelu"][1].endswith(", better")  # +2 points at each seed.
    assert rows["elu"][1].endswith(", tie")  # +2 points on average, but -1 at one seed.
    assert "," not in rows["relu"][1]


def _mean(runs):
    return sum(run["test_accuracy"] for run in runs) / len(runs)


def _sd(runs):
    mean = _mean(runs)
    return (sum((run["test_accuracy"] - mean) ** 2 for run in runs) / (len(runs) - 1)) ** 0.5


def test_which_one_table_needs_its_markers():
    choose_variant = _choose_variant()
    text = "# Choosing\n\nno table here\n"
    with pytest.raises(ValueError, match="lacks the lines"):
        choose_variant.replace_marked(text, "| a table |")
    marked = f"{choose_variant.BEGIN}\n{choose_variant.END}"
    assert choose_variant.replace_marked(marked, "new") == (
        f"{choose_variant.BEGIN}\nnew\n{choose_variant.END}"
    )


def test_license_file_holds_the_license_pyproject_names():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'license = "Apache-2.0"' in pyproject and 'license-files = ["LICENSE"]' in pyproject
    license_text = " ".join((ROOT / "LICENSE").read_text().split())
    assert license_text.startswith("Apache License Version 2.0, January 2004")
    assert "END OF TERMS AND CONDITIONS" in license_text
