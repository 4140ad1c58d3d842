"""The per-user signing key and HMAC-SHA256 signatures of pickled payloads.

Unpickling can run code, so everything ensemble_hpo pickles to disk (``.ehpo`` model
files, the fold models in a run folder's ``artifacts/``) is signed with a secret key
of the user who wrote it and verified before it is unpickled. The key is 32 random
bytes in ``~/.ensemble_hpo/signing.key``, or in the file named by the
``ENSEMBLE_HPO_KEY_FILE`` environment variable (point every machine of a cluster at
one key file so that their workers' files verify on each other).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

__all__ = ["KEY_ENV", "key_fingerprint", "key_path", "sign", "signing_key", "verify"]

KEY_ENV = "ENSEMBLE_HPO_KEY_FILE"
_KEY_BYTES = 32
# A shorter key (an empty or truncated file) would make signatures forgeable.
_MIN_KEY_BYTES = 16


def key_path() -> Path:
    """Where this user's signing key lives."""
    # An empty value (``export ENSEMBLE_HPO_KEY_FILE=``) is unset, not the current folder.
    return Path(os.environ.get(KEY_ENV) or Path.home() / ".ensemble_hpo" / "signing.key")


def signing_key() -> bytes:
    """This user's key, created on first use (readable by the user only)."""
    path = key_path()
    if not path.exists():
        _create_key(path)
    key = path.read_bytes()
    if len(key) < _MIN_KEY_BYTES:
        raise ValueError(
            f"The signing key file {str(path)!r} must hold at least {_MIN_KEY_BYTES} bytes. Got "
            f"{len(key)} instead. Delete it to have a new key made (files signed with the old key "
            "will then need trusted=True)."
        )
    return key


def _create_key(path: Path) -> None:
    # Several processes of one run may start at once: write the key to a private temp
    # file and link it into place, so no process ever reads a half-written key and the
    # first one to link wins (the others then read that key).
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-key-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(_KEY_BYTES))
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # no hard links on this filesystem: exclusive create instead
            _create_exclusive(path, Path(tmp).read_bytes())
    finally:
        os.remove(tmp)


def _create_exclusive(path: Path, key: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)


def sign(*parts: bytes | memoryview) -> bytes:
    """HMAC-SHA256 of the concatenated ``parts`` under this user's key (32 bytes).

    Parts, not one joined payload, so that a context prefix costs no copy of a large payload.
    """
    mac = hmac.new(signing_key(), digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part)
    return mac.digest()


def verify(signature: bytes, *parts: bytes | memoryview) -> bool:
    """Whether ``signature`` is this user's signature of ``parts`` (constant-time compare)."""
    return hmac.compare_digest(sign(*parts), signature)


def key_fingerprint() -> bytes:
    """8 bytes naming this user's key without revealing it, to tell 'another key' from 'tampered'."""
    return hashlib.sha256(b"ensemble_hpo key id\0" + signing_key()).digest()[:8]
