"""The form's file picker: the service's files in a searchable multi-select, and an upload button.

A store may hold thousands of files, so the list shows at most :data:`MAX_SHOWN` of those matching the search
(the selected ones always, first) and the search runs in Python over labels made once per refresh. Uploaded
files are hashed in the kernel and sent only when the service lacks them, then selected.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import ipywidgets as widgets

from ..domain.hashing import sha256_bytes
from ..domain.models import FileInfo
from ..front.connection import Connection
from .form_fields import error_html
from .form_values import format_size

MAX_SHOWN: Final = 200
"""At most this many unselected matches in the list: enough to pick from, small enough to send on each keystroke."""
SHORT_HASH: Final = 8


def file_label(info: FileInfo) -> str:
    return f"{info.filename or '(no name)'} · {format_size(info.file_size)} · {info.file_hash[:SHORT_HASH]}"


class FilePicker(widgets.VBox):  # type: ignore[misc]
    """Search box, multi-select of stored files (name, size, short hash), select-shown/clear buttons, upload."""

    def __init__(self, connection: Connection, on_change: Callable[[], None] | None = None) -> None:
        self.connection = connection
        self.on_change = on_change
        self.files: list[FileInfo] = []
        self._labels: dict[str, str] = {}
        self._names: dict[str, str] = {}
        self._keys: dict[str, str] = {}
        self._order: dict[str, int] = {}
        self._selected: list[str] = []
        self._syncing = self._counting = False
        self._match_count = self._hidden = 0
        #: The names of the files uploaded with this picker's button, which its "Upload (N)" counts.
        self.uploaded: list[str] = []
        self.search = widgets.Text(
            placeholder="search by name or hash", continuous_update=True, layout={"width": "260px"}
        )
        self.search.add_class("dshpc-form-file-search")
        self.select = widgets.SelectMultiple(options=[], rows=8, layout={"width": "560px"})
        self.select.add_class("dshpc-form-files")
        self.select_shown = widgets.Button(
            description="select shown", layout={"width": "110px"}, tooltip="select every file the search shows"
        )
        self.clear = widgets.Button(description="clear", layout={"width": "70px"}, tooltip="select no file")
        self.upload = widgets.FileUpload(
            multiple=True, description="Upload", tooltip="hashed here; sent only when the service lacks it"
        )
        self.upload.add_class("dshpc-form-upload")
        self.info = widgets.HTML()
        self.upload_status = widgets.HTML()
        self.error = widgets.HTML()
        super().__init__(
            [
                widgets.HBox([self.search, self.select_shown, self.clear, self.upload]),
                self.select,
                widgets.HBox([self.info, self.upload_status]),
                self.error,
            ]
        )
        self.search.observe(lambda _: self.show(), "value")
        self.select.observe(self._picked, "value")
        self.select_shown.on_click(lambda _: self.choose([*self._selected, *(v for _, v in self.select.options)]))
        self.clear.on_click(lambda _: self.choose([]))
        self.upload.observe(self._uploaded, "value")
        self.reload()

    # --- the list ----------------------------------------------------------------------------------------

    def reload(self) -> None:
        """Ask the service for its files again (one call) and show them; the selection is kept."""
        self.files = sorted(self.connection.list_files(), key=lambda f: ((f.filename or "").lower(), f.file_hash))
        self._labels = {f.file_hash: file_label(f) for f in self.files}
        self._names = {f.file_hash: f"{f.filename or '(no name)'} {f.file_hash[:SHORT_HASH]}" for f in self.files}
        self._keys = {f.file_hash: f"{f.filename or ''} {f.file_hash}".lower() for f in self.files}
        self._order = {f.file_hash: i for i, f in enumerate(self.files)}
        self._selected = [h for h in self._selected if h in self._labels]
        self.show()

    def matches(self) -> list[str]:
        """Hashes of the files whose name or hash holds every word of the search, in list order."""
        words = self.search.value.lower().split()
        return [h for h, key in self._keys.items() if all(w in key for w in words)]

    def show(self) -> None:
        """Put the selected files and the first :data:`MAX_SHOWN` other matches in the list."""
        matches = self.matches()
        chosen = set(self._selected)
        unselected = [h for h in matches if h not in chosen]
        others = unselected[:MAX_SHOWN]
        shown = [*self._selected, *others]
        self._syncing = True
        try:
            with self.select.hold_sync():
                self.select.options = [(self._labels[h], h) for h in shown]
                self.select.value = tuple(self._selected)
        finally:
            self._syncing = self._counting = False
        self._match_count, self._hidden = len(matches), len(unselected) - len(others)
        self._show_info()

    def _show_info(self) -> None:
        more = f" · {self._hidden} more match: refine the search" if self._hidden > 0 else ""
        self.info.value = (
            f'<span style="color:#666">{len(self._selected)} selected · {self._match_count} of {len(self.files)} '
            f"files match{more}</span>"
        )

    def name_of(self, file_hash: str) -> str:
        """A file's name and short hash (the short hash alone for a file the service does not list)."""
        return self._names.get(file_hash, file_hash[:SHORT_HASH])

    def knows(self, file_hash: str) -> bool:
        """Whether the service listed this file when this picker last asked."""
        return file_hash in self._names

    @property
    def selected(self) -> list[str]:
        """The hashes of the selected files, in list order (by name)."""
        return list(self._selected)

    def choose(self, hashes: Iterable[str]) -> None:
        """Select these files (known hashes only) and show the list again."""
        known = {h.lower() for h in hashes} & set(self._labels)
        self._selected = sorted(known, key=self._order.__getitem__)
        self.show()
        self._changed()

    def _picked(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        self._selected = sorted(change["new"], key=self._order.__getitem__)
        self._show_info()
        self._changed()

    def _changed(self) -> None:
        self.error.value = ""
        if self.on_change is not None:
            self.on_change()

    def set_error(self, message: str) -> None:
        self.error.value = error_html(message)

    # --- uploads -----------------------------------------------------------------------------------------

    def add_content(self, items: Sequence[tuple[str, bytes]]) -> list[str]:
        """Hash (name, content) pairs, upload the ones the service lacks (one check for all), select them all;
        their hashes. What the upload button calls, and usable from code."""
        hashes = [sha256_bytes(content) for _, content in items]
        missing = set(self.connection.check_hashes(hashes).missing_hashes) if hashes else set()
        notes = []
        for (name, content), digest in zip(items, hashes, strict=True):
            if digest in missing:
                self.connection.upload_file(content, file_hash=digest, filename=name)
                missing.discard(digest)
                notes.append(f"{html.escape(name)} uploaded")
            else:
                notes.append(f"{html.escape(name)} already stored")
        self.uploaded.extend(name for name, _ in items)
        self._count_uploads()
        self.reload()
        self.choose([*self._selected, *hashes])
        self.upload_status.value = f'<span style="color:#1e7d32">{"; ".join(notes)}</span>' if notes else ""
        return hashes

    def _uploaded(self, change: dict[str, Any]) -> None:
        if self._counting:
            return
        items = [(str(item["name"]), bytes(item["content"])) for item in change["new"]]
        if not items:
            return
        try:
            self.add_content(items)
        except Exception as exc:  # shown beside the button: a callback's traceback would reach no one
            self.set_error(f"upload failed: {exc}")
        finally:
            self._count_uploads()

    def _count_uploads(self) -> None:
        """Drop the bytes from the widget but keep one empty entry per file uploaded so far: the button's label
        is its description and the number of entries, so it reads "Upload (N)" for the N files sent with it
        (emptied, it would read "Upload (0)" after every upload)."""
        empty = datetime.fromtimestamp(0, UTC)
        entries = tuple(
            {"name": name, "type": "", "size": 0, "content": memoryview(b""), "last_modified": empty}
            for name in self.uploaded
        )
        self._counting = True
        try:
            self.upload.value = entries
        finally:
            self._counting = False


__all__ = ["MAX_SHOWN", "FilePicker", "file_label"]
