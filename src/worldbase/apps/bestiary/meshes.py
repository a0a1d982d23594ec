"""Mesh files with trimesh: read any format it knows (sniffed, not trusted), normalize to GLB,
convert to the export formats. All functions are blocking: run them in a worker thread."""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import trimesh

from worldbase.core.errors import BadInput

MAX_FACES = 5_000_000
GLB_TYPE = "model/gltf-binary"


@dataclass(frozen=True)
class MeshFile:
    data: bytes
    content_type: str
    extension: str  # of the download: "zip" for OBJ with its material and texture


@dataclass(frozen=True)
class MeshInfo:
    vertices: int
    faces: int
    bounds: list[list[float]]


def sniff_format(data: bytes) -> str:
    """The trimesh file type of mesh bytes, from their content."""
    head = data[:512]
    if head[:4] == b"glTF":
        return "glb"
    if head[:3] == b"ply":
        return "ply"
    if head[:3] == b"OFF":
        return "off"
    text = head.lstrip()
    if text[:1] == b"{" and b'"asset"' in data[:65536]:
        return "gltf"
    if text[:5].lower() == b"solid" and b"facet" in data[:4096]:
        return "stl"
    if len(data) >= 84:
        count = int.from_bytes(data[80:84], "little")
        if 84 + 50 * count == len(data) and count > 0:
            return "stl"
    if re.search(rb"^\s*v\s+[-+.\d]", data[:65536], re.MULTILINE) and re.search(
        rb"^\s*f\s+\d", data, re.MULTILINE
    ):
        return "obj"
    raise BadInput("Not a 3D model trimesh can read (glTF/GLB, OBJ, PLY, STL, OFF)")


def load_scene(data: bytes) -> trimesh.Scene:
    """A validated scene: at least one non-empty, finite triangle mesh; `BadInput` otherwise."""
    if not data:
        raise BadInput("The model file is empty")
    file_type = sniff_format(data)
    try:
        loaded: Any = trimesh.load(io.BytesIO(data), file_type=file_type, force="scene")
    except Exception as exc:  # trimesh raises anything from its parsers on corrupt input
        raise BadInput(f"Corrupt {file_type.upper()} model: {type(exc).__name__}") from None
    if not isinstance(loaded, trimesh.Scene):
        raise BadInput(f"Corrupt {file_type.upper()} model")
    scene = loaded
    meshes = [g for g in scene.geometry.values() if isinstance(g, trimesh.Trimesh)]
    faces = sum(len(m.faces) for m in meshes)
    if faces == 0:
        raise BadInput("The model has no triangles")
    if faces > MAX_FACES:
        raise BadInput(f"The model has {faces} triangles; at most {MAX_FACES} are accepted")
    for mesh in meshes:
        if not np.isfinite(mesh.vertices).all():
            raise BadInput("The model has non-finite vertex coordinates")
    return scene


def to_glb(scene: trimesh.Scene) -> bytes:
    data: bytes = scene.export(file_type="glb")
    return data


def normalize(data: bytes) -> tuple[bytes, MeshInfo]:
    """Any readable model -> GLB bytes and a summary."""
    scene = load_scene(data)
    return to_glb(scene), info(scene)


def info(scene: trimesh.Scene) -> MeshInfo:
    meshes = [g for g in scene.geometry.values() if isinstance(g, trimesh.Trimesh)]
    return MeshInfo(
        vertices=sum(len(m.vertices) for m in meshes),
        faces=sum(len(m.faces) for m in meshes),
        bounds=np.asarray(scene.bounds).round(6).tolist(),
    )


def _single_mesh(scene: trimesh.Scene) -> trimesh.Trimesh:
    mesh = scene.to_geometry()
    if not isinstance(mesh, trimesh.Trimesh):  # pragma: no cover - load_scene checked it
        raise BadInput("The model has no triangles")
    return mesh


def _bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def obj_files(mesh: trimesh.Trimesh, name: str) -> dict[str, bytes]:
    """OBJ + MTL (+ PNG texture). Written with one %-format per section: about 4x faster
    than trimesh's exporter on 100k triangles, which is most of an OBJ export's time."""
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64) + 1
    lines = [f"# {len(vertices)} vertices, {len(faces)} triangles\n", f"mtllib {name}.mtl\n"]
    files: dict[str, bytes] = {}
    mtl = [f"newmtl {name}\n", "Ka 1 1 1\n", "Ks 0 0 0\n", "d 1\n", "illum 1\n"]
    visual: Any = mesh.visual
    uv: Any = getattr(visual, "uv", None)
    textured = isinstance(visual, trimesh.visual.TextureVisuals) and uv is not None
    if textured and len(uv) == len(vertices):
        simple = visual.material.to_simple()
        diffuse = np.asarray(simple.diffuse, dtype=np.float64)[:3] / 255.0
        mtl.append("Kd {:.4f} {:.4f} {:.4f}\n".format(*diffuse))
        if simple.image is not None:
            image = io.BytesIO()
            simple.image.save(image, "PNG")
            files[f"{name}.png"] = image.getvalue()
            mtl.append(f"map_Kd {name}.png\n")
    else:
        textured = False
        mtl.append("Kd 0.8 0.8 0.8\n")
    lines.append(f"usemtl {name}\n")
    colors = getattr(visual, "vertex_colors", None) if not textured else None
    if colors is not None and len(colors) == len(vertices) and visual.kind == "vertex":
        rgb = np.asarray(colors, dtype=np.float64)[:, :3] / 255.0
        lines.append(
            ("v %.6f %.6f %.6f %.4f %.4f %.4f\n" * len(vertices))
            % tuple(np.hstack([vertices, rgb]).ravel().tolist())
        )
    else:
        lines.append(("v %.6f %.6f %.6f\n" * len(vertices)) % tuple(vertices.ravel().tolist()))
    if textured:
        coords = np.asarray(uv, dtype=np.float64)[:, :2]
        lines.append(("vt %.6f %.6f\n" * len(coords)) % tuple(coords.ravel().tolist()))
        pairs = np.repeat(faces, 2, axis=1)
        lines.append(("f %d/%d %d/%d %d/%d\n" * len(faces)) % tuple(pairs.ravel().tolist()))
    else:
        lines.append(("f %d %d %d\n" * len(faces)) % tuple(faces.ravel().tolist()))
    files[f"{name}.obj"] = "".join(lines).encode()
    files[f"{name}.mtl"] = "".join(mtl).encode()
    return files


def convert(glb: bytes, fmt: str, *, name: str = "model") -> MeshFile:
    """Stored GLB -> one export file (OBJ as a zip with its MTL and texture)."""
    scene = load_scene(glb)
    if fmt == "glb":
        return MeshFile(glb, GLB_TYPE, "glb")
    if fmt == "gltf":
        files = trimesh.exchange.gltf.export_gltf(scene, embed_buffers=True)
        return MeshFile(files["model.gltf"], "model/gltf+json", "gltf")
    mesh = _single_mesh(scene)
    if fmt == "ply":
        return MeshFile(_bytes(mesh.export(file_type="ply")), "application/x-ply", "ply")
    if fmt == "stl":
        return MeshFile(_bytes(mesh.export(file_type="stl")), "model/stl", "stl")
    if fmt == "obj":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for filename, content in obj_files(mesh, name).items():
                archive.writestr(filename, content)
        return MeshFile(buffer.getvalue(), "application/zip", "zip")
    raise BadInput(f"Unknown format {fmt!r}: use obj, ply, stl, gltf or glb")


def describe(data: bytes) -> dict[str, Any]:
    """A JSON-able summary of GLB bytes (tests, logs)."""
    summary = info(load_scene(data))
    return json.loads(json.dumps(summary.__dict__))
