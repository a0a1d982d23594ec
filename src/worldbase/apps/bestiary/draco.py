"""Draco-compressed GLB (glTF's `KHR_draco_mesh_compression`) with DracoPy.

Each triangle primitive whose attributes are POSITION, NORMAL and TEXCOORD_0 (what our stored
models have) is encoded with Draco; its accessors then point at no buffer view (their count
and POSITION bounds are the decoded mesh's, as the extension asks). Materials, textures and
any primitive Draco cannot take stay as they are. Blocking: run in a worker thread.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import DracoPy
import numpy as np

EXTENSION = "KHR_draco_mesh_compression"
QUANTIZATION_BITS = 14
COMPRESSION_LEVEL = 7
_GLB_MAGIC, _JSON, _BIN = 0x46546C67, 0x4E4F534A, 0x004E4942
_COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}
_DTYPES: dict[int, Any] = {
    5120: np.int8,
    5121: np.uint8,
    5122: np.int16,
    5123: np.uint16,
    5125: np.uint32,
    5126: np.float32,
}
_DRACO_TYPES = {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 3}  # draco::GeometryAttribute::Type


def _split(glb: bytes) -> tuple[dict[str, Any], bytes]:
    magic, _, length = struct.unpack_from("<III", glb, 0)
    if magic != _GLB_MAGIC or length > len(glb):
        raise ValueError("not a GLB")
    offset, document, binary = 12, None, b""
    while offset < length:
        size, kind = struct.unpack_from("<II", glb, offset)
        chunk = glb[offset + 8 : offset + 8 + size]
        if kind == _JSON:
            document = json.loads(chunk)
        elif kind == _BIN:
            binary = chunk
        offset += 8 + size
    if document is None:
        raise ValueError("GLB without JSON")
    return document, binary


def _join(document: dict[str, Any], binary: bytes) -> bytes:
    text = json.dumps(document, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    length = 12 + 8 + len(text) + (8 + len(binary) if binary else 0)
    out = struct.pack("<III", _GLB_MAGIC, 2, length) + struct.pack("<II", len(text), _JSON) + text
    if binary:
        out += struct.pack("<II", len(binary), _BIN) + binary
    return out


def _read(document: dict[str, Any], binary: bytes, index: int) -> np.ndarray:
    accessor = document["accessors"][index]
    view = document["bufferViews"][accessor["bufferView"]]
    dtype = np.dtype(_DTYPES[accessor["componentType"]])
    width = _COMPONENTS[accessor["type"]]
    if view.get("byteStride", dtype.itemsize * width) != dtype.itemsize * width:
        raise ValueError("interleaved buffer views are not compressed")
    start = view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
    count = accessor["count"] * width
    data = np.frombuffer(binary, dtype=dtype, count=count, offset=start)
    return data.reshape(-1, width) if width > 1 else data


def _encode(document: dict[str, Any], binary: bytes, primitive: dict[str, Any]) -> bytes | None:
    attributes = primitive.get("attributes", {})
    if primitive.get("mode", 4) != 4 or "indices" not in primitive or "POSITION" not in attributes:
        return None
    if set(attributes) - set(_DRACO_TYPES) or primitive.get("targets"):
        return None
    positions = _read(document, binary, attributes["POSITION"]).astype(np.float64)
    faces = _read(document, binary, primitive["indices"]).astype(np.int64).reshape(-1, 3)
    normals = _read(document, binary, attributes["NORMAL"]) if "NORMAL" in attributes else None
    uv = _read(document, binary, attributes["TEXCOORD_0"]) if "TEXCOORD_0" in attributes else None
    encoded: bytes = DracoPy.encode(
        positions,
        faces,
        quantization_bits=QUANTIZATION_BITS,
        compression_level=COMPRESSION_LEVEL,
        normals=None if normals is None else normals.astype(np.float64),
        tex_coord=None if uv is None else uv.astype(np.float64),
    )
    decoded = DracoPy.decode(encoded)
    ids = {a["attribute_type"]: a["unique_id"] for a in decoded.attributes}
    points = np.asarray(decoded.points)
    for name, index in attributes.items():
        accessor = document["accessors"][index]
        accessor.pop("bufferView", None)
        accessor.pop("byteOffset", None)
        accessor["count"] = len(points)
        accessor.pop("min", None)  # optional, and quantization moved the values a little
        accessor.pop("max", None)
        if name == "POSITION":  # required on POSITION: the decoded bounds
            accessor["min"] = points.min(axis=0).tolist()
            accessor["max"] = points.max(axis=0).tolist()
    indices = document["accessors"][primitive["indices"]]
    indices.pop("bufferView", None)
    indices.pop("byteOffset", None)
    indices.pop("min", None)
    indices.pop("max", None)
    indices["count"] = int(np.asarray(decoded.faces).size)
    indices["componentType"] = 5125
    primitive.setdefault("extensions", {})[EXTENSION] = {
        "bufferView": None,  # set when the buffer is rebuilt
        "attributes": {name: ids[_DRACO_TYPES[name]] for name in attributes},
    }
    return encoded


def compress(glb: bytes) -> bytes:
    """The GLB with its meshes Draco-compressed; unchanged when nothing could be."""
    document, binary = _split(glb)
    encoded: list[tuple[dict[str, Any], bytes]] = []
    for mesh in document.get("meshes", []):
        for primitive in mesh.get("primitives", []):
            data = _encode(document, binary, primitive)
            if data is not None:
                encoded.append((primitive, data))
    if not encoded:
        return glb
    # Rebuild the buffer: the views still referenced, then one view per Draco mesh.
    used = {a["bufferView"] for a in document.get("accessors", []) if "bufferView" in a}
    used |= {i["bufferView"] for i in document.get("images", []) if "bufferView" in i}
    old_views = document.get("bufferViews", [])
    views: list[dict[str, Any]] = []
    remap: dict[int, int] = {}
    out = bytearray()

    def append(data: bytes, template: dict[str, Any]) -> int:
        out.extend(b"\0" * (-len(out) % 4))
        view = {k: v for k, v in template.items() if k not in ("byteOffset", "byteLength")}
        view.update(buffer=0, byteOffset=len(out), byteLength=len(data))
        out.extend(data)
        views.append(view)
        return len(views) - 1

    for index in sorted(used):
        view = old_views[index]
        start = view.get("byteOffset", 0)
        remap[index] = append(binary[start : start + view["byteLength"]], view)
    for accessor in document.get("accessors", []):
        if "bufferView" in accessor:
            accessor["bufferView"] = remap[accessor["bufferView"]]
    for image in document.get("images", []):
        if "bufferView" in image:
            image["bufferView"] = remap[image["bufferView"]]
    for primitive, data in encoded:
        primitive["extensions"][EXTENSION]["bufferView"] = append(data, {})
    document["bufferViews"] = views
    document["buffers"] = [{"byteLength": len(out)}]
    for key in ("extensionsUsed", "extensionsRequired"):
        document[key] = sorted({*document.get(key, []), EXTENSION})
    return _join(document, bytes(out))
