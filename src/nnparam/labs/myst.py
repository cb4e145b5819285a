"""Book-only MyST markup turned into plain Jupyter markdown for the student notebooks.

A solution notebook is also a page of the book, so its markdown may use MyST roles
(``{footcite}`Kubo1966` ``, ``{download}`...` ``, ``{doc}`...` ``) and directives (a
``{footbibliography}`` block, admonitions). Jupyter shows those raw. :func:`to_markdown`
rewrites them: a citation becomes "(Kubo, 1966)", the bibliography block a list of the works
cited in the notebook, a cross-reference its text, an admonition a block quote.
"""

from __future__ import annotations

import re
from pathlib import Path

ROLE = re.compile(r"\{([A-Za-z][\w:+-]*)\}`([^`]*)`")
_TARGET = re.compile(r"^(.*?)\s*<([^<>]*)>\s*$", re.DOTALL)
_FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}[ \t]*(?P<arg>[^\n]*)\n"
                    r"(?P<body>.*?)^(?P=fence)[ \t]*$\n?", re.DOTALL | re.MULTILINE)
CITE_ROLES = {"footcite", "cite", "cite:p", "cite:t", "footcite:p", "footcite:t", "citep",
              "citet"}
BIBLIOGRAPHY = {"footbibliography", "bibliography"}


def load_bib(path) -> dict:
    """``{key: {"short": "Kubo, 1966", "author": "Kubo", "year": "1966", "full": ...}}`` of a
    BibTeX file (empty when the file or pybtex is missing: citations then show their keys)."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        from pybtex.database import parse_file
    except ImportError:  # the book's toolchain brings pybtex; without it, keys stand in
        return {}
    entries = {}
    for key, entry in parse_file(str(path)).entries.items():
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        last = [" ".join(p.last_names) for p in people]
        if len(last) > 2:
            author = f"{last[0]} et al."
        else:
            author = " and ".join(last) or key
        fields = entry.fields
        year = fields.get("year", "n.d.")
        each = [" ".join(p.last_names) + (", " + " ".join(n[0] + "." for n in p.first_names)
                                          if p.first_names else "") for p in people]
        names = ", ".join(each[:-1]) + (" and " if len(each) > 1 else "") + (each[-1]
                                                                            if each else "")
        venue = fields.get("journal") or fields.get("booktitle") or fields.get("publisher", "")
        title = fields.get("title", "").replace("{", "").replace("}", "")
        full = f"{names or author} ({year}). {title}."
        if venue:
            full += f" *{venue.replace('{', '').replace('}', '')}*"
            if fields.get("volume"):
                full += f", {fields['volume']}"
            if fields.get("pages"):
                full += f", {fields['pages'].replace('--', '–')}"
            full += "."
        if fields.get("doi"):
            full += f" https://doi.org/{fields['doi']}"
        entries[key] = {"short": f"{author}, {year}", "author": author, "year": year,
                        "full": full}
    return entries


def cited_keys(texts) -> list[str]:
    """Citation keys in order of first appearance in ``texts``."""
    keys = []
    for text in texts:
        for match in ROLE.finditer(text):
            if match.group(1) in CITE_ROLES:
                for key in match.group(2).split(","):
                    if key.strip() and key.strip() not in keys:
                        keys.append(key.strip())
    return keys


def _role(match: re.Match, bib: dict) -> str:
    name, text = match.group(1), match.group(2)
    if name in CITE_ROLES:
        keys = [k.strip() for k in text.split(",") if k.strip()]
        if name.endswith(":t") or name == "citet":
            return "; ".join(f"{bib[k]['author']} ({bib[k]['year']})" if k in bib else k
                             for k in keys)
        return "(" + "; ".join(bib[k]["short"] if k in bib else k for k in keys) + ")"
    if name == "math":
        return f"${text}$"
    if name in {"eq", "numref", "ref", "doc", "download", "term", "abbr"}:
        target = _TARGET.match(text)
        if target:  # "text <target>": keep the text
            return target.group(1).strip()
        return text.strip()
    return text


def _directive(match: re.Match, bib: dict, keys: list[str]) -> str:
    name, arg, body = match.group("name"), match.group("arg").strip(), match.group("body")
    if name in BIBLIOGRAPHY:
        if not keys:
            return ""
        return "\n".join(f"* {bib[k]['full'] if k in bib else k}" for k in keys) + "\n"
    lines = [ln for ln in body.splitlines() if not re.match(r"^:[\w-]+:", ln.strip())]
    title = arg or name.capitalize()
    quoted = "\n".join("> " + ln if ln.strip() else ">" for ln in lines)
    return f"> **{title}.**\n{quoted}\n"


def to_markdown(text: str, bib: dict | None = None, keys: list[str] | None = None) -> str:
    """``text`` with MyST roles and directives rewritten as plain markdown.

    ``keys`` are the citations of the whole notebook (for a bibliography block).
    """
    bib = bib or {}
    keys = keys if keys is not None else cited_keys([text])
    out = _FENCE.sub(lambda m: _directive(m, bib, keys), text)
    return ROLE.sub(lambda m: _role(m, bib), out)


def has_markup(text: str) -> bool:
    """True if ``text`` still holds a MyST role or directive."""
    return bool(ROLE.search(text) or re.search(r"^(`{3,}|:{3,})\{", text, re.MULTILINE))
