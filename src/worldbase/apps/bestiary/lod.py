"""Levels of detail of a character's model (seed 004: "Generate multiple LOD versions").

Level 0 is the stored model; level N keeps `LOD_RATIOS[N - 1]` of its triangles, by quadric
decimation (fast-simplification) of every mesh of the scene. The decimation's vertex
mapping carries the texture coordinates and vertex colours over, so a textured model stays
textured. Each level, plain and Draco-compressed (`draco`), is stored beside the model
(`model-<digest>.lod1.glb`, `model-<digest>.lod1.draco.glb`), made when the model is set
and, for models stored before levels existed, on first request.
Blocking: run `glb_lod` in a worker thread.
"""

from __future__ import annotations

import io
from typing import Any

import fast_simplification
import numpy as np
import trimesh

from worldbase.apps.bestiary import draco, meshes

LOD_RATIOS = (0.5, 0.2)  # level 1: half the triangles, level 2: a fifth
MAX_LEVEL = len(LOD_RATIOS)
MIN_FACES = 4  # below this a mesh is kept as it is


COMPRESSIONS = ("none", "draco")


def key_for(model_key: str, level: int, compression: str = "none") -> str:
    """The storage key of `level` of the model at `model_key` (level 0: the model itself),
    Draco-compressed (`model-….lod1.draco.glb`) or not."""
    stem = model_key.removesuffix(".glb")
    if level:
        stem += f".lod{level}"
    if compression != "none":
        stem += f".{compression}"
    return f"{stem}.glb"


def keys_of(model_key: str) -> list[str]:
    """The model and every variant's key (for deletion)."""
    return [
        key_for(model_key, level, compression)
        for level in range(MAX_LEVEL + 1)
        for compression in COMPRESSIONS
    ]


def _decimated(mesh: trimesh.Trimesh, ratio: float) -> trimesh.Trimesh:
    faces = len(mesh.faces)
    target = max(MIN_FACES, int(faces * ratio))
    if target >= faces:
        return mesh
    points = np.asarray(mesh.vertices, dtype=np.float64)
    triangles = np.asarray(mesh.faces, dtype=np.int64)
    _, _, collapses = fast_simplification.simplify(
        points, triangles, target_count=target, return_collapses=True
    )
    new_points, new_faces, mapping = fast_simplification.replay_simplification(
        points, triangles, collapses
    )
    a, b, c = new_faces.T if len(new_faces) else (np.empty(0),) * 3
    new_faces = new_faces[(a != b) & (b != c) & (a != c)]  # collapses can leave slivers
    if len(new_faces) == 0:
        return mesh
    kept = mapping >= 0

    def carried(values: Any) -> np.ndarray:
        values = np.asarray(values)
        out = np.zeros((len(new_points), *values.shape[1:]), dtype=values.dtype)
        out[mapping[kept]] = values[kept]  # each new vertex takes one of its merged vertices
        return out

    visual: Any = None
    source = mesh.visual
    if isinstance(source, trimesh.visual.TextureVisuals) and source.uv is not None:
        visual = trimesh.visual.TextureVisuals(uv=carried(source.uv), material=source.material)
    elif isinstance(source, trimesh.visual.ColorVisuals) and source.kind == "vertex":
        visual = trimesh.visual.ColorVisuals(vertex_colors=carried(source.vertex_colors))
    elif isinstance(source, trimesh.visual.ColorVisuals) and source.kind == "face":
        visual = None  # face colours do not survive collapses: the material's colour remains
    return trimesh.Trimesh(
        vertices=new_points, faces=new_faces, visual=visual, process=False, validate=False
    )


def glb_lod(glb: bytes, level: int) -> bytes:
    """`level` (1..MAX_LEVEL) of a stored GLB, as GLB."""
    if not 1 <= level <= MAX_LEVEL:
        raise ValueError(f"no level {level}")
    scene: Any = trimesh.load(io.BytesIO(glb), file_type="glb", force="scene")
    ratio = LOD_RATIOS[level - 1]
    for name, geometry in list(scene.geometry.items()):
        if isinstance(geometry, trimesh.Trimesh) and len(geometry.faces) > MIN_FACES:
            scene.geometry[name] = _decimated(geometry, ratio)
    return meshes.to_glb(scene)


def variant(glb: bytes, level: int, compression: str) -> bytes:
    """One level of a GLB (0: itself), Draco-compressed or not."""
    data = glb if level == 0 else glb_lod(glb, level)
    return draco.compress(data) if compression == "draco" else data


def all_variants(glb: bytes) -> dict[tuple[int, str], bytes]:
    """Every (level, compression) variant of a GLB but the GLB itself."""
    out: dict[tuple[int, str], bytes] = {}
    for level in range(MAX_LEVEL + 1):
        plain = glb if level == 0 else glb_lod(glb, level)
        if level:
            out[(level, "none")] = plain
        out[(level, "draco")] = draco.compress(plain)
    return out
