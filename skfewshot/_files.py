"""Files (and folders) written whole or not at all."""

import contextlib
import os
import re
import shutil

# The name write_atomically gives what it writes first: ".tmp-<process id>-<name>".
_TEMPORARY = re.compile(r"\.tmp-(\d+)-(.+)")


def temporary_path(path):
    """Where :func:`write_atomically` writes ``path`` first: beside it, ``.tmp-<pid>-<name>``."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".tmp-{os.getpid()}-{name}")


def write_atomically(path, write):
    """Write ``path`` with ``write(temporary_path)``, then rename: never a half-made file.

    The temporary file sits beside ``path`` with the same extension (which
    tells joblib the compression). ``path`` may be a folder: ``write`` then
    makes the folder and its files at the temporary path, and the folder
    appears whole (``path`` must not exist then: a rename replaces a file,
    never a folder that holds files). A kill leaves at most the temporary,
    which :func:`remove_abandoned_temporaries` deletes later.
    """
    temporary = temporary_path(path)
    remove(temporary)  # left by an earlier process that had this process's id
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        remove(temporary)
        raise


def remove(path):
    """Delete the file or the folder (with all it holds) ``path``; nothing if it is absent."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.remove(path)


def remove_abandoned_temporaries(folder, names):
    """Delete the temporaries of :func:`write_atomically` in ``folder`` whose writer is gone.

    Only the temporaries of names that match the regular expression ``names``
    are considered. A temporary is abandoned when the process that wrote it
    no longer runs (it was killed while writing) or is this process (which
    writes nothing while this runs). Where processes cannot be asked whether
    they run (not POSIX), only this process's temporaries are deleted.
    """
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        match = _TEMPORARY.fullmatch(entry)
        if match and re.fullmatch(names, match.group(2)) and not _runs(int(match.group(1))):
            remove(os.path.join(folder, entry))


def _runs(pid):
    """Whether another process with the id ``pid`` runs (assumed, where it cannot be asked)."""
    if pid == os.getpid():
        return False
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True
