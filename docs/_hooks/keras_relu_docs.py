"""MkDocs hooks for the keras_relu site (mkdocs.yml, `hooks:`).

- The figures the examples commit are served from where they are, not copied into
  docs/: `examples/results/full/plots/activations.png` as `img/activations.png` and
  `examples/results/dying_relu/plots/*.png` as `dying-relu/plots/*.png`.
- Docstring examples written as unindented `>>>` lines (the package's docstrings, after
  "Example:") would read as nested block quotes; they are shown as code.
- Figures from the committed results, marked `<!-- fig:NAME -->...<!-- /fig -->` in the
  pages, are rendered afresh by `examples/figures.py` (the same function that
  `python examples/figures.py --write` and its test use), so the site shows what the
  results give today even if a page's text is stale.
- Formulas written `$...$` or `$$...$$` (pymdownx.arithmatex, generic mode) become
  MathML at build time with `latex2mathml`, which browsers render natively: the
  site needs no MathJax or KaTeX script, so it shows formulas offline.
"""

import html
import re
import sys
from pathlib import Path

import latex2mathml.converter
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))

import figures  # noqa: E402  (examples/figures.py: pure Python, reads the results' JSON)

RESULTS = ROOT / "examples" / "results"
EXTERNAL_FIGURES = {
    "img": [RESULTS / "full" / "plots" / "activations.png"],
    "dying-relu/plots": sorted((RESULTS / "dying_relu" / "plots").glob("*.png")),
}

_INLINE = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.S)
_BLOCK = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.S)


def on_files(files, config):
    for folder, paths in EXTERNAL_FIGURES.items():
        for path in paths:
            if not path.exists():
                raise FileNotFoundError(f"the docs show {path}, which is missing")
            files.append(
                File(
                    f"{folder}/{path.name}",
                    src_dir=str(path.parent.parent),
                    dest_dir=config["site_dir"],
                    use_directory_urls=config["use_directory_urls"],
                )
            )
            # File resolves its source as src_dir/src_uri; point it at the real file.
            files.get_file_from_path(f"{folder}/{path.name}").abs_src_path = str(path)
    return files


def on_page_markdown(markdown, page, **kwargs):
    return figures.render(markdown, source=f"docs/{page.file.src_uri}")


def to_mathml(tex, display):
    """MathML for the TeX `tex` (as arithmatex escaped it into HTML)."""
    return latex2mathml.converter.convert(
        html.unescape(tex).strip(), display="block" if display else "inline"
    )


_DOCTEST = re.compile(
    r"<blockquote>\s*<blockquote>\s*<blockquote>\s*<p>(.*?)</p>\s*"
    r"</blockquote>\s*</blockquote>\s*</blockquote>",
    re.S,
)


def doctest_as_code(match):
    lines = [line.strip() for line in match.group(1).splitlines() if line.strip()]
    code = "\n".join(f"&gt;&gt;&gt; {line}" for line in lines)
    return f'<div class="highlight"><pre><code>{code}</code></pre></div>'


def on_page_content(page_html, **kwargs):
    page_html = _DOCTEST.sub(doctest_as_code, page_html)
    page_html = _BLOCK.sub(lambda m: to_mathml(m.group(1), True), page_html)
    return _INLINE.sub(lambda m: to_mathml(m.group(1), False), page_html)
