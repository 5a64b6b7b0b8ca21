"""Streaming writer of wide video-level tables (Parquet keyed by ``video_id``).

Aggregates are produced block by block; their tables can be wider (5,120 float32 columns for
min-max pooling of a 1,280-d embedding) and longer than memory comfortably holds at once. The
writer buffers rows into large row groups (Parquet pays per column chunk, so few large groups
write ~10x faster than many small ones), writes each group in a background thread while the
next blocks are computed, and renames the finished file into place, so a killed run never
leaves a half-written table behind. Memory: two buffers of ``group_bytes`` (one being filled,
one being written), whatever the number of rows.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from ...store.failures import storage_errors

__all__ = ["VideoTableWriter"]


class VideoTableWriter:
    """Write ``video_id`` + float32 feature columns to ``path``, block by block.

    Args:
        path: the final Parquet path (written to ``path.tmp`` until :meth:`close`).
        columns: feature column names, in order.
        int_columns: those of ``columns`` stored as int32 (counts such as ``n_valid``).
        group_bytes: approximate bytes of float data per row group.

    Use as a context manager, or call :meth:`close` (success) / :meth:`abort` (failure).
    """

    def __init__(self, path: Path, columns: Sequence[str], int_columns: Sequence[str] = (),
                 group_bytes: int = 64 << 20):
        import pyarrow as pa

        self.path = Path(path)
        self.tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        self.columns = list(columns)
        if len(set(self.columns)) != len(self.columns) or "video_id" in self.columns:
            raise ValueError("feature columns must be unique and must not include video_id")
        self.schema = pa.schema([("video_id", pa.string())] +
                                [(c, pa.int32() if c in set(int_columns) else pa.float32()) for c in self.columns])
        self.group_rows = int(np.clip(group_bytes // (4 * max(1, len(self.columns))), 1024, 65536))
        self.rows = 0
        self._ids: list = []
        self._buffer: np.ndarray | None = None    # (columns, group_rows): filled, then handed to the writer thread
        self._writing: np.ndarray | None = None   # the buffer the writer thread has
        self._spare: np.ndarray | None = None     # a written buffer, ready to be filled again
        self._held = 0
        self._writer = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jungle-parquet")
        self._pending: Future | None = None

    def write(self, video_ids: Sequence[str], values: np.ndarray) -> None:
        """Append rows: ``values`` (len(video_ids), len(columns)).

        Raises:
            DiskFull, WorkspaceNotWritable: the file cannot be written (see :mod:`jungle.store.failures`).
        """
        values = np.asarray(values, dtype=np.float32)
        if values.shape != (len(video_ids), len(self.columns)):
            raise ValueError(f"expected {(len(video_ids), len(self.columns))} values, got {values.shape}")
        with storage_errors(path=self.tmp):
            self._append(video_ids, values)

    def _append(self, video_ids: Sequence[str], values: np.ndarray) -> None:
        done = 0
        while done < len(values):
            if self._buffer is None:
                self._buffer = self._spare if self._spare is not None else \
                    np.empty((len(self.columns), self.group_rows), dtype=np.float32)
                self._spare = None
            take = min(len(values) - done, self.group_rows - self._held)
            self._buffer[:, self._held:self._held + take] = values[done:done + take].T
            self._ids.extend(video_ids[done:done + take])
            self._held += take
            done += take
            if self._held == self.group_rows:
                self._flush()

    def _flush(self) -> None:
        """Hand the filled buffer to the writer thread (after the previous group is written)."""
        if not self._held:
            return
        self._wait()
        buffer, ids, held = self._buffer, self._ids, self._held
        self._buffer, self._ids, self._held = None, [], 0
        self._pending = self._pool.submit(self._write_group, ids, buffer[:, :held])
        self._writing = buffer

    def _wait(self) -> None:
        if self._pending is not None:
            self._pending.result()
            self._pending = None
            self._spare, self._writing = self._writing, None

    def _write_group(self, ids: np.ndarray, by_column: np.ndarray) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.tmp, self.schema, compression="lz4", use_dictionary=["video_id"],
                                            write_statistics=["video_id"])
        columns = [pa.array(ids, pa.string())]
        for values, field in zip(by_column, list(self.schema)[1:]):
            columns.append(pa.array(values if field.type == pa.float32() else values.astype(np.int32)))
        table = pa.Table.from_arrays(columns, schema=self.schema)
        self._writer.write_table(table)
        self.rows += len(ids)

    def close(self) -> int:
        """Finish the file (an empty table when no rows came) and move it into place; return the row count.

        Raises:
            DiskFull, WorkspaceNotWritable: the file cannot be written (see :mod:`jungle.store.failures`).
        """
        try:
            with storage_errors(path=self.tmp):
                return self._finish()
        except BaseException:
            self.tmp.unlink(missing_ok=True)  # no half-written (or 0-byte) table left behind
            raise

    def _finish(self) -> int:
        try:
            self._flush()
            self._wait()
            if self._writer is None:
                import pyarrow.parquet as pq

                self.path.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(self.schema.empty_table(), self.tmp)
            else:
                self._writer.close()
            self.tmp.replace(self.path)
        finally:
            self._pool.shutdown(wait=True)
        return self.rows

    def abort(self) -> None:
        """Drop what was written."""
        try:
            self._wait()
        except Exception:  # the failure being handled matters more than this one
            pass
        if self._writer is not None:
            try:
                self._writer.close()
            except OSError:  # e.g. the full disk that made the run fail: the file is dropped anyway
                pass
        self._pool.shutdown(wait=True)
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoTableWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
