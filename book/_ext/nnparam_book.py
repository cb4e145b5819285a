"""Sphinx hooks of the book (``sphinx.local_extensions`` in ``_config.yml``).

1. **One repository setting.** ``repository.url`` in ``_config.yml`` is the only place
   the book's repository is named. When it is empty, the repository, issues and launch
   buttons are not rendered (no link to a repository that does not exist); when it is
   set, they are. The instructor guide quotes it as the substitution
   ``{{ repository_url }}``.
2. **Written answers collapsed.** On the lab pages (``solutions/``), a markdown cell
   tagged ``solution`` (a model written answer) is rendered inside a collapsed "Model
   answer" dropdown, like the worked code solutions (``hide-input``).
"""

from __future__ import annotations

from docutils import nodes

#: docnames whose ``solution``-tagged markdown cells are collapsed
LAB_PAGES = "solutions/"
NOT_SET = "(not set: see the instructor guide, section 'Your fork of the book')"


def _repository(app, config) -> None:
    opts = dict(config.html_theme_options or {})
    url = (opts.get("repository_url") or "").strip()
    if url:  # the buttons follow the URL
        opts["use_repository_button"] = True
        opts["use_issues_button"] = True
    else:  # nothing to link to: no repository, issues, edit or launch buttons
        for key in ("use_repository_button", "use_issues_button",
                    "use_edit_page_button", "use_source_button"):
            opts[key] = False
        opts["launch_buttons"] = {}
    config.html_theme_options = opts
    subs = dict(getattr(config, "myst_substitutions", {}) or {})
    subs.setdefault("repository_url", url or NOT_SET)
    config.myst_substitutions = subs


def _collapse_written_answers() -> None:
    from myst_nb.core.render import MditRenderMixin

    original = MditRenderMixin.render_nb_cell_markdown
    if getattr(original, "_nnparam", False):
        return

    def render(self, token) -> None:
        tags = token.meta.get("metadata", {}).get("tags", [])
        docname = getattr(getattr(self.document.settings, "env", None), "docname", "")
        if "solution" not in tags or not docname.startswith(LAB_PAGES):
            return original(self, token)
        box = nodes.admonition(classes=["dropdown", "lab-model-answer"])
        box += nodes.title(text="Model answer")
        self.add_line_and_source_path(box, token)
        with self.current_node_context(box, append=True):
            self.render_children(token)
        return None

    render._nnparam = True
    MditRenderMixin.render_nb_cell_markdown = render


def setup(app):
    app.connect("config-inited", _repository, priority=900)
    _collapse_written_answers()
    return {"parallel_read_safe": True, "parallel_write_safe": True}
