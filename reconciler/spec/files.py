"""Reading an input file someone else may have chosen (a spec in a pull request, a plan file,
a schema file): a regular file only (a FIFO would hang the run, a device never end), at most
`MAX_INPUT_BYTES`, UTF-8 text, and every failure one line with the file (and line) that never
quotes the file's content.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import ReconcilerError

MAX_INPUT_BYTES = 16 * 1024 * 1024   # documented (README, SECURITY.md): a 12,000-index spec is ~2 MB


def read_input(path: str | Path, what: str = "file", limit: int = MAX_INPUT_BYTES,
               error: type[ReconcilerError] = ReconcilerError) -> str:
    """The text of `path`, or `error` with one line saying why not."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; refused just below anyway
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise error(f"{path}: cannot read the {what}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else \
                "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else \
                "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file"
            raise error(f"{path}: the {what} is {kind}; give a regular file")
        if st.st_size > limit:
            raise error(f"{path}: the {what} is {st.st_size:,} bytes; at most {limit:,} are read")
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise error(f"{path}: the {what} is over {limit:,} bytes; at most {limit:,} are read")
    except OSError as e:
        raise error(f"{path}: cannot read the {what}: {e.strerror}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise error(f"{path}:{line}: the {what} is not UTF-8 text (byte 0x{data[e.start]:02x} at column "
                    f"{column})") from None


def write_output(path: str | Path, text: str, what: str = "file") -> None:
    """Write `text` to `path` without following a symlink or writing into anything but a
    regular file: a new file in the same directory, then renamed over the old one (so a link
    planted at `path`, or a hard link to another file, is replaced, never written through)."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise ReconcilerError(f"{path}: cannot write the {what}: {e.strerror}") from None
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise ReconcilerError(f"{path}: is a symbolic link; refusing to write the {what} through it",
                              "give the path of a regular file")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ReconcilerError(f"{path}: is not a regular file; refusing to write the {what} there")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_CLOEXEC", 0), 0o644 if st is None else stat.S_IMODE(st.st_mode))
        try:
            data = memoryview(text.encode("utf-8"))
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ReconcilerError(f"{path}: cannot write the {what}: {e.strerror}") from None
