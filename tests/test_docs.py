"""The documentation site builds with warnings as errors, and its pages hold what a reader
comes for: the README as the guide, a reference of every module and of every public method
of ``Network``, a page per example with its figures, and links and images that resolve."""

import ast
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

for _name in ("sphinx", "numpydoc", "myst_parser", "furo"):
    pytest.importorskip(_name, reason="the docs extra is not installed: pip install '.[docs]'")

ROOT = Path(__file__).resolve().parents[1]
# modules with nothing to show a reader
UNDOCUMENTED = {"__init__", "version"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the site once, as the README says, with every warning an error."""
    out = tmp_path_factory.mktemp("html")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(ROOT / "docs"), str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"the docs build failed:\n{result.stdout}\n{result.stderr}"
    return out


class Page(HTMLParser):
    """The ids, headings, links and images of one HTML page."""

    def __init__(self, path):
        super().__init__()
        self.ids, self.links, self.images, self.headings = set(), [], [], []
        self._heading = None
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        elif tag == "img":
            self.images.append(attrs["src"])
        elif tag in ("h1", "h2"):
            self._heading = ""

    def handle_data(self, data):
        if self._heading is not None:
            self._heading += data

    def handle_endtag(self, tag):
        if tag in ("h1", "h2") and self._heading is not None:
            self.headings.append(self._heading.replace("\N{PILCROW SIGN}", "").strip())
            self._heading = None


def pages(site):
    return {path.resolve(): Page(path) for path in site.rglob("*.html")
            if "_sources" not in path.parts and "_modules" not in path.parts}


def test_home_page_is_the_readme_guide(site):
    home = Page(site / "index.html")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sections = [re.sub(r"[`*]", "", line[3:]).strip()
                for line in readme.splitlines() if line.startswith("## ")]
    assert sections and [s for s in sections if s not in home.headings] == []
    for page in ("api/index.html", "api/network.html", "examples/index.html"):
        assert any(link.endswith(page) for link in home.links), page


def test_every_module_has_a_reference_page(site):
    documented = set().union(*(page.ids for page in pages(site / "api").values()))
    modules = {path.stem for path in (ROOT / "nnx").glob("*.py")} - UNDOCUMENTED
    missing = sorted(m for m in modules if f"module-nnx.{m}" not in documented)
    assert missing == [], f"add `.. automodule:: nnx.<name>` to a page under docs/api/: {missing}"


def test_network_reference_lists_every_public_method(site):
    import nnx

    page = Page(site / "api" / "network.html")
    public = {name for name in dir(nnx.Network) if not name.startswith("_")
              and not isinstance(getattr(nnx.Network, name), str)}  # registry bookkeeping
    assert {f"nnx.Network.{name}" for name in public} - page.ids == set()
    assert {"nnx.Network", "nnx.DivergenceError", "nnx.load", "nnx.save"} <= page.ids
    assert "Parameters" in (site / "api" / "network.html").read_text(encoding="utf-8")


def _figures_written_by(example):
    """The figure names an example's docstring says it writes."""
    doc = ast.get_docstring(ast.parse(example.read_text(encoding="utf-8"))) or ""
    return set(re.findall(r"\b\w+\.png\b", doc))


def test_every_example_has_a_page_with_its_figures(site):
    for example in sorted((ROOT / "examples").glob("*.py")):
        html = site / "examples" / f"{example.stem}.html"
        assert html.exists(), f"no page docs/examples/{example.stem}.rst for {example.name}"
        shown = {Path(unquote(src)).name for src in Page(html).images}
        assert _figures_written_by(example) <= shown, example.name


def test_links_and_images_resolve(site):
    site_pages = pages(site)
    broken = []
    for path, page in site_pages.items():
        for src in page.images:
            if not (path.parent / unquote(src)).is_file():
                broken.append(f"{path.relative_to(site)}: image {src}")
        for link in page.links:
            url = urlsplit(link)
            if url.scheme or url.netloc:
                continue  # the web, not this site
            target = (path.parent / unquote(url.path)).resolve() if url.path else path
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{path.relative_to(site)}: link {link}")
            elif url.fragment and target.suffix == ".html":
                ids = site_pages[target].ids if target in site_pages else Page(target).ids
                if unquote(url.fragment) not in ids:
                    broken.append(f"{path.relative_to(site)}: anchor {link}")
    assert broken == []
