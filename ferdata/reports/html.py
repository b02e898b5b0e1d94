"""One self-contained HTML report: every image is a base64 data URI, the CSS is inline,
there is no script and no external link, so the file opens offline and can be mailed
around as it is. Every figure is also written as a PNG beside the HTML, for slides.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ferdata.atomic import make_folder
from ferdata.manifest import atomic_write_bytes

REPORT_FILE = "report.html"

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:24px auto;
max-width:1200px;padding:0 16px;color:#1d2430;background:#fff}
h1{font-size:26px;border-bottom:3px solid #3b6ea5;padding-bottom:6px}
h2{font-size:20px;margin-top:32px;border-bottom:1px solid #ccd4de;padding-bottom:4px;color:#23466e}
h3{font-size:16px;margin-top:18px}
table{border-collapse:collapse;margin:8px 0 16px 0;font-size:13px}
th,td{border:1px solid #ccd4de;padding:3px 8px;text-align:right}
th{background:#eef2f7}
td:first-child,th:first-child{text-align:left}
caption{caption-side:top;text-align:left;font-weight:600;padding:4px 0}
figure{margin:8px 0 16px 0;display:inline-block;vertical-align:top}
figure img{max-width:100%;border:1px solid #e1e6ed}
figcaption{font-size:12px;color:#4d5a6b}
.row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.row>div{flex:1 1 0;min-width:280px}
.note{color:#4d5a6b;font-size:13px}
.warn{color:#9a3b00}
code{background:#f3f5f8;padding:0 3px}
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure_png(fig: Any, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes, through the Agg canvas (no GUI, no pyplot state)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "figure"


class HtmlReport:
    """Blocks of HTML built in order, then written once with :meth:`write`.

    ``out_dir`` receives ``report.html`` and one PNG per figure; figure names must be
    unique within a report (a repeat gets a numeric suffix).
    """

    def __init__(self, title: str, out_dir: str | Path) -> None:
        self.title = title
        self.out_dir = Path(out_dir)
        self._blocks: list[str] = []
        self._pngs: dict[str, bytes] = {}
        self._stack: list[list[str]] = []

    # --- content ----------------------------------------------------------------------

    def _add(self, block: str) -> None:
        (self._stack[-1] if self._stack else self._blocks).append(block)

    def heading(self, text: str, level: int = 2) -> None:
        self._add(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str, *, css: str | None = None) -> None:
        cls = f' class="{css}"' if css else ""
        self._add(f"<p{cls}>{html.escape(text)}</p>")

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[Any]], caption: str | None = None) -> None:
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        head = f"<thead><tr>{head}</tr></thead>" if any(columns) else ""
        body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt_cell(v))}</td>" for v in row) + "</tr>" for row in rows)
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self._add(f"<table>{cap}{head}<tbody>{body}</tbody></table>")

    def key_values(self, rows: Iterable[tuple[str, Any]], caption: str | None = None) -> None:
        self.table(("", ""), rows, caption)

    def figure(self, name: str, png_or_fig: bytes | Any, caption: str | None = None, *, width: int | None = None) -> str:
        """Embed a PNG (bytes or a matplotlib figure) and keep it to write beside the HTML;
        returns the PNG's file name."""
        png = png_or_fig if isinstance(png_or_fig, (bytes, bytearray)) else figure_png(png_or_fig)
        base = _slug(name)
        fname, k = f"{base}.png", 1
        while fname in self._pngs:
            k += 1
            fname = f"{base}-{k}.png"
        self._pngs[fname] = bytes(png)
        style = f' style="width:{int(width)}px"' if width else ""
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._add(f'<figure><img alt="{html.escape(name)}" src="{data_uri(png)}"{style}>{cap}</figure>')
        return fname

    def columns(self) -> _Columns:
        """``with report.columns() as col:`` then ``col.next()`` before each column's content:
        columns side by side (comparison reports)."""
        return _Columns(self)

    # --- output -----------------------------------------------------------------------

    @property
    def png_names(self) -> list[str]:
        return list(self._pngs)

    def render(self) -> str:
        from datetime import datetime, timezone

        from ferdata import __version__

        made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        body = "\n".join(self._blocks) + f'\n<p class="note">Made by ferdata {html.escape(__version__)} on {made}.</p>'

        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head>"
                f"<body><h1>{html.escape(self.title)}</h1>\n{body}\n</body></html>\n")

    def write(self) -> Path:
        """Write the PNGs, then the HTML (each atomically); returns the HTML's path."""
        make_folder(self.out_dir)
        for fname, png in self._pngs.items():
            atomic_write_bytes(self.out_dir / fname, png)
        path = self.out_dir / REPORT_FILE
        atomic_write_bytes(path, self.render().encode("utf-8"))
        return path


class _Columns:
    def __init__(self, report: HtmlReport) -> None:
        self.report = report
        self.cells: list[list[str]] = []

    def __enter__(self) -> _Columns:
        return self

    def next(self) -> None:
        if self.cells:
            self.report._stack.pop()
        self.cells.append([])
        self.report._stack.append(self.cells[-1])

    def __exit__(self, *exc: Any) -> None:
        if self.cells:
            self.report._stack.pop()
        inner = "".join("<div>" + "\n".join(c) + "</div>" for c in self.cells)
        self.report._add(f'<div class="row">{inner}</div>')


def fmt_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


_DATA_URI = re.compile(r'src="data:image/([a-z+]+);base64,([^"]*)"')


def embedded_images(html_text: str) -> list[bytes]:
    """The decoded bytes of every ``data:`` image in a report (checks and tests)."""
    return [base64.b64decode(m.group(2), validate=True) for m in _DATA_URI.finditer(html_text)]


def external_references(html_text: str) -> list[str]:
    """Every ``src``/``href`` that is not a data URI or an in-page anchor: a report must have none."""
    refs = re.findall(r'(?:src|href)="([^"]*)"', html_text)
    return [r for r in refs if not r.startswith("data:") and not r.startswith("#")]
