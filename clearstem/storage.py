"""Helpers over Django's storage API: web and workers share files only through it."""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import time
from pathlib import Path

from django.core.files.storage import default_storage

from sharedcore.media import extension_for


@contextlib.contextmanager
def local_path(name: str):
    """A local filesystem path for a stored file: the file itself when storage is local,
    otherwise a streamed temporary copy (deleted afterwards)."""
    try:
        yield default_storage.path(name)
        return
    except NotImplementedError:
        pass
    suffix = Path(name).suffix
    fd, tmp = tempfile.mkstemp(suffix=suffix, prefix="clearstem-")
    try:
        with os.fdopen(fd, "wb") as out, default_storage.open(name, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
        yield tmp
    finally:
        os.unlink(tmp)


def keep_once(name: str, content) -> str:
    """Keep the file-like `content` in storage as `name` unless a file of that name is already
    there; returns `name`. For derived files anyone may make on first use (previews, waveforms,
    excerpts), read by whoever finds the name. Why not `default_storage.save`: local storage
    creates the file and then writes it, so a request that finds the name in between reads half a
    file, and a racing second writer gets a copy under another name that nothing ever deletes.
    Here, locally, the bytes go to a temporary file in the same folder that is hard-linked to
    `name` only once complete (the link fails if `name` exists: first writer wins, no orphans;
    where the file system has no hard links, an atomic rename: last writer wins, same bytes). A
    writer killed mid-write leaves its `.partial-*` file in that folder (never under `name`).
    An object store (S3) shows an object only once its upload completed, so it is saved there;
    a racing writer's copy under another name (storage never overwrites) is deleted again."""
    try:
        final = Path(default_storage.path(name))
    except NotImplementedError:
        if not default_storage.exists(name):
            saved = default_storage.save(name, content)
            if saved != name:
                default_storage.delete(saved)
        return name
    if final.exists():
        return name
    dir_mode = getattr(default_storage, "directory_permissions_mode", None)
    final.parent.mkdir(parents=True, exist_ok=True, **({"mode": dir_mode} if dir_mode is not None else {}))
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".partial-", suffix=final.suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            if hasattr(content, "seek"):
                content.seek(0)
            shutil.copyfileobj(content, out, 1 << 20)
        file_mode = getattr(default_storage, "file_permissions_mode", None)
        os.chmod(tmp, file_mode if file_mode is not None else 0o644)
        try:
            os.link(tmp, final)
        except FileExistsError:  # a racing writer linked first: theirs stays
            pass
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            os.replace(tmp, final)  # no hard links here (CIFS, FUSE mounts): still never half a file
    finally:
        with contextlib.suppress(FileNotFoundError):  # renamed into place above
            os.unlink(tmp)
    return name


#: A `.partial-*` file untouched this long was left by a writer that died: every write to one
#: is a copy of an already finished local file (seconds, even for an hour's preview).
PARTIAL_MAX_AGE_S = 3600


def sweep_partials(older_than_s: float = PARTIAL_MAX_AGE_S) -> int:
    """Delete the temporaries of `keep_once` writers killed mid-write (untouched for
    `older_than_s`: a live writer's file is younger, as each write moves its mtime); returns how
    many. Walks the whole local storage, so the reconciler calls it now and then, not per write.
    Object stores (S3) keep nothing of an upload that never completed: nothing to sweep there."""
    try:
        root = Path(default_storage.path(""))
    except NotImplementedError:
        return 0
    cutoff = time.time() - older_than_s
    removed = 0
    for path in root.rglob(".partial-*"):
        with contextlib.suppress(FileNotFoundError):  # a racing sweep or the writer's own cleanup
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed


@contextlib.contextmanager
def scratch_folder(prefix: str, root: str | os.PathLike):
    """A private folder under `root` for one attempt's working files, removed when it ends.
    Under a known root, not the system's temporary folder, so that `sweep_scratch` can find the
    folders of processes killed before they could remove their own."""
    Path(root).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=prefix, dir=root) as tmp:
        yield Path(tmp)


def sweep_scratch(prefix: str, root: str | os.PathLike, older_than_s: float) -> int:
    """Remove `scratch_folder`s under `root` in which nothing was written for `older_than_s`
    (their writer died: a live one writes as it goes); returns how many."""
    root = Path(root)
    if not root.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    removed = 0
    for folder in root.glob(f"{prefix}*"):
        with contextlib.suppress(FileNotFoundError):  # a racing sweep or the owner's own cleanup
            if not folder.is_dir() or folder.is_symlink():
                continue
            newest = max([folder.stat().st_mtime, *(p.lstat().st_mtime for p in folder.rglob("*"))])
            if newest < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
    return removed


def replace_kept(name: str, content) -> str:
    """Replace a kept derived file that turned out damaged (`keep_once`'s file, written anew)."""
    default_storage.delete(name)
    return keep_once(name, content)


def delete_quietly(names) -> None:
    for name in names:
        with contextlib.suppress(Exception):
            default_storage.delete(name)


def storage_name(prefix: str, object_id, container: str) -> str:
    """`prefix/<id>.<ext>`, the extension from the container the decoder found, never from the
    client's file name (a `.wav` that is really an MP3 is stored as `.mp3`)."""
    return f"{prefix}/{object_id}{extension_for(container)}"
