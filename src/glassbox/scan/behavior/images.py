"""A directory of images, one sub-folder per class, as labelled data (``--data DIR``).

The layout of torchvision's ``ImageFolder``: ``DIR/<class>/<file>.png``; classes are numbered
in sorted order of their folder names. The directory is committed as a ``files`` dataset
(``glassbox.digest``: one record per file, its path, SHA-256 and size, in OMS path order), so a
suspect image is named by its commitment index, with an inclusion proof, like a JSONL record.
The walk that commits it refuses symlinks (and always a symlink that leaves the directory).

Hostile input is refused with a one-line error naming the file, before any pixel is decoded:
a file outside a class folder, a file that is not a PNG or JPEG, an image whose header claims
more than ``MAX_PIXELS`` pixels (a decompression bomb: a few kilobytes of PNG can claim
gigapixels), a file larger than ``MAX_FILE_BYTES``, a directory whose images add up to more
than ``MAX_TOTAL_VALUES`` values, images of different sizes, and a file whose bytes no longer
match the digest the commitment recorded (swapped while being read). Pillow decodes (the
``ml`` extra installs it); nothing is resized, since a resized image is not what the model saw.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from glassbox.errors import InputError

#: Pixels one image may claim in its header (a 4096 x 4096 image); classifiers scanned here
#: take far smaller inputs.
MAX_PIXELS = 1 << 24
#: Bytes of one image file.
MAX_FILE_BYTES = 64 << 20
#: Values (pixels x channels) of the whole directory once decoded (1 GiB of float32).
MAX_TOTAL_VALUES = 1 << 28
FORMATS = ("PNG", "JPEG")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError as exc:
        raise InputError(
            "reading an image directory needs Pillow (pip install 'glassbox[ml]')"
        ) from exc
    return Image


def _decode(image_mod: Any, raw: bytes, where: Path) -> np.ndarray:
    """One image as ``(H, W)`` grey or ``(H, W, 3)`` RGB uint8, its header checked first."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", image_mod.DecompressionBombWarning)
        try:
            with image_mod.open(io.BytesIO(raw), formats=FORMATS) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise InputError(
                        f"{where}: the header claims {w}x{h} pixels, more than the "
                        f"{MAX_PIXELS} allowed (a decompression bomb?); refusing it"
                    )
                grey = im.mode in GREY_MODES
                out = np.asarray(im.convert("L" if grey else "RGB"), dtype=np.uint8)
        except InputError:
            raise
        except image_mod.UnidentifiedImageError:
            raise InputError(f"{where}: not a PNG or JPEG image") from None
        except (OSError, ValueError, SyntaxError, image_mod.DecompressionBombError) as exc:
            raise InputError(f"{where}: unreadable image ({_first_line(exc)})") from None
        except image_mod.DecompressionBombWarning as exc:
            raise InputError(f"{where}: {_first_line(exc)}; refusing it") from None
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_image_directory(
    path: Path, scale: float | None = None
) -> tuple[np.ndarray, np.ndarray, list[str], Any]:
    """Images ``(N, C, H, W)`` scaled into ``[0, 1]`` (by ``scale``, default 255), labels,
    class names (index = label) and the directory's ``files`` commitment."""
    from glassbox.digest import commit_dataset, iter_records

    image_mod = _pillow()
    commitment = commit_dataset(path, fmt="files")
    records = [json.loads(r) for r in iter_records(path, "files")]
    if not records:
        raise InputError(f"{path}: the image directory holds no files")
    names: list[str] = []
    for rec in records:
        parts = str(rec["path"]).split("/")
        if len(parts) < 2:
            raise InputError(
                f"{path / rec['path']}: not in a class folder (an image directory holds one "
                "folder of images per class)"
            )
        names.append(parts[0])
    classes = sorted(set(names))
    index = {c: i for i, c in enumerate(classes)}
    images: list[np.ndarray] = []
    total = 0
    for rec in records:
        where = path / str(rec["path"])
        if int(rec["size"]) > MAX_FILE_BYTES:
            raise InputError(f"{where}: {rec['size']} bytes is more than an image may have")
        with where.open("rb") as fh:  # bounded: the file may have grown since the walk
            raw = fh.read(MAX_FILE_BYTES + 1)
        if hashlib.sha256(raw).hexdigest() != rec["sha256"]:
            raise InputError(f"{where}: changed while the directory was read; refusing it")
        img = _decode(image_mod, raw, where)
        if images and img.shape[:2] != images[0].shape[:2]:
            first = path / str(records[0]["path"])
            raise InputError(
                f"{where}: {img.shape[1]}x{img.shape[0]} pixels, but {first} has "
                f"{images[0].shape[1]}x{images[0].shape[0]} (all images must have the "
                "model's input size)"
            )
        total += img.size
        if total > MAX_TOTAL_VALUES:
            raise InputError(f"{path}: the images add up to more than {MAX_TOTAL_VALUES} values")
        images.append(img)
    colour = any(img.ndim == 3 for img in images)
    chw = [
        (np.repeat(img[None], 3, axis=0) if img.ndim == 2 else img.transpose(2, 0, 1))
        if colour
        else img[None]
        for img in images
    ]
    divisor = 255.0 if scale is None else float(scale)
    if divisor <= 0:
        raise InputError(f"{path}: scale must be positive")
    x = (np.stack(chw).astype(np.float32) / divisor).astype(np.float32)
    y = np.array([index[n] for n in names], dtype=np.int64)
    return x, y, classes, commitment
