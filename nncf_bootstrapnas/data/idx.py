"""IDX files (the MNIST / Fashion-MNIST format) read with numpy, gzip-compressed or not.

Format: two zero bytes, a type code, the number of dimensions, one big-endian uint32 per dimension, then the data in
C order. Every header field and the data length are checked, so a truncated or foreign file fails with its name.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from nncf_bootstrapnas.data.errors import DataError

_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read()
        # By content, not by name: torchvision's raw/ folders hold both forms and users rename files.
        return gzip.decompress(raw) if raw[:2] == _GZIP_MAGIC else raw
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read the IDX file ({exc}); it is truncated or corrupt, replace it") from None


def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """The array stored in an IDX file (native byte order), with its header checked.

    Args:
        ndim: the number of dimensions the caller expects (1 for labels, 3 for images); checked when given.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'none'}; expected 0000TTDD)")
    dims_n = data[3]
    if ndim is not None and dims_n != ndim:
        raise DataError(f"{path}: IDX file with {dims_n} dimensions, expected {ndim}")
    header = 4 + 4 * dims_n
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes, expected at least {header})")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=dims_n, offset=4))
    dtype = np.dtype(_DTYPES[data[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(
            f"{path}: {len(data)} bytes, but its header {list(shape)} needs {expected}; the file is truncated or corrupt"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return np.array(array, dtype=dtype.newbyteorder("="))  # a writable copy in native byte order


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` (uint8) as an IDX file; gzip-compressed if ``compress`` (default: the name ends with .gz).

    For fixtures and for users converting their own data to the Fashion-MNIST layout.
    """
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.tobytes()
    compress = path.suffix == ".gz" if compress is None else compress
    path.write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
    return path
