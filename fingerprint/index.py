"""The catalog's inverted index: persistent, incremental, shared by processes through mmap.

Layout (a directory; plain numpy files, no Django):

    MANIFEST.json          {"generation", "segments": [...], "tombstones": "tomb-N.npy" | null}
    seg-<gen>/values.npy   uint32, sorted item values               4 bytes / item
    seg-<gen>/pos.npy      uint32, each value's item position in items.npy   4 bytes / item
    seg-<gen>/items.npy    uint32, every recording's items (verification)  4 bytes / item
    seg-<gen>/keys.npy     int64 recording keys;  starts.npy  int64 item starts per recording
    tomb-<gen>.npy         int64 keys removed since their segment was written
    LOCK                   flock: one writer at a time

Like a log-structured merge tree: adding recordings writes a new small segment, removing them
writes a tombstone list, and `compact()` (run automatically once segments pile up) merges
everything live into one segment. Every write lands in a fresh file and becomes visible by an
atomic rename of MANIFEST.json, so readers never see a half-written index and need no lock;
they memory-map the segments (the page cache is shared by every worker process) and reopen
only when the manifest changed. Removed segment files stay readable by processes that still
map them (POSIX unlink semantics).

A posting's position in items.npy says its recording and offset (`fingerprint.timeline`: the
recordings' items end to end); a segment holds at most 2 ** 32 items (~148,000 h), and the
store cuts larger sets into several segments. Segments saved before stop 36 (doc.npy, uint32,
and off.npy, uint16, instead of pos.npy; items past 65535 were not indexed) are converted in
memory when loaded, and rewritten in this layout by `IndexStore.upgrade`.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .timeline import MAX_POSITIONS, Timeline, cut, starts_of

#: Item values held by more recordings than this are skipped in lookups (silence, pure tones).
MAX_POSTINGS_PER_VALUE = 5000
#: Segments beyond this are merged on the next write (`IndexStore.compact`).
MAX_SEGMENTS = 8


class Segment:
    """An immutable inverted index over a set of recordings (in memory or memory-mapped)."""

    FILES = ("values", "pos", "items", "keys", "starts")
    LEGACY = ("doc", "off")
    #: Items a segment holds (its timeline).
    MAX_ITEMS = MAX_POSITIONS
    #: log2 of the items per entry of the table that finds an item's recording (~16 s).
    BLOCK_BITS = 7
    #: A merge holds ~20 bytes per item in memory (1.5 GB for a 100k-recording store): cheap
    #: enough to leave a bulk-loaded store in one segment (`IndexStore.settle`).
    MERGE_AFTER_BULK = True

    def __init__(self, arrays: dict[str, np.ndarray]):
        #: saved in an older layout and converted in memory (`IndexStore.upgrade` rewrites it)
        self.legacy = "pos" not in arrays
        if self.legacy:
            doc = np.asarray(arrays["doc"]).astype(np.int64)
            arrays = {**arrays, "pos": (np.asarray(arrays["starts"])[doc] + arrays["off"]).astype(np.uint32)}
        self.values = arrays["values"]
        self.pos = arrays["pos"]
        self.items_all = arrays["items"]
        self.keys = arrays["keys"]
        self.starts = arrays["starts"]
        self._key_pos = {int(k): i for i, k in enumerate(self.keys)}
        self._timeline = Timeline(self.starts, self.BLOCK_BITS)
        self.name: str | None = None  # its directory, once saved

    @classmethod
    def parts(cls, refs: list[tuple[int, np.ndarray]]) -> list[list]:
        """`refs` in order, cut into groups that fit one segment each."""
        return [refs[s] for s in cut([np.asarray(items).size for _, items in refs], cls.MAX_ITEMS)]

    @classmethod
    def build(cls, refs: list[tuple[int, np.ndarray]]) -> Segment:
        keys = np.array([int(k) for k, _ in refs], dtype=np.int64)
        arrays = [np.asarray(items, dtype=np.uint32) for _, items in refs]
        starts = starts_of([a.size for a in arrays])
        if starts[-1] > cls.MAX_ITEMS:
            raise ValueError(f"{starts[-1]} items do not fit one segment ({cls.MAX_ITEMS}): use parts()")
        items = np.concatenate(arrays) if arrays else np.empty(0, np.uint32)
        order = np.argsort(items, kind="stable")
        return cls({"values": items[order], "pos": order.astype(np.uint32), "items": items,
                    "keys": keys, "starts": starts})

    @classmethod
    def load(cls, path: Path) -> Segment:
        present = [n for n in cls.FILES + cls.LEGACY if (path / f"{n}.npy").exists()]
        seg = cls({name: np.load(path / f"{name}.npy", mmap_mode="r") for name in present})
        seg.name = path.name
        return seg

    def save(self, path: Path) -> None:
        path.mkdir(parents=True)
        for name, arr in zip(self.FILES, (self.values, self.pos, self.items_all, self.keys, self.starts)):
            np.save(path / f"{name}.npy", np.ascontiguousarray(arr))

    def __len__(self) -> int:
        return int(self.keys.size)

    @property
    def entries(self) -> int:
        """Postings (indexed items) in the segment."""
        return int(self.pos.size)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.values, self.pos, self.items_all, self.keys, self.starts))

    def has(self, key: int) -> bool:
        return key in self._key_pos

    def items(self, key: int) -> np.ndarray:
        i = self._key_pos[key]
        return np.asarray(self.items_all[self.starts[i]:self.starts[i + 1]])

    def refs(self, exclude: set[int]) -> list[tuple[int, np.ndarray]]:
        return [(int(k), self.items(int(k))) for k in self.keys if int(k) not in exclude]

    def lookup_local(self, query: np.ndarray):
        """Exact-value hits: (segment-local doc numbers, query positions, reference offsets)."""
        lo = np.searchsorted(self.values, query, side="left")
        hi = np.searchsorted(self.values, query, side="right")
        counts = hi - lo
        keep = (counts > 0) & (counts <= MAX_POSTINGS_PER_VALUE)
        if not keep.any():
            empty = np.empty(0, np.int64)
            return empty, empty, empty
        counts = counts[keep]
        q_idx = np.repeat(np.flatnonzero(keep), counts)
        first = np.repeat(lo[keep] - np.cumsum(counts) + counts, counts)
        doc, off = self._timeline.locate(np.asarray(self.pos[first + np.arange(q_idx.size)]))
        return doc, q_idx, off


class MultiIndex:
    """Segments minus tombstones, queried as one index (what the matcher sees).

    Segments of any class with the same protocol as `Segment` (`keys`, `entries`, `has`,
    `lookup_local`, `refs`, `build`, `load`, `save`, `nbytes`; optionally `parts`, which cuts
    a set of recordings into groups that fit one segment each): the landmark index
    (`fingerprint.landmarks.LandmarkIndex`) is stored and merged by the same code."""

    def __init__(self, segments: list[Segment], tombstones: set[int] | None = None):
        self.segments = segments
        self.tombstones = set(tombstones or ())
        self._dead = []
        for seg in segments:
            dead = np.isin(seg.keys, np.fromiter(self.tombstones, np.int64, len(self.tombstones)))
            self._dead.append(dead if dead.any() else None)

    @classmethod
    def build(cls, refs: list[tuple[int, np.ndarray]], segment_cls=Segment) -> MultiIndex:
        return cls([segment_cls.build(refs)])

    def __len__(self) -> int:
        return sum(len(s) - (int(dead.sum()) if dead is not None else 0) for s, dead in zip(self.segments, self._dead))

    def keys(self) -> set[int]:
        return {int(k) for s in self.segments for k in s.keys} - self.tombstones

    def items_count(self) -> int:
        return sum(s.entries for s in self.segments)

    def nbytes(self) -> int:
        return sum(s.nbytes() for s in self.segments)

    def segment_of(self, key: int):
        for seg in self.segments:
            if seg.has(key):
                return seg
        raise KeyError(key)

    def items(self, key: int) -> np.ndarray:
        return self.segment_of(key).items(key)

    def lookup(self, query: np.ndarray, **bounds):
        """(recording keys, query positions, reference offsets) of every exact-value hit;
        `bounds` go to the segments' lookup (the landmark index's `hits_per_hash`, which its
        `lookup_together` applies to all the segments at once)."""
        parts = []
        together = getattr(type(self.segments[0]), "lookup_together", None) if self.segments else None
        local = (together(self.segments, query, **bounds) if together is not None
                 else [seg.lookup_local(query, **bounds) for seg in self.segments])
        for seg, dead, (doc, q, r) in zip(self.segments, self._dead, local):
            if dead is not None and doc.size:
                alive = ~dead[doc]
                doc, q, r = doc[alive], q[alive], r[alive]
            parts.append((seg.keys[doc], q, r))
        if not parts:
            empty = np.empty(0, np.int64)
            return empty, empty, empty
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


class IndexStore:
    """A directory holding a MultiIndex on disk; see the module docstring."""

    def __init__(self, path: str | os.PathLike, segment_cls=Segment):
        self.segment_cls = segment_cls
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._manifest_stat = None
        self._index: MultiIndex | None = None

    # -- reading ---------------------------------------------------------------------------
    def _read_manifest(self) -> dict:
        try:
            return json.loads((self.path / "MANIFEST.json").read_text())
        except FileNotFoundError:
            return {"generation": 0, "segments": [], "tombstones": None}

    def _stat(self):
        try:
            st = os.stat(self.path / "MANIFEST.json")
            return (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            return None

    def index(self) -> MultiIndex:
        """The current index; reopened only when another process (or this one) changed it."""
        for _attempt in range(5):
            stat = self._stat()
            if self._index is not None and stat == self._manifest_stat:
                return self._index
            manifest = self._read_manifest()
            try:
                cache = {s.name: s for s in self._index.segments} if self._index else {}
                segments = []
                for name in manifest["segments"]:
                    segments.append(cache.get(name) or self.segment_cls.load(self.path / name))
                tomb = manifest.get("tombstones")
                tombstones = set(np.load(self.path / tomb).tolist()) if tomb else set()
            except FileNotFoundError:  # a compaction removed a file between manifest and open
                continue
            self._index = MultiIndex(segments, tombstones)
            self._manifest_stat = stat
            return self._index
        raise RuntimeError(f"fingerprint index at {self.path} keeps changing under the reader")

    def generation(self) -> int:
        return int(self._read_manifest()["generation"])

    def meta(self) -> dict:
        return self._read_manifest().get("meta", {})

    # -- writing ---------------------------------------------------------------------------
    @contextmanager
    def write_lock(self):
        with open(self.path / "LOCK", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def apply(self, add: list[tuple] = (), remove: set[int] = frozenset(), meta: dict | None = None):
        """Add and remove recordings in one new generation (call under `write_lock`); `add` holds
        (key, payload) as the segment class builds them (Chromaprint items; landmark prints)."""
        manifest = self._read_manifest()
        gen = int(manifest["generation"]) + 1
        segments = list(manifest["segments"])
        tomb_name = manifest.get("tombstones")
        tombstones = set(np.load(self.path / tomb_name).tolist()) if tomb_name else set()
        present = self.index().keys() if (remove or add) else set()
        add = [(int(k), *rest) for k, *rest in add if int(k) not in present]
        if add:
            segments += self._write_segments(gen, add)
        new_tomb = None
        tombstones |= {int(k) for k in remove if int(k) in present}
        if tombstones:
            new_tomb = f"tomb-{gen:08d}.npy"
            np.save(self.path / new_tomb, np.array(sorted(tombstones), dtype=np.int64))
        self._publish(gen, segments, new_tomb, meta if meta is not None else manifest.get("meta", {}))
        if len(tombstones) > max(1000, len(present) // 10):
            self.compact()
        elif len(segments) > MAX_SEGMENTS:
            self.compact(tiered=True)

    def settle(self) -> None:
        """After a bulk load (call under `write_lock`): everything into one segment, where the
        segment class merges in memory cheaply (`MERGE_AFTER_BULK`); a first build in batches
        otherwise leaves up to MAX_SEGMENTS segments, each a search per lookup."""
        if getattr(self.segment_cls, "MERGE_AFTER_BULK", False) and len(self.index().segments) > 1:
            self.compact()

    def upgrade(self) -> bool:
        """Rewrite the segments saved in an older layout (converted in memory by every process
        that opens them) in the current one, each on its own — a merge of them all could need
        more memory than any of their builds did; whether there were any."""
        if not any(getattr(seg, "legacy", False) for seg in self.index().segments):
            return False
        with self.write_lock():
            legacy = [seg.name for seg in self.index().segments if getattr(seg, "legacy", False)]
            for name in legacy:  # none left if another process did it while this one waited
                segments = self.index().segments
                self._merge([seg for seg in segments if seg.name == name],
                            [seg for seg in segments if seg.name != name], drop_tombstones=False)
        return bool(legacy)

    def compact(self, tiered: bool = False) -> None:
        """Merge segments (call under `write_lock`).

        Full: every live recording into one segment, tombstones dropped. Tiered: only the
        small segments are merged — each holding less than a quarter of the postings — so
        adding recordings one at a time does not rewrite a large base segment each time
        (size-tiered, as in log-structured merge trees), and at most five segments remain.
        Every segment costs each lookup a search of its own: the 7 Chromaprint stores of 100k
        recordings, 8 segments each, took 46 ms per 15 s query; in one segment each, 14 ms
        (stop 36; README, "At scale").
        """
        merge = list(self.index().segments)
        keep: list[Segment] = []
        if tiered:
            total = sum(seg.entries for seg in merge)
            keep = [seg for seg in merge if seg.entries * 4 >= total]
            merge = [seg for seg in merge if seg.entries * 4 < total]
            if len(merge) < 2:
                return
        self._merge(merge, keep, drop_tombstones=not tiered)

    def _merge(self, merge: list, keep: list, drop_tombstones: bool) -> None:
        """One new generation: the live recordings of `merge` in new segments, `keep` as they
        are; the tombstone list dropped (only when nothing is kept) or carried over."""
        manifest = self._read_manifest()
        index = self.index()
        gen = int(manifest["generation"]) + 1
        refs = [r for seg in merge for r in seg.refs(index.tombstones)]
        segments = [seg.name for seg in keep]
        if refs:
            segments += self._write_segments(gen, refs)
        tomb = None if drop_tombstones else manifest.get("tombstones")
        self._publish(gen, segments, tomb, manifest.get("meta", {}))

    def _write_segments(self, gen: int, refs: list[tuple]) -> list[str]:
        """Build segments in temporary directories and rename them into place (never
        half-written); one, unless the segment class cuts `refs` into `parts`."""
        groups = self.segment_cls.parts(refs) if hasattr(self.segment_cls, "parts") else [refs]
        names = []
        for i, group in enumerate(groups):
            name = f"seg-{gen:08d}" + (f"-{i}" if i else "")
            tmp = Path(tempfile.mkdtemp(dir=self.path, prefix=".tmp-"))
            shutil.rmtree(tmp)
            self.segment_cls.build(group).save(tmp)
            os.rename(tmp, self.path / name)
            names.append(name)
        return names

    def _publish(self, gen: int, segments: list[str], tombstones: str | None, meta: dict) -> None:
        manifest = {"generation": gen, "segments": segments, "tombstones": tombstones, "meta": meta}
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".manifest-")
        with os.fdopen(fd, "w") as fh:
            json.dump(manifest, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path / "MANIFEST.json")
        self._gc(set(segments) | ({tombstones} if tombstones else set()))

    def _gc(self, live: set[str]) -> None:
        for entry in self.path.iterdir():
            if (entry.name.startswith(("seg-", "tomb-")) and entry.name not in live) or entry.name.startswith(".tmp-"):
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)
