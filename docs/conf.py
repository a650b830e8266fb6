"""Sphinx configuration of nnx's documentation site.

Build it with ``python -m sphinx -W -b html docs docs/_build/html`` from the repository root
and open ``docs/_build/html/index.html``; ``tests/test_docs.py`` builds it with warnings as
errors, so a docstring that no longer renders fails the test suite.

Why Sphinx with numpydoc rather than MkDocs with mkdocstrings: nnx's docstrings are
reStructuredText in numpydoc's layout, with ``.. math::`` formulas, simple tables,
footnotes and ``:class:`` / ``:func:`` cross-references. Sphinx renders all of them as
written and its ``-W`` flag turns every rendering problem into an error; mkdocstrings reads
the numpydoc sections but not the reStructuredText inside them. The guides are Markdown (the
README and the pages under docs/), which myst-parser reads, so they are not converted either.
"""

import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the nnx of this checkout, installed or not
sys.path.insert(0, str(ROOT / "examples"))  # the example pages show the examples' docstrings

import nnx  # noqa: E402

project = "nnx"
author = "the nnx authors"
copyright = "the nnx authors"
release = nnx.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]

autodoc_member_order = "bysource"
# The reference shows signatures as written (``learning_rate=0.01``), not evaluated defaults.
autodoc_preserve_defaults = True
# numpydoc's member tables would need a generated page per method; the members are shown
# in full below each class instead.
numpydoc_show_class_members = False

# The README's contents list links to its headings (``#install``), as GitHub renders them.
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"nnx {release}"


def skip_foreign(app, what, name, obj, skip, options):
    """Leave out methods that other libraries add to nnx's classes (scikit-learn's
    ``set_*_request``): their docstrings belong to, and link into, those libraries' docs."""
    if inspect.isfunction(obj) and not obj.__module__.startswith("nnx"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", skip_foreign)
