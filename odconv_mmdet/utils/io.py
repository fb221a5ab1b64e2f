import os
import shutil
import tempfile

import torch


def write_atomically(path, write):
    """Calls ``write(tmp_path)`` and moves the result to ``path``: no half-written file is ever
    left, whatever ``write`` raises."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix='.tmp')
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_folder_atomically(root, write, prefix='.staging-'):
    """Calls ``write(folder)`` on a new folder beside ``root``, then puts it in ``root``'s place
    (replacing it); returns what ``write`` returns. An interrupted write never leaves a
    half-written folder that looks complete."""
    root = os.path.abspath(root)
    os.makedirs(os.path.dirname(root), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=prefix, dir=os.path.dirname(root))
    try:
        result = write(staging)
        if os.path.exists(root):
            shutil.rmtree(root)
        os.replace(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result


def save_atomically(obj, path):
    """torch.save to ``path`` through a temporary file."""
    write_atomically(path, lambda tmp: torch.save(obj, tmp))
