"""Robust image decoding for the real-data loaders (PIL and numpy, no OpenCV).

Every image is decoded to uint8 RGB ``(H, W, 3)`` (grayscale repeated to three
channels, alpha dropped, 16-bit scaled to 8-bit, EXIF orientation applied) and
turned into a float tensor ``(3, S, S)`` in [0, 1] by ``square_tensor``:

* aspect handling: the **centre square** of side ``min(H, W)`` is cropped (no
  padding, no stretching), then resized to ``size x size`` (bilinear, which PIL
  antialiases when shrinking). ``size=None`` keeps the cropped square at its
  native resolution.

Binary and plain PGM (P5/P2) are decoded here with numpy: PIL decodes PGMs whose
maxval is not 255 (the CMU faces use 156) pixel by pixel in Python, ~100x slower.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

#: file-name endings the loaders treat as images (compared case-insensitively)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".pgm", ".bmp"})

#: what ``probe_image`` may do to a file: decode every pixel (finds truncated
#: files) or only parse the header (PIL ``verify``; fast, misses truncation)
CHECK_MODES = ("decode", "header")

_NETPBM_GRAY_MAGICS = (b"P5", b"P2")
_HEADER_FIELD = re.compile(rb"\s*(?:#[^\n\r]*[\n\r]\s*)*(\d+)")


class ImageDecodeError(OSError):
    """A file that cannot be used as an image; the message names it and says why.

    ``path`` and ``reason`` hold the two parts separately.
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"cannot decode image {path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self):  # picklable, so DataLoader workers can pass it back
        return type(self), (self.path, self.reason)


def is_image_name(name: str | os.PathLike) -> bool:
    """True when ``name`` ends in one of ``IMAGE_SUFFIXES`` (any case)."""
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def check_size(size: int | None) -> int | None:
    """Validate a loader's ``size`` argument (a positive int, or None = native)."""
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive int or None (native resolution), got {size!r}")
    return int(size)


def check_mode(check: str) -> str:
    """Validate a loader's ``check`` argument (one of ``CHECK_MODES``)."""
    if check not in CHECK_MODES:
        raise ValueError(f"check must be one of {CHECK_MODES}, got {check!r}")
    return check


# --------------------------------------------------------------------------- netpbm


def _is_gray_netpbm(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) in _NETPBM_GRAY_MAGICS


def _parse_netpbm_header(data: bytes) -> tuple[bytes, int, int, int, int]:
    """Return ``(magic, width, height, maxval, raster_offset)`` of a P5/P2 file."""
    magic, position, fields = data[:2], 2, []
    for _ in range(3):
        match = _HEADER_FIELD.match(data, position)
        if match is None:
            raise ValueError("malformed PGM header")
        fields.append(int(match.group(1)))
        position = match.end()
    width, height, maxval = fields
    if width < 1 or height < 1 or not 1 <= maxval <= 65535:
        raise ValueError(f"invalid PGM header values width={width} height={height} maxval={maxval}")
    # exactly one whitespace byte separates the header from a binary raster
    if position >= len(data) or not data[position : position + 1].isspace():
        raise ValueError("malformed PGM header (no raster)")
    return magic, width, height, maxval, position + 1


def _read_gray_netpbm(path: Path) -> np.ndarray:
    """Decode a P5/P2 PGM to uint8 ``(H, W)``, scaling ``maxval`` to 255."""
    data = path.read_bytes()
    magic, width, height, maxval, offset = _parse_netpbm_header(data)
    count = width * height
    if magic == b"P5":
        dtype = np.dtype(np.uint8) if maxval < 256 else np.dtype(">u2")
        if len(data) - offset < count * dtype.itemsize:
            raise ValueError(f"truncated PGM: {len(data) - offset} raster bytes for {width}x{height}")
        values = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    else:
        text = re.sub(rb"#[^\n\r]*", b" ", data[offset:])
        tokens = text.split()
        if len(tokens) < count:
            raise ValueError(f"truncated PGM: {len(tokens)} values for {width}x{height}")
        values = np.array(tokens[:count], dtype=np.int64)
    if values.max(initial=0) > maxval:
        raise ValueError(f"PGM value {int(values.max())} exceeds maxval {maxval}")
    scaled = np.round(values.astype(np.float64) * (255.0 / maxval))
    return scaled.astype(np.uint8).reshape(height, width)


# --------------------------------------------------------------------------- PIL


def _pil_to_rgb(image: Image.Image) -> np.ndarray:
    """uint8 ``(H, W, 3)`` from any PIL mode this project can meet."""
    if image.mode.startswith("I"):  # 16-bit PNG/PGM: 0..65535
        values = np.asarray(image, dtype=np.float64)
        gray = np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "F":
        raise ValueError("floating-point images are not supported")
    if image.mode in ("P", "PA"):  # palette transparency is only resolved via RGBA
        image = image.convert("RGBA")
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to uint8 RGB ``(H, W, 3)``.

    Raises ``ImageDecodeError`` naming the file when it cannot be decoded
    (missing, empty, not an image, truncated, unsupported mode).
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ValueError("empty file (0 bytes)")
        if _is_gray_netpbm(path):
            return np.repeat(_read_gray_netpbm(path)[..., None], 3, axis=2)
        with Image.open(path) as image:
            return _pil_to_rgb(ImageOps.exif_transpose(image))
    except Exception as error:  # any failure means the file is unusable; say which and why
        raise ImageDecodeError(path, _describe(error)) from error


def probe_image(path: str | os.PathLike, check: str = "decode") -> tuple[int, int]:
    """Return ``(width, height)`` of a usable image file, else raise ``ImageDecodeError``.

    ``check="decode"`` decodes every pixel (JPEGs at reduced DCT scale, which is
    fast and still reads the whole stream), so truncated files are caught;
    ``check="header"`` only parses the header (PIL ``verify``).
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ValueError("empty file (0 bytes)")
        if _is_gray_netpbm(path):
            if check == "decode":
                height, width = _read_gray_netpbm(path).shape
                return width, height
            with open(path, "rb") as handle:
                _, width, height, _, _ = _parse_netpbm_header(handle.read(1024))
            return width, height
        with Image.open(path) as image:
            width, height = image.size
            if check == "header":
                image.verify()
            else:
                image.draft(image.mode, (1, 1))
                image.load()
                if image.mode == "F":
                    raise ValueError("floating-point images are not supported")
        return width, height
    except Exception as error:
        raise ImageDecodeError(path, _describe(error)) from error


def _describe(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text if isinstance(error, (OSError, ValueError)) else f"{type(error).__name__}: {text}"


# --------------------------------------------------------------------------- tensors


def square_tensor(pixels: np.ndarray, size: int | None) -> torch.Tensor:
    """Centre-square-crop and resize uint8 ``(H, W)`` or ``(H, W, 3)`` RGB pixels.

    Returns float32 ``(3, S, S)`` in [0, 1] with ``S = size`` (or ``min(H, W)``
    when ``size`` is None).
    """
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3):
        raise ValueError(f"expected uint8 (H, W) or (H, W, 3) pixels, got {pixels.dtype} {pixels.shape}")
    image = Image.fromarray(np.ascontiguousarray(pixels)).convert("RGB")
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if size is not None and side != size:
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    chw = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(chw)).float().div_(255.0)


def load_image(path: str | os.PathLike, size: int | None) -> torch.Tensor:
    """Decode ``path`` and return float32 ``(3, S, S)`` in [0, 1] (see ``square_tensor``)."""
    return square_tensor(read_rgb(path), size)
