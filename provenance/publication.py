"""Witnessed tree heads: every new signed tree head also leaves the database.

When a new head commits, its C2SP checkpoint is written to the default storage (the media folder
in the embedded default, the S3 bucket in production) as
`<CLEARSTEM_CHECKPOINT_PREFIX>/<size>-<first 16 hex digits of the root>.txt`. That prefix is
append-only as far as ClearStem goes: a name is written once, and a different text under an
existing name is refused and logged as an error. When CLEARSTEM_WITNESS_URLS lists external
witnesses, a worker POSTs the checkpoint to each (retried with backoff; off by default).

Someone who later rewrites the log with full database access cannot change what was published:
`manage.py verify_ledger --against CHECKPOINT` checks a consistency proof from any published
checkpoint to the current log (provenance.audit)."""
from __future__ import annotations

import logging
from pathlib import Path

import dramatiq
import requests
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from clearstem.storage import keep_once
from sharedcore.errors import DomainError, NotFound

from .models import TreeHead

log = logging.getLogger("clearstem.provenance")
PUBLISH_ACTOR = "publish_checkpoint"  # provenance.actors.publish_checkpoint, sent by name (no import cycle)
PUBLISH_QUEUE = "default"
WITNESS_TIMEOUT_S = 10


class CheckpointConflict(Exception):
    """A different checkpoint is already published under the same name: never overwritten."""


def checkpoint_name(size: int, root: bytes) -> str:
    return f"{settings.CLEARSTEM_CHECKPOINT_PREFIX.strip('/')}/{size}-{root.hex()[:16]}.txt"


def _read(name: str) -> bytes:
    with default_storage.open(name, "rb") as fh:
        return fh.read()


def publish_checkpoint(size: int, root: bytes, note: str) -> str:
    """Write the checkpoint under its name unless that name already holds exactly it; return the
    name. Raises CheckpointConflict when the name holds something else. Written with `keep_once`:
    the name appears only with the whole text, so a publisher racing this one (a commit's hook
    and a worker's retry) never reads a half-written file and takes it for a different text."""
    name, data = checkpoint_name(size, root), note.encode()
    if not default_storage.exists(name):
        keep_once(name, ContentFile(data))  # a racing publisher's copy is dropped, never a second name
    if _read(name) != data:
        raise CheckpointConflict(f"{name} is already published with a different text; it is never overwritten")
    return name


def post_to_witnesses(note: str, urls) -> list[str]:
    """POST the checkpoint to each witness; the failures, as sentences."""
    failures = []
    for url in urls:
        try:
            requests.post(url, data=note.encode(), headers={"Content-Type": "text/plain; charset=utf-8"},
                          timeout=WITNESS_TIMEOUT_S).raise_for_status()
        except requests.RequestException as exc:
            failures.append(f"{url}: {exc}")
    return failures


def _send_retry(size: int) -> None:
    try:
        broker = dramatiq.get_broker()
        broker.declare_queue(PUBLISH_QUEUE)
        broker.enqueue(dramatiq.Message(queue_name=PUBLISH_QUEUE, actor_name=PUBLISH_ACTOR, args=(size,),
                                        kwargs={}, options={}))
    except Exception:  # noqa: BLE001 - logged: the head stays in the database, the next heads publish as usual
        log.exception("could not queue the publication of the tree head at size %s", size)


def _publish_after_commit(size: int, root: bytes, note: str) -> None:
    try:
        publish_checkpoint(size, root, note)
    except CheckpointConflict as exc:
        log.error("checkpoint publication refused: %s", exc)  # an alarm, not something a retry fixes
    except Exception:  # noqa: BLE001 - the storage may be briefly down: a worker retries
        log.warning("publishing the tree head at size %s failed; a worker retries", size, exc_info=True)
        _send_retry(size)
        return
    if settings.CLEARSTEM_WITNESS_URLS:
        _send_retry(size)  # witnesses are slow and remote: a worker POSTs, with retries


def publish_on_commit(head: TreeHead) -> None:
    """Publish a new head once the transaction that stores it commits (never a head that did not)."""
    size, root, note = head.size, bytes(head.root_hash), head.checkpoint
    transaction.on_commit(lambda: _publish_after_commit(size, root, note))


def do_publish_checkpoint(size: int) -> None:
    """The worker's side: publish the stored head of `size` to storage and to every witness;
    raises (so Dramatiq retries with backoff) while any of them fails."""
    head = TreeHead.objects.filter(size=size).first()
    if head is None:
        return
    publish_checkpoint(head.size, bytes(head.root_hash), head.checkpoint)
    failures = post_to_witnesses(head.checkpoint, settings.CLEARSTEM_WITNESS_URLS)
    if failures:
        log.warning("witnesses did not take the tree head at size %s: %s", size, "; ".join(failures))
        raise DomainError("witness_unavailable", "; ".join(failures))


def load_checkpoint(source: str) -> str:
    """A checkpoint's text from an http(s) URL, a file, or a name in the publication prefix."""
    if source.startswith(("http://", "https://")):
        try:
            resp = requests.get(source, timeout=30)
            resp.raise_for_status()
        except requests.RequestException as exc:
            raise DomainError("checkpoint_unreachable", f"{source}: {exc}") from exc
        return resp.text
    path = Path(source)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    prefix = settings.CLEARSTEM_CHECKPOINT_PREFIX.strip("/") + "/"
    for name in (source, prefix + source):
        if ".." not in Path(name).parts and default_storage.exists(name):
            return _read(name).decode("utf-8")
    raise NotFound("checkpoint_not_found", f"{source}: no such URL, file, or name under {prefix}")
