"""Photogrammetry on the CPU: pycolmap SfM, then a surface from the sparse cloud.

Stages: SIFT features -> matching (exhaustive, or sequential for long sequences) ->
incremental mapping -> points (dense stereo needs CUDA, so the sparse cloud is used) ->
surface: the ground plane is removed (RANSAC), the object is the largest connected cluster,
normals come from local PCA oriented towards an observing camera, Poisson via pycolmap on
one thread (multi-threaded Poisson sometimes stalls), a convex hull as the last fallback ->
cleaned (largest component, cropped, decimated), turned upright (ground normal = +Y, the
glTF up axis, base at y=0) and written as GLB.

Everything here blocks; the job handler runs `reconstruct` in a worker thread and cancels
it through the pycolmap cancellation token and `Cancelled` checks between steps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pycolmap
import trimesh
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from worldbase.apps.bestiary.exceptions import ReconstructionFailed

log = logging.getLogger("worldbase.bestiary.pipeline")

# quality -> (longest image side, SIFT features per image, Poisson depth, target faces)
PRESETS: dict[str, tuple[int, int, int, int]] = {
    "low": (1024, 2048, 7, 5_000),
    "medium": (1600, 4096, 8, 20_000),
    "high": (2400, 8192, 9, 60_000),
}
EXHAUSTIVE_MAX_IMAGES = 100
MIN_KEYPOINTS_PER_IMAGE = 60
MIN_OBJECT_POINTS = 30
TRIM_SPACINGS = 3.0  # Poisson faces farther than this many point spacings from the cloud go
SPECK = 0.02  # mesh pieces with fewer faces than this share of the whole are dropped

Report = Callable[[str, float, str], None]  # (stage, progress 0..1, log line)


class Cancelled(Exception):
    pass


@dataclass(frozen=True)
class Options:
    quality: str = "medium"
    max_image_size: int | None = None
    meshing: str = "poisson"
    target_faces: int | None = None
    threads: int = 2


@dataclass
class Result:
    glb: bytes
    stats: dict[str, Any] = field(default_factory=dict)


class Pipeline:
    def __init__(self, image_dir: Path, work_dir: Path, options: Options, report: Report):
        self.image_dir = image_dir
        self.work_dir = work_dir
        self.options = options
        self.report = report
        self.token = pycolmap.CancellationToken()
        self.stage_seconds: dict[str, float] = {}
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True
        self.token.cancel()

    def _check(self) -> None:
        if self._cancelled:
            raise Cancelled()

    def _timed(self, stage: str, started: float) -> None:
        self.stage_seconds[stage] = round(time.monotonic() - started, 3)

    def run(self) -> Result:
        size, features, depth, faces = PRESETS[self.options.quality]
        images = sorted(p.name for p in self.image_dir.iterdir() if p.is_file())
        database = self.work_dir / "database.db"
        keypoints = self._extract(database, images, self.options.max_image_size or size, features)
        pairs = self._match(database, images)
        model = self._map(database, images)
        started = time.monotonic()
        self.report("meshing", 0.78, "sparse cloud (dense stereo needs CUDA)")
        points, colors, normals_hint = _points(model)
        surface = Surface(points, colors, normals_hint, work_dir=self.work_dir)
        mesh, method = surface.build(
            meshing=self.options.meshing, depth=depth, report=self.report, check=self._check
        )
        mesh = _clean(mesh, target_faces=self.options.target_faces or faces)
        mesh = surface.upright(mesh)
        self._timed("meshing", started)
        self._check()
        glb: bytes = trimesh.Scene(mesh).export(file_type="glb")
        stats = {
            "images": len(images),
            "registered_images": model.num_reg_images(),
            "keypoints": keypoints,
            "verified_pairs": pairs,
            "sparse_points": int(model.num_points3D()),
            "object_points": surface.object_points,
            "ground_plane": surface.plane is not None,
            "meshing": method,
            "vertices": len(mesh.vertices),
            "faces": len(mesh.faces),
            "extent": np.asarray(mesh.extents).round(6).tolist(),
            "stage_seconds": dict(self.stage_seconds),
        }
        self.report("meshing", 0.95, f"mesh: {len(mesh.faces)} faces ({method})")
        return Result(glb=glb, stats=stats)

    def _extract(self, database: Path, images: list[str], max_size: int, features: int) -> int:
        """SIFT features into `database`; the number of keypoints found."""
        self.report("features", 0.05, f"extracting SIFT features from {len(images)} images")
        started = time.monotonic()
        extraction = pycolmap.FeatureExtractionOptions()
        extraction.num_threads = self.options.threads
        extraction.max_image_size = max_size
        extraction.sift.max_num_features = features
        pycolmap.extract_features(
            database,
            self.image_dir,
            image_names=images,
            camera_mode=pycolmap.CameraMode.SINGLE,
            extraction_options=extraction,
            device=pycolmap.Device.cpu,
            cancellation_token=self.token,
        )
        self._check()
        self._timed("features", started)
        keypoints, extracted = _read_database(
            database, lambda db: (db.num_keypoints(), db.num_images())
        )
        if keypoints < MIN_KEYPOINTS_PER_IMAGE * max(extracted, 1):
            raise ReconstructionFailed(
                f"The photos have almost no texture ({keypoints} features in {extracted} "
                "images): featureless surfaces cannot be reconstructed"
            )
        self.report("features", 0.3, f"features: {extracted} images, {keypoints} keypoints")
        return int(keypoints)

    def _match(self, database: Path, images: list[str]) -> int:
        """Feature matches between images; the number of verified image pairs."""
        started = time.monotonic()
        matching = pycolmap.FeatureMatchingOptions()
        matching.num_threads = self.options.threads
        match: Callable[..., None]
        if len(images) <= EXHAUSTIVE_MAX_IMAGES:
            self.report("matching", 0.32, "matching every pair of images")
            match = pycolmap.match_exhaustive
        else:
            self.report("matching", 0.32, "matching neighbouring images (sequence)")
            match = pycolmap.match_sequential
        match(
            database,
            matching_options=matching,
            device=pycolmap.Device.cpu,
            cancellation_token=self.token,
        )
        self._check()
        self._timed("matching", started)
        pairs = int(_read_database(database, lambda db: db.num_verified_image_pairs()))
        self.report("matching", 0.5, f"matching: {pairs} verified image pairs")
        if pairs == 0:
            raise ReconstructionFailed(
                "No two photos share enough features: take photos with more overlap"
            )
        return pairs

    def _map(self, database: Path, images: list[str]) -> Any:
        """Incremental mapping; the model with the most registered images."""
        started = time.monotonic()
        self.report("mapping", 0.52, "incremental mapping")
        mapping = pycolmap.IncrementalPipelineOptions()
        mapping.num_threads = self.options.threads
        mapping.multiple_models = False
        mapping.random_seed = 1
        sparse = self.work_dir / "sparse"
        sparse.mkdir(exist_ok=True)
        models = pycolmap.incremental_mapping(
            database, self.image_dir, sparse, options=mapping, cancellation_token=self.token
        )
        self._check()
        self._timed("mapping", started)
        if not models:
            raise ReconstructionFailed(
                f"No model could be built from {len(images)} photos: they share too few "
                "features (photos need more overlap and texture)"
            )
        model = max(models.values(), key=lambda r: r.num_reg_images())
        registered = model.num_reg_images()
        if registered < 3 or registered < 0.3 * len(images):
            raise ReconstructionFailed(
                f"Only {registered} of {len(images)} images registered: photos need more overlap"
            )
        self.report(
            "mapping",
            0.75,
            f"mapping: {registered} of {len(images)} images registered, "
            f"{model.num_points3D()} points",
        )
        return model


def _read_database(database: Path, read: Callable[[Any], Any]) -> Any:
    """`read(db)` on the opened COLMAP database, closed after."""
    db = pycolmap.Database.open(database)
    try:
        return read(db)
    finally:
        db.close()


def _points(model: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xyz, RGB and, per point, the direction towards one camera that saw it."""
    centers = {image_id: image.projection_center() for image_id, image in model.images.items()}
    xyz, rgb, towards = [], [], []
    for point in model.points3D.values():
        xyz.append(point.xyz)
        rgb.append(point.color)
        camera = centers[point.track.elements[0].image_id]
        towards.append(camera - point.xyz)
    return np.asarray(xyz), np.asarray(rgb, dtype=np.uint8), np.asarray(towards)


class Surface:
    """From a sparse cloud to a closed, upright mesh."""

    def __init__(self, points: np.ndarray, colors: np.ndarray, towards: np.ndarray, work_dir: Path):
        self.work_dir = work_dir
        self.plane: tuple[np.ndarray, float] | None = None
        keep = self._without_ground(points, towards)
        points, colors, towards = points[keep], colors[keep], towards[keep]
        keep = _largest_cluster(points)
        self.points, self.colors, self.towards = points[keep], colors[keep], towards[keep]
        self.object_points = len(self.points)
        if self.object_points < MIN_OBJECT_POINTS:
            raise ReconstructionFailed(
                f"Only {self.object_points} points on the object: photos need more overlap "
                "and texture"
            )

    def _without_ground(self, points: np.ndarray, towards: np.ndarray) -> np.ndarray:
        keep = np.ones(len(points), dtype=bool)
        if len(points) < 50:
            return keep
        rng = np.random.default_rng(0)
        scale = float(np.median(np.linalg.norm(points - np.median(points, axis=0), axis=1)))
        tolerance = 0.02 * scale
        best: tuple[int, np.ndarray, float] | None = None
        for _ in range(300):
            sample = points[rng.choice(len(points), 3, replace=False)]
            normal = np.cross(sample[1] - sample[0], sample[2] - sample[0])
            length = np.linalg.norm(normal)
            if length < 1e-12:
                continue
            normal = normal / length
            offset = -float(normal @ sample[0])
            count = int((np.abs(points @ normal + offset) < tolerance).sum())
            if best is None or count > best[0]:
                best = (count, normal, offset)
        if best is None or best[0] < 0.2 * len(points):
            return keep  # no dominant plane: the object was shot without a ground
        _, normal, offset = best
        # The cameras are above the ground: orient the normal towards them.
        camera_side = np.median(((points + towards) @ normal) + offset)
        if camera_side < 0:
            normal, offset = -normal, -offset
        self.plane = (normal, offset)
        return np.asarray((points @ normal + offset) > 2 * tolerance)

    def _normals(self) -> np.ndarray:
        k = min(12, len(self.points))
        tree = cKDTree(self.points)
        _, index = tree.query(self.points, k=k)
        neighbours = self.points[index]
        centred = neighbours - neighbours.mean(axis=1, keepdims=True)
        covariance = np.einsum("nki,nkj->nij", centred, centred)
        _, vectors = np.linalg.eigh(covariance)
        normals = vectors[:, :, 0]
        flip = (normals * self.towards).sum(axis=1) < 0
        normals[flip] *= -1
        return np.asarray(normals)

    def build(
        self, *, meshing: str, depth: int, report: Report, check: Callable[[], None]
    ) -> tuple[trimesh.Trimesh, str]:
        if meshing == "poisson":
            report("meshing", 0.82, f"Poisson surface from {self.object_points} points")
            try:
                mesh = self._poisson(depth)
                check()
                if mesh is not None:
                    return mesh, "poisson"
                report("meshing", 0.88, "Poisson gave no surface; using the convex hull")
            except Cancelled:
                raise
            except Exception as exc:  # pycolmap raises plain RuntimeErrors
                log.warning("poisson meshing failed: %s", exc)
                report("meshing", 0.88, "Poisson failed; using the convex hull")
        hull = trimesh.convex.convex_hull(self.points)
        return hull, "convex_hull"

    def _poisson(self, depth: int) -> trimesh.Trimesh | None:
        source = self.work_dir / "points.ply"
        target = self.work_dir / "poisson.ply"
        _write_ply(source, self.points, self._normals(), self.colors)
        options = pycolmap.PoissonMeshingOptions()
        options.num_threads = 1
        options.depth = depth
        options.trim = 0.0  # trimmed below by distance to the cloud (density varies a lot)
        options.color = True
        pycolmap.poisson_meshing(source, target, options)
        if not target.exists():
            return None
        mesh = trimesh.load(target, file_type="ply", force="mesh")
        if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
            return None
        # Poisson closes the surface far beyond the data: keep what lies near the points.
        tree = cKDTree(self.points)
        spacing, _ = tree.query(self.points, k=2)
        reach = TRIM_SPACINGS * float(np.median(spacing[:, 1]))
        distance, _ = tree.query(mesh.vertices, k=1)
        near = distance <= reach
        mesh.update_faces(near[mesh.faces].all(axis=1))
        mesh.remove_unreferenced_vertices()
        return mesh if len(mesh.faces) else None

    def upright(self, mesh: trimesh.Trimesh) -> trimesh.Trimesh:
        """Ground normal -> +Y (glTF's up), base at y=0, centred on x/z."""
        if self.plane is not None:
            normal, _ = self.plane
            rotation = trimesh.geometry.align_vectors(normal, [0.0, 1.0, 0.0])
            mesh.apply_transform(rotation)
            low, high = mesh.bounds
            mesh.apply_translation([-(low[0] + high[0]) / 2, -low[1], -(low[2] + high[2]) / 2])
        else:
            mesh.apply_translation(-mesh.bounds.mean(axis=0))
        return mesh


def _largest_cluster(points: np.ndarray) -> np.ndarray:
    """Points of the biggest connected group (neighbours closer than 3x the typical gap)."""
    if len(points) < 10:
        return np.ones(len(points), dtype=bool)
    tree = cKDTree(points)
    distances, _ = tree.query(points, k=2)
    radius = 3.0 * float(np.median(distances[:, 1]))
    graph = tree.sparse_distance_matrix(tree, radius, output_type="coo_matrix")
    _, labels = connected_components(graph, directed=False)
    largest = np.bincount(labels).argmax()
    return np.asarray(labels == largest)


def _write_ply(path: Path, points: np.ndarray, normals: np.ndarray, colors: np.ndarray) -> None:
    vertex = np.empty(
        len(points),
        dtype=[
            ("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
            ("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4"),
            ("red", "u1"), ("green", "u1"), ("blue", "u1"),
        ],
    )  # fmt: skip
    for i, axis in enumerate("xyz"):
        vertex[axis] = points[:, i]
        vertex["n" + axis] = normals[:, i]
    for i, channel in enumerate(("red", "green", "blue")):
        vertex[channel] = colors[:, i]
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property float nx\nproperty float ny\nproperty float nz\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    )
    with path.open("wb") as fh:
        fh.write(header.encode())
        fh.write(vertex.tobytes())


def _clean(mesh: trimesh.Trimesh, *, target_faces: int) -> trimesh.Trimesh:
    mesh.remove_unreferenced_vertices()
    parts = mesh.split(only_watertight=False)
    if len(parts) > 1:
        total = sum(len(part.faces) for part in parts)
        kept = [part for part in parts if len(part.faces) >= SPECK * total]
        joined = trimesh.util.concatenate(kept) if len(kept) > 1 else kept[0]
        if isinstance(joined, trimesh.Trimesh):
            mesh = joined
    if len(mesh.faces) > target_faces:
        try:
            mesh = mesh.simplify_quadric_decimation(face_count=target_faces)
        except Exception as exc:  # decimation is an optimisation; the full mesh is still right
            log.warning("decimation failed: %s", exc)
    mesh.fix_normals()
    return mesh


def reconstruct(image_dir: Path, work_dir: Path, options: Options, report: Report) -> Result:
    return Pipeline(image_dir, work_dir, options, report).run()
