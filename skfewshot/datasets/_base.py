"""Shared helpers for the dataset loaders: data home, downloads and caches."""

# License: BSD-3-Clause

import hashlib
import http.client
import os
import re
import secrets
import stat
import urllib.error
import urllib.request
import warnings
import zipfile

import numpy as np

from .._files import remove_abandoned_temporaries, write_atomically
from .._param_validation import Integer

__all__ = ["get_data_home"]

#: Seconds to wait on the network (per connection attempt and per read)
#: before a download is abandoned.
_DOWNLOAD_TIMEOUT = 60.0

#: Bytes read from the network per iteration.
_CHUNK_SIZE = 1 << 20


class DownloadError(OSError):
    """Raised when a remote dataset file cannot be downloaded."""


class ChecksumError(DownloadError, ValueError):
    """Raised when a downloaded file does not have the expected checksum."""


def get_data_home(data_home=None) -> str:
    """Return the path of the skfewshot data directory.

    This folder is where the dataset loaders look for (and download) their
    archives, so that the data is downloaded only once.

    By default the data directory is a folder named ``skfewshot_data`` in the
    user home folder. It can be set with the ``SKFEWSHOT_DATA`` environment
    variable, or programmatically by giving an explicit folder path. The
    ``'~'`` symbol is expanded to the user home folder. A relative path is
    returned as given, i.e. it is relative to the current working directory.

    Unlike :func:`sklearn.datasets.get_data_home`, the folder is **not**
    created: the data home may be a read-only location that already holds the
    archives. Loaders create it only when they have something to write there.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The path to the skfewshot data directory. If `None`, the value of the
        ``SKFEWSHOT_DATA`` environment variable is used when it is set and not
        empty, and ``~/skfewshot_data`` otherwise.

    Returns
    -------
    data_home : str
        The path to the skfewshot data directory.

    Examples
    --------
    >>> from skfewshot.datasets import get_data_home
    >>> get_data_home("/srv/datasets")
    '/srv/datasets'
    """
    if data_home is None:
        data_home = os.environ.get("SKFEWSHOT_DATA") or os.path.join("~", "skfewshot_data")
    return os.path.expanduser(os.fspath(data_home))


def _check_image_size(image_size):
    """Return `image_size` as an int, or raise a ValueError if it is not positive."""
    return Integer(1).check(image_size, "image_size")


def _get_fallback_cache_home() -> str:
    """Return the cache folder used when the data home is not writable.

    This is ``$SKFEWSHOT_CACHE`` when that variable is set and not empty, and
    ``~/.cache/skfewshot`` otherwise. The folder is not created.
    """
    cache_home = os.environ.get("SKFEWSHOT_CACHE") or os.path.join("~", ".cache", "skfewshot")
    return os.path.expanduser(cache_home)


def _create_temp_file(path, suffix):
    """Create a new hidden temporary file next to `path`, for writing.

    Unlike :func:`tempfile.mkstemp`, whose files are private (mode 0o600),
    the file gets the usual permissions allowed by the umask, which it keeps
    once moved to `path`. Returns ``(file descriptor, temporary path)``.
    """
    folder, name = os.path.split(os.path.abspath(path))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temp_path = os.path.join(folder, f".{name}.{secrets.token_hex(4)}{suffix}")
        try:
            return os.open(temp_path, flags, 0o666), temp_path
        except FileExistsError:
            continue


def _is_read_only_location(folder):
    """Whether files cannot, or should not, be created in `folder`.

    `folder` need not exist: its nearest existing ancestor is checked. Besides
    folders the process cannot write to, folders without any write
    permission bit (such as ``dr-xr-xr-x``) count as read-only, so that a
    data folder shared read-only is left untouched even by root, who could
    write to it anyway.
    """
    folder = os.path.abspath(folder)
    while not os.path.exists(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    try:
        mode = os.stat(folder).st_mode
    except OSError:
        return True
    return not (stat.S_ISDIR(mode) and mode & 0o222 and os.access(folder, os.W_OK | os.X_OK))


def _remove_if_exists(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


# urllib.error.URLError (and HTTPError), socket timeouts and connection errors
# are OSError subclasses; http.client.IncompleteRead & co. are not.
_NETWORK_ERRORS = (OSError, http.client.HTTPException)


def _download_error(url, path, exc, manual):
    if isinstance(exc, urllib.error.HTTPError):
        exc.close()  # it holds the HTTP response, and with it the socket
    if isinstance(exc, urllib.error.HTTPError):
        reason = f"HTTP error {exc.code} ({exc.reason})"
    elif isinstance(exc, urllib.error.URLError):
        reason = exc.reason
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return DownloadError(
        f"Failed to download {url} to {path!r}: {reason}. Check your network "
        f"connection and try again. {manual}"
    )


def _fetch_remote(url, path, md5, *, timeout=_DOWNLOAD_TIMEOUT):
    """Download `url` to `path` atomically and verify its md5 checksum.

    The file is first downloaded into a temporary file in the folder of
    `path` (created if needed) and only moved to `path` with
    :func:`os.replace` once it is complete and its checksum matches. Another
    process can therefore never observe a partial file at `path`, and a
    failed download leaves nothing behind.

    Parameters
    ----------
    url : str
        The URL to download.

    path : str or path-like
        Where to store the downloaded file. An existing file is overwritten.

    md5 : str or None
        The expected hexadecimal md5 digest of the file. If `None`, the
        checksum is not verified.

    timeout : float, default=60.0
        Seconds to wait on the network before giving up.

    Returns
    -------
    path : str
        The path of the downloaded file.

    Raises
    ------
    DownloadError
        If the file cannot be downloaded (network failure, HTTP error, folder
        of `path` not writable). The
        message gives the URL and the target path, where the file can also be
        placed manually. It is a subclass of :class:`OSError`.

    ChecksumError
        If the downloaded file does not have the expected md5 digest. It is a
        subclass of both :class:`OSError` and :class:`ValueError`.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    manual = (
        f"You can download {url} by other means and place it at {path!r}"
        + (f" (its md5 should be {md5})" if md5 is not None else "")
        + "; files found there are used as they are, without download."
    )

    try:
        os.makedirs(folder, exist_ok=True)
        fd, temp_path = _create_temp_file(path, suffix=".part")
    except OSError as exc:
        raise DownloadError(
            f"Cannot write to {folder!r} to download {url}: {exc}. Use a "
            "writable data folder (the data_home parameter or the "
            f"SKFEWSHOT_DATA environment variable). {manual}"
        ) from exc
    try:
        hasher = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out:
            # Only network errors are turned into DownloadError: errors while
            # writing `out` (disk full, ...) propagate unchanged.
            try:
                response = urllib.request.urlopen(url, timeout=timeout)
            except _NETWORK_ERRORS as exc:
                raise _download_error(url, path, exc, manual) from exc
            with response:
                while True:
                    try:
                        chunk = response.read(_CHUNK_SIZE)
                    except _NETWORK_ERRORS as exc:
                        raise _download_error(url, path, exc, manual) from exc
                    if not chunk:
                        break
                    hasher.update(chunk)
                    out.write(chunk)
            out.flush()
            os.fsync(out.fileno())

        checksum = hasher.hexdigest()
        if md5 is not None and checksum != md5:
            raise ChecksumError(
                f"The file downloaded from {url} has md5 checksum {checksum} "
                f"but {md5} was expected. The download was discarded and "
                f"nothing was written to {path!r}. The transfer may have been "
                f"corrupted or the remote file may have changed: try again. "
                f"{manual}"
            )
        os.replace(temp_path, path)
    except BaseException:
        _remove_if_exists(temp_path)
        raise
    return path


def _save_npz_atomic(path, **arrays):
    """Save `arrays` as a compressed ``.npz`` file at `path`, atomically.

    The arrays are written to a temporary file in the folder of `path`
    (created if needed), which is then moved to `path`, so that readers never
    see a partial file (:func:`skfewshot._files.write_atomically`); the
    temporaries of writes to `path` that a kill interrupted are deleted first.
    """
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    remove_abandoned_temporaries(folder, re.escape(name))

    def write(temporary):
        with open(temporary, "wb") as f:
            np.savez_compressed(f, **arrays)

    write_atomically(path, write)


def _load_npz(path, keys):
    """Load the arrays named `keys` from the ``.npz`` file at `path`.

    Returns `None` when the file does not exist. A file that cannot be read
    (truncated, corrupted, missing arrays) is reported with a warning and
    also gives `None`, so that the caller rebuilds it.
    """
    if not os.path.isfile(path):
        return None
    try:
        # np.load(path) leaks its file handle on some corrupted files.
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
            return {key: npz[key] for key in keys}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        warnings.warn(
            f"Ignoring the unreadable cache file {path!r} ({type(exc).__name__}: "
            f"{exc}); it is rebuilt from the original data. Delete it if this "
            "warning persists.",
            UserWarning,
            stacklevel=3,
        )
        return None
