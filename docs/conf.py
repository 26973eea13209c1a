"""Sphinx configuration of the bayesmmm documentation (Markdown pages through MyST-Parser).

Build: ``nox -s docs`` or ``.venv/bin/python -m sphinx -W --keep-going -b html docs build/docs``
(warnings are errors); serve locally: ``nox -s docs_serve``.
"""

project = "bayesmmm"
author = "bayesmmm contributors"
copyright = "bayesmmm contributors"

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# ``(page.md#a-heading)`` links resolve to the headings of levels 1-3
myst_heading_anchors = 3
# ``% docs-test: ...`` lines are MyST comments (read by tests/test_docs.py, not rendered)
myst_enable_extensions = ["colon_fence"]

html_theme = "furo"
html_title = "bayesmmm"
# the shell / YAML / text blocks are not Python: no highlighting guesses
highlight_language = "text"
