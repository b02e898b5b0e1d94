"""The Label Studio project a manifest's suspects go to: its title, labeling config, and
how its tasks show the images."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlparse
from xml.sax.saxutils import quoteattr

from ferdata.errors import FerdataError
from ferdata.review.connection import Connection

#: Names in the labeling config; the pull reads the ``label`` choice and the ``note`` text.
CONTROL = "label"
NOTE = "note"
OBJECT = "image"
#: The pre-annotation that pre-selects the given label (the editor shows only this
#: model_version's predictions), so Submit means "keep" and a change is a deliberate click.
GIVEN_VERSION = "ferdata-given-label"
ENV_DOCUMENT_ROOT = "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"
IMAGE_MODES = ("auto", "local", "embed")
#: Formats a browser shows; anything else (JAFFE's TIFF) is embedded as PNG.
BROWSER_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"}
EMBED_MAX_SIDE = 512
LOCAL_FILES_PREFIX = "/data/local-files/?d="
#: Sized so the image, both labels, every choice, the note and Submit fit a 1366x768 screen.
IMAGE_SIDE = "400px"


def project_title(manifest_name: str) -> str:
    return f"ferdata {manifest_name}"


def labeling_config(classes: list[str] | tuple[str, ...]) -> str:
    """The reviewer's view: the image beside what to decide. The given label comes first
    and is pre-selected; ferdata's suggestion is context, never the default answer;
    choices are one column of radio buttons with number hot-keys; a free-text note."""
    choices = "\n".join(f"      <Choice value={quoteattr(c)}/>" for c in classes)
    return (
        "<View>\n"
        "  <Style>.ferdata-aside * { font-size: 14px !important; font-weight: 400 !important; "
        "line-height: 1.35 !important; color: #555 !important; margin: 3px 0 !important; }</Style>\n"
        '  <View style="display: flex; gap: 24px; align-items: flex-start">\n'
        f'    <View style="flex: 0 0 {IMAGE_SIDE}">\n'
        f'      <Image name="{OBJECT}" value="$image" width="{IMAGE_SIDE}" maxWidth="{IMAGE_SIDE}" zoom="true" '
        'zoomControl="true"/>\n'
        "    </View>\n"
        '    <View style="flex: 1 1 auto; min-width: 300px">\n'
        '      <Header value="Given label: $given_label" size="4"/>\n'
        '      <View className="ferdata-aside">\n'
        '        <Header value="ferdata suggests: $suggestion" size="6"/>\n'
        '        <Header value="Why: $reasons" size="6"/>\n'
        '        <Header value="The given label is pre-selected: Submit keeps it; click another label to relabel." '
        'size="6"/>\n'
        "      </View>\n"
        f'      <Choices name="{CONTROL}" toName="{OBJECT}" choice="single-radio" showInline="false" required="true">\n'
        f"{choices}\n"
        "      </Choices>\n"
        f'      <TextArea name="{NOTE}" toName="{OBJECT}" rows="2" maxSubmissions="1" editable="true" '
        'showSubmitButton="false" placeholder="Note (optional): why you relabelled or kept it"/>\n'
        "    </View>\n"
        "  </View>\n"
        "</View>"
    )


def find_project(conn: Connection, title: str) -> Any | None:
    """The project with exactly this title (the oldest, if several), or ``None``."""
    with conn.calling(f"looking up project {title!r}"):
        found = [p for p in conn.client.projects.list(title=title) if p.title == title]
    return min(found, key=lambda p: p.id) if found else None


def ensure_project(conn: Connection, title: str, classes: list[str], description: str) -> tuple[Any, bool]:
    """Reuse the project called ``title`` (its classes brought up to date) or create it."""
    config = labeling_config(classes)
    project = find_project(conn, title)
    if project is None:
        with conn.calling(f"creating project {title!r}"):
            return conn.client.projects.create(title=title, description=description, label_config=config), True
    if project.label_config != config:
        with conn.calling(f"updating the labeling view of project {title!r}"):
            conn.client.projects.update(project.id, label_config=config)
    return project, False


def preselect_given_label(conn: Connection, project: Any) -> None:
    """Make the editor pre-fill the given-label pre-annotation (not the model's guess)."""
    if getattr(project, "model_version", None) == GIVEN_VERSION and getattr(project, "show_collab_predictions", True):
        return
    with conn.calling(f"pre-selecting the given label in project {project.title!r}"):
        conn.client.projects.update(project.id, model_version=GIVEN_VERSION, show_collab_predictions=True)


def document_root(value: str | os.PathLike | None = None) -> Path | None:
    raw = value or os.environ.get(ENV_DOCUMENT_ROOT)
    return Path(raw).resolve() if raw else None


def choose_image_mode(mode: str, image_root: Path, paths: list[str], doc_root: Path | None) -> str:
    """``local`` serves files through a local-files storage rooted at the dataset (the
    server must see the same disk under its document root); ``embed`` puts a PNG in the
    task; ``auto`` takes local when it can and the browser can show the files."""
    if mode not in IMAGE_MODES:
        raise FerdataError(f"--images {mode!r}: choose one of {', '.join(IMAGE_MODES)}")
    covered = doc_root is not None and _is_within(image_root.resolve(), doc_root)
    if mode == "local":
        if doc_root is None:
            raise FerdataError(f"--images local needs the server's document root; pass --document-root or set "
                               f"${ENV_DOCUMENT_ROOT} to the folder the server serves local files from")
        if not covered:
            raise FerdataError(f"--images local: the images under {image_root} are outside the document root "
                               f"{doc_root}; start Label Studio with a document root above them or use --images embed")
        return "local"
    if mode == "embed":
        return "embed"
    browser_ok = all(Path(p).suffix.lower() in BROWSER_SUFFIXES for p in paths)
    return "local" if covered and browser_ok else "embed"


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def ensure_local_storage(conn: Connection, project_id: int, image_root: Path) -> None:
    """A local-files import storage on the dataset folder: it is what allows the server to
    serve files below it to this project. It is never synced (that would import every file)."""
    root = str(image_root.resolve())
    with conn.calling("listing the project's local-files storages"):
        existing = conn.client.import_storage.local.list(project=project_id)
    if any(getattr(s, "path", None) == root for s in existing):
        return
    with conn.calling(f"adding a local-files storage on {root}"):
        conn.client.import_storage.local.create(project=project_id, path=root, use_blob_urls=False,
                                                title="ferdata images")


def local_url(image_root: Path, path: str, doc_root: Path) -> str:
    rel = (image_root.resolve() / path).relative_to(doc_root).as_posix()
    return LOCAL_FILES_PREFIX + quote(rel, safe="/")


def embedded_png(file: Path) -> str:
    """The image as a PNG data URI (any format ferdata reads; at most 512 px a side)."""
    from PIL import Image

    from ferdata.imageio import read_image

    img = Image.fromarray(read_image(file))
    img.thumbnail((EMBED_MAX_SIDE, EMBED_MAX_SIDE))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def local_files_param(url: str) -> str | None:
    """The ``d=`` path of a local-files URL, or ``None`` for any other kind of image value."""
    if not isinstance(url, str) or "/data/local-files/" not in url:
        return None
    values = parse_qs(urlparse(url).query).get("d")
    return values[0] if values else ""
