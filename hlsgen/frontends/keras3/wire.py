"""The message format between hlsgen and its Keras 3 worker: a JSON header and numpy arrays.

A message is a 4-byte big-endian length, that many bytes of JSON (an object whose
``"arrays"`` says how many arrays follow), then each array as an 8-byte length and its ``.npy`` bytes, read with
``allow_pickle=False``.  Only numpy and the standard library are used: the worker imports
this module in the Keras 3 environment, the client in hlsgen's own.
"""

from __future__ import annotations

import io
import json
import struct

import numpy as np


def send(stream, header: dict, arrays=()) -> None:
    arrays = [np.ascontiguousarray(a) for a in arrays]
    body = json.dumps(dict(header, arrays=len(arrays))).encode("utf-8")
    stream.write(struct.pack(">I", len(body)))
    stream.write(body)
    for a in arrays:
        buf = io.BytesIO()
        np.lib.format.write_array(buf, a, allow_pickle=False)
        stream.write(struct.pack(">Q", buf.tell()))
        stream.write(buf.getvalue())
    stream.flush()


def receive(stream) -> tuple[dict, list]:
    """One message; ``({}, [])`` at the end of the stream."""
    size = stream.read(4)
    if len(size) < 4:
        return {}, []
    (n,) = struct.unpack(">I", size)
    header = json.loads(_exactly(stream, n).decode("utf-8"))
    arrays = []
    for _ in range(int(header.get("arrays", 0))):
        (size,) = struct.unpack(">Q", _exactly(stream, 8))
        arrays.append(np.lib.format.read_array(io.BytesIO(_exactly(stream, size)), allow_pickle=False))
    return header, arrays


def _exactly(stream, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise ValueError(f"the stream ended {n - len(data)} bytes early")
    return data
