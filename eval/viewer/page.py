"""Write the self-contained trace viewer page: one HTML file, styles and script inline.

The data is embedded as JSON: a small index (the problem list) and one
``<script type="application/json">`` block per problem that the page parses
only when that problem is opened, so a run of 30 problems x 32 paths x 16K
tokens opens at once and renders one problem at a time.

Trace text is untrusted.  In the JSON blocks ``<``, ``>`` and ``&`` are written
as ``\\u003c`` etc., so no text can close the block (``</script>``) or open a
comment; the page's script puts text into the DOM only as text; and a
Content-Security-Policy allows no network access and no script but our own
(by hash), so even a missed escape could neither run code nor load anything.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from eval.viewer.data import problem_entry, problem_view, run_facts
from inference.trace import Trace
from leapt.files import atomic_path

ASSETS = Path(__file__).with_name("assets")

Group = tuple[str, Sequence[Trace]]  # (label, traces of one run)


@lru_cache(maxsize=1)
def _assets() -> tuple[str, str]:
    css = (ASSETS / "viewer.css").read_text(encoding="utf-8")
    js = (ASSETS / "viewer.js").read_text(encoding="utf-8")
    return css, js


#: the heading every page opens with; how a page ``leapt view`` wrote is told from other files
HEADING = "<header><h1>leapt trace viewer: "


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def embed_json(data: Any) -> str:
    """JSON safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` left to end it."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _head(title: str) -> str:
    css, js = _assets()
    policy = (
        "default-src 'none'; "
        f"style-src 'sha256-{_sha256(css)}'; "
        f"script-src 'sha256-{_sha256(js)}'; "
        "img-src 'none'; connect-src 'none'; form-action 'none'; base-uri 'none'"
    )
    legend = "".join(
        f'<span class="piece {kind}">{kind}</span>'
        for kind in ("prompt", "model", "summary", "peer")
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{css}</style></head>\n<body>\n"
        f"{HEADING}{html.escape(title)}</h1>"
        '<span id="meta"></span>'
        f'<span class="legend">text by: {legend}</span></header>\n'
        '<div class="layout"><nav><select id="group" aria-label="run"></select>'
        '<input id="search" type="search" placeholder="filter problems (id, text, answers)" '
        'aria-label="filter problems"><div id="count"></div>'
        '<table id="problems"><thead><tr><th>id</th><th>gold</th><th>right</th>'
        "<th>answers by path</th></tr></thead><tbody></tbody></table></nav>\n"
        '<main id="detail"></main></div>\n'
    )


def is_viewer_page(path: str | Path) -> bool:
    """Whether ``path`` is a page this module wrote (and so may be written over)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(b"<!DOCTYPE html>"))
            return head == b"<!DOCTYPE html>" and HEADING.encode() in fh.read()
    except OSError:
        return False


def write_page(groups: Sequence[Group], out: str | Path, title: str) -> int:
    """Write the viewer page for ``groups`` (one or more runs) to ``out``; return its size in bytes."""
    _, js = _assets()
    index: dict[str, Any] = {"title": title, "groups": []}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8", errors="replace") as fh:
        fh.write(_head(title))
        for g, (label, traces) in enumerate(groups):
            index["groups"].append({"label": label, **run_facts(list(traces)), "problems": []})
            for i, trace in enumerate(traces):
                index["groups"][-1]["problems"].append(problem_entry(trace))
                fh.write(f'<script type="application/json" id="leapt-d-{g}-{i}">')
                fh.write(embed_json(problem_view(trace)))
                fh.write("</script>\n")
        fh.write(f'<script type="application/json" id="leapt-index">{embed_json(index)}</script>\n')
        fh.write(f"<script>{js}</script>\n</body></html>\n")
    return out.stat().st_size
