"""Sphinx configuration of resgp's documentation site (``make docs``).

The build never reaches the internet: no intersphinx (the inventories of numpy, scipy,
scikit-learn, jax and gpjax are not available offline), and the gallery's examples run on data
that scikit-learn ships or that they generate. MathJax is loaded by the reader's browser from its
CDN; set ``RESGP_DOCS_MATHJAX`` to a local MathJax 2 file (e.g. Debian's libjs-mathjax,
``/usr/share/javascript/mathjax/MathJax.js``) to render math offline.
"""

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import resgp  # noqa: E402

project = "resgp"
author = "the resgp developers"
copyright = "the resgp developers"
release = version = resgp.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "screenshots", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.json",
                    "auto_examples/*.md5", "auto_examples/*.codeobj.json"]

# Markdown (docs/theory.md, docs/verification.md, benchmarks/results/*.md): $...$ and $$...$$
# math, GitHub-style heading anchors (the pages link to their own sections as #section-title).
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# numpydoc renders the Parameters/Returns sections; autodoc lists the members.
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()  # validated in tests/test_docstrings.py instead
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
add_module_names = False

# MathJax: the CDN by default (loaded by the browser, not by the build); a local copy on request.
_mathjax = os.environ.get("RESGP_DOCS_MATHJAX")
if _mathjax:
    mathjax_path = Path(_mathjax).resolve().as_uri() + "?config=TeX-AMS-MML_HTMLorMML"
    # MathJax 2's names for what MyST sets up for MathJax 3: process the math spans only
    mathjax2_config = {"tex2jax": {"inlineMath": [["\\(", "\\)"]],
                                   "displayMath": [["\\[", "\\]"]], "processEscapes": True,
                                   "processClass":
                                       "tex2jax_process|mathjax_process|math|output_area",
                                   "ignoreClass": "tex2jax_ignore|mathjax_ignore"}}

# The gallery: every script in examples/ runs at build time, its output and figures shown.
# gpjax_svgp.py (100,000 points, about a minute on 2 cores) is shown but not executed.
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/(?!gpjax_svgp)[^/]+\.py$",
    "ignore_pattern": r"__init__\.py",
    "image_scrapers": ("matplotlib",),
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 0,
    "abort_on_example_error": True,
    "show_memory": False,
    "plot_gallery": "True",
}

html_theme = "furo"
html_title = f"resgp {release}"
html_static_path = []
html_show_sourcelink = False
suppress_warnings = ["config.cache"]
