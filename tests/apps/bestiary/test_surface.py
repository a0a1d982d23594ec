"""From a point cloud to a mesh, without SfM: ground removal, Poisson, convex hull, failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from worldbase.apps.bestiary.exceptions import ReconstructionFailed
from worldbase.apps.bestiary.pipeline import Surface, _clean


def _cloud(n_object: int = 1500, n_ground: int = 1500) -> tuple[np.ndarray, ...]:
    """A dome of radius 1 on a ground disc of radius 3 (z up), with a stray cluster far off;
    `towards` points from each point to a camera above it."""
    rng = np.random.default_rng(4)
    direction = rng.normal(size=(n_object, 3))
    direction[:, 2] = np.abs(direction[:, 2])
    dome = direction / np.linalg.norm(direction, axis=1, keepdims=True)
    radius = 3 * np.sqrt(rng.random(n_ground))
    angle = rng.random(n_ground) * 2 * np.pi
    ground = np.c_[radius * np.cos(angle), radius * np.sin(angle), np.zeros(n_ground)]
    stray = rng.normal(scale=0.02, size=(8, 3)) + np.array([10.0, 10.0, 5.0])
    points = np.r_[dome, ground, stray]
    towards = np.r_[dome * 3, np.tile([0.0, 0.0, 3.0], (n_ground + 8, 1))]
    colors = np.full((len(points), 3), 128, dtype=np.uint8)
    return points, colors, towards


@pytest.mark.parametrize("meshing", ["poisson", "convex_hull"])
def test_the_object_is_meshed_upright_without_its_ground(tmp_path: Path, meshing: str) -> None:
    points, colors, towards = _cloud()
    surface = Surface(points, colors, towards, work_dir=tmp_path)
    assert surface.plane is not None and surface.object_points < 1500  # ground and stray gone
    mesh, method = surface.build(
        meshing=meshing, depth=7, report=lambda *_: None, check=lambda: None
    )
    assert method == meshing
    mesh = surface.upright(_clean(mesh, target_faces=2000))
    assert len(mesh.faces) <= 2000
    width, height, depth = mesh.extents
    assert width == pytest.approx(2.0, rel=0.15) and depth == pytest.approx(2.0, rel=0.15)
    assert height == pytest.approx(1.0, rel=0.2)  # Y up, the dome's height
    assert mesh.bounds[0][1] == pytest.approx(0.0, abs=1e-6)


def test_too_few_object_points_fail_with_a_reason(tmp_path: Path) -> None:
    points, colors, towards = _cloud(n_object=12, n_ground=600)
    with pytest.raises(ReconstructionFailed, match="points on the object"):
        Surface(points, colors, towards, work_dir=tmp_path)
