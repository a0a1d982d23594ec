"""Synthetic photos for reconstruction tests: a richly textured ellipsoid seen from a ring of
cameras, ray cast analytically with numpy (no downloads, no GPU)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

RADII = np.array([1.0, 0.7, 0.55])
GROUND_Z = -0.55
GROUND_RADIUS = 2.4


@dataclass(frozen=True)
class View:
    name: str
    png: bytes
    center: np.ndarray  # camera position in world coordinates


def _hash(ix: np.ndarray, iy: np.ndarray, iz: np.ndarray, seed: int) -> np.ndarray:
    h = (ix * 73856093) ^ (iy * 19349663) ^ (iz * 83492791) ^ (seed * 2654435761)
    h = (h ^ (h >> 13)) * 1274126177
    return ((h ^ (h >> 16)) & 0xFFFF).astype(np.float64) / 65535.0


def _value_noise(p: np.ndarray, freq: float, seed: int) -> np.ndarray:
    q = p * freq
    base = np.floor(q).astype(np.int64)
    f = q - base
    f = f * f * (3 - 2 * f)
    out = np.zeros(len(p))
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                w = (
                    (f[:, 0] if dx else 1 - f[:, 0])
                    * (f[:, 1] if dy else 1 - f[:, 1])
                    * (f[:, 2] if dz else 1 - f[:, 2])
                )
                out += w * _hash(base[:, 0] + dx, base[:, 1] + dy, base[:, 2] + dz, seed)
    return out


def texture(points: np.ndarray) -> np.ndarray:
    """RGB in 0..1 of surface points: multi-octave colour noise."""
    rgb = np.zeros((len(points), 3))
    for channel in range(3):
        value = np.zeros(len(points))
        for octave, freq in enumerate((5.0, 11.0, 23.0, 47.0)):
            value += _value_noise(points, freq, seed=channel * 10 + octave) / (1 + 0.3 * octave)
        rgb[:, channel] = value / 2.82
    return np.clip((rgb - 0.5) * 3.0 + 0.5, 0, 1)


def _look_at(center: np.ndarray) -> np.ndarray:
    forward = -center / np.linalg.norm(center)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward], axis=1)  # columns: camera axes in world


def render(center: np.ndarray, *, width: int = 320, height: int = 240, focal: float = 300.0):
    rot = _look_at(center)
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    dirs_cam = np.stack([(u - width / 2) / focal, (v - height / 2) / focal, np.ones_like(u)], -1)
    dirs = dirs_cam.reshape(-1, 3) @ rot.T
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    # Ray-ellipsoid: scale space so the ellipsoid is the unit sphere.
    o, d = center / RADII, dirs / RADII
    a = (d * d).sum(1)
    b = 2 * (d @ o)
    c = o @ o - 1
    disc = b * b - 4 * a * c
    hit = disc > 0
    t = np.where(hit, (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a), 0)
    points = center + dirs * t[:, None]
    image = np.full((len(dirs), 3), 0.0)
    normals = points[hit] / RADII**2
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    light = np.array([0.3, -0.4, 0.85])
    shade = 0.55 + 0.45 * np.clip(normals @ (light / np.linalg.norm(light)), 0, 1)
    image[hit] = texture(points[hit]) * shade[:, None]
    # A textured ground disc under the object: real photos have one, and its parallax
    # against the object is what lets two views be told apart from a homography.
    with np.errstate(divide="ignore", invalid="ignore"):
        tg = (GROUND_Z - center[2]) / dirs[:, 2]
    ground_pts = center + dirs * tg[:, None]
    on_ground = (tg > 0) & (np.hypot(ground_pts[:, 0], ground_pts[:, 1]) < GROUND_RADIUS)
    ground = on_ground & (~hit | (tg < t))
    image[ground] = 0.35 + 0.5 * texture(ground_pts[ground] * 0.5 + 17.0)
    return (image.reshape(height, width, 3) * 255).astype(np.uint8)


def camera_centers(count: int = 24, distance: float = 3.2) -> list[np.ndarray]:
    rings = (12.0, 38.0)
    per_ring = count // len(rings)
    centers = []
    for ring, elevation in enumerate(rings):
        for i in range(per_ring):
            az = np.radians(i * 360 / per_ring + ring * 15)
            el = np.radians(elevation)
            centers.append(
                distance * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
            )
    return centers


def views(count: int = 24) -> list[View]:
    out = []
    for i, center in enumerate(camera_centers(count)):
        buffer = io.BytesIO()
        Image.fromarray(render(center)).save(buffer, "PNG")
        out.append(View(f"view_{i:02d}.png", buffer.getvalue(), center))
    return out
