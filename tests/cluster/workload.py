"""The mixed workload over all five apps: the accounts, maps, layers, sources and characters
it writes to, one method per kind of request, the load and probe loops. Every request is
recorded (`records.Recorder`); every write that got a 2xx is kept in `Acked`, to be read
back at the end."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.cluster.files import CUBE_OBJ, geotiff, portrait_png
from tests.cluster.processes import ADMIN, Cluster
from tests.cluster.records import Recorder, sha256

AREA = (1.0, 53.0, 5.0, 55.5)  # where the load writes features: inside the z6 tile 32/20
TILE = (6, 32, 20)
EXPORT_FORMATS = ("obj", "ply", "stl", "glb")


@dataclass
class User:
    email: str
    password: str
    token: str = ""
    id: str = ""
    map_id: str = ""
    layer_id: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Acked:
    """Writes that got a 2xx, to be read back at the end."""

    features: list[tuple[str, str, int]] = field(default_factory=list)  # layer, feature, user
    feature_edits: dict[str, list[int]] = field(default_factory=dict)  # feature -> acked values
    comments: list[tuple[str, str, int]] = field(default_factory=list)  # comment, content, user
    map_names: dict[str, list[str]] = field(default_factory=dict)
    images: list[tuple[int, str | None]] = field(default_factory=list)  # id, sha of the read-back
    osm_nodes: list[tuple[int, float, float]] = field(default_factory=list)  # osm id, start, end
    portraits: list[tuple[int, str | None]] = field(default_factory=list)  # character, sha
    jobs: list[tuple[str, str, float]] = field(default_factory=list)  # job id, what, acked at
    exports: list[tuple[int, str, float]] = field(default_factory=list)  # export id, format, at
    upload_layers: dict[str, str] = field(default_factory=dict)  # job id -> layer id (when done)


class World:
    """The users, maps, layers, sources and characters the workload writes to."""

    def __init__(self, cluster: Cluster, recorder: Recorder, tmp: Path, run_id: str) -> None:
        self.cluster = cluster
        self.rec = recorder
        self.tmp = tmp
        self.run_id = run_id
        self.users: list[User] = []
        self.admin = User(*ADMIN)
        self.osm_source = ""
        self.osm_token = ""
        self.export_character = 0
        self.acked = Acked()
        self.counter = itertools.count(1)
        self.osm_ids = itertools.count(1_000_000)
        self.signin_times: list[float] = []
        self.ws_logs: list[Any] = []  # subscriber.WsLog
        self.stop = asyncio.Event()

    # --- clients -----

    def client(self, base: str, connections: int = 64) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return httpx.AsyncClient(
            base_url=base, timeout=httpx.Timeout(30.0, connect=5.0), limits=limits
        )

    # --- setup (before the load; every step must succeed) -----

    async def setup(self, client: httpx.AsyncClient, users: int) -> None:
        self.admin.token = await self._login(client, self.admin)
        for n in range(users):
            user = User(f"load-{self.run_id}-{n}@example.org", f"load-password-{n}-{self.run_id}")
            body = {"email": user.email, "password": user.password, "name": f"Load {n}"}
            response = await self._must(client, "setup", "POST", "/api/auth/register", json=body)
            user.id = str(response.json()["user"]["id"])
            user.token = str(response.json()["access_token"])
            map_body = {"name": f"Plan {n}", "center_lat": 55.0, "center_lng": 3.0, "zoom": 6}
            map_ = await self._must(
                client, "setup", "POST", "/api/maps", json=map_body, headers=user.headers
            )
            user.map_id = map_.json()["id"]
            layer_body = {"name": f"Zones {n}", "source_type": "vector", "category": "load"}
            layer = await self._must(
                client, "setup", "POST", "/api/layers", json=layer_body, headers=user.headers
            )
            user.layer_id = layer.json()["id"]
            await self._must(
                client,
                "setup",
                "POST",
                f"/api/maps/{user.map_id}/layers",
                json={"layer_id": user.layer_id},
                headers=user.headers,
            )
            self.users.append(user)
        source = await self._must(
            client,
            "setup",
            "POST",
            "/data-sources",
            json={"name": f"cluster {self.run_id}", "type": "rest"},
            headers=self.admin.headers,
        )
        self.osm_source, self.osm_token = source.json()["id"], source.json()["token"]
        character = await self._must(
            client,
            "setup",
            "POST",
            "/api/characters",
            json={"name": f"Export Troll {self.run_id}", "race": "Troll"},
            headers=self.admin.headers,
        )
        self.export_character = character.json()["id"]
        await self._must(
            client,
            "setup",
            "PUT",
            f"/api/characters/{self.export_character}/model",
            files={"file": ("cube.obj", CUBE_OBJ.encode(), "text/plain")},
            headers=self.admin.headers,
        )

    async def _login(self, client: httpx.AsyncClient, user: User) -> str:
        body = {"email": user.email, "password": user.password}
        response = await self._must(client, "setup", "POST", "/api/auth/login", json=body)
        return str(response.json()["access_token"])

    async def _must(
        self, client: httpx.AsyncClient, kind: str, method: str, url: str, **kwargs: Any
    ) -> httpx.Response:
        response = await self.rec.call(client, kind, method, url, **kwargs)
        if response is None or response.status_code >= 300:
            text = (
                "no answer" if response is None else f"{response.status_code} {response.text[:300]}"
            )
            raise RuntimeError(f"setup: {method} {url}: {text}")
        return response

    # --- actions -----

    def _user(self) -> tuple[int, User]:
        index = random.randrange(len(self.users))
        return index, self.users[index]

    async def signin(self, client: httpx.AsyncClient, force: bool = False) -> None:
        # Sign-ins through the proxy share one client address; they stay under half the
        # login limit so the limit under test (cross-node) never turns them into 429s.
        now = self.rec.now()
        self.signin_times = [t for t in self.signin_times if now - t < 60]
        if len(self.signin_times) >= self.signin_budget and not force:
            return await self.tile_read(client)
        self.signin_times.append(now)
        _, user = self._user()
        await self.rec.call(
            client,
            "signin",
            "POST",
            "/api/auth/login",
            json={"email": user.email, "password": user.password},
        )
        return None

    signin_budget = 15

    async def map_edit(self, client: httpx.AsyncClient) -> None:
        _, user = self._user()
        name = f"Plan {next(self.counter)}"
        response = await self.rec.call(
            client,
            "map_edit",
            "PUT",
            f"/api/maps/{user.map_id}",
            template="/api/maps/{id}",
            json={"name": name},
            headers=user.headers,
        )
        if response is not None and response.is_success:
            self.acked.map_names.setdefault(user.map_id, []).append(name)

    async def feature_create(self, client: httpx.AsyncClient) -> None:
        index, user = self._user()
        n = next(self.counter)
        lon = AREA[0] + 0.1 + random.random() * (AREA[2] - AREA[0] - 0.2)
        lat = AREA[1] + 0.1 + random.random() * (AREA[3] - AREA[1] - 0.2)
        body = {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [lon, lat]},
                    "properties": {"n": n, "run": self.run_id},
                }
            ],
        }
        response = await self.rec.call(
            client,
            "feature_create",
            "POST",
            f"/api/layers/{user.layer_id}/features",
            template="/api/layers/{id}/features",
            json=body,
            headers=user.headers,
        )
        if response is not None and response.is_success:
            feature_id = str(response.json()["features"][0]["id"])
            self.acked.features.append((user.layer_id, feature_id, index))

    async def feature_update(self, client: httpx.AsyncClient) -> None:
        """Edit the properties of a feature the load made before."""
        if not self.acked.features:
            return await self.feature_create(client)
        layer_id, feature_id, index = random.choice(self.acked.features)
        value = next(self.counter)
        response = await self.rec.call(
            client,
            "feature_update",
            "PUT",
            f"/api/layers/{layer_id}/features/{feature_id}",
            template="/api/layers/{id}/features/{feature_id}",
            json={"properties": {"edit": value, "run": self.run_id}},
            headers=self.users[index].headers,
        )
        if response is not None and response.is_success:
            self.acked.feature_edits.setdefault(feature_id, []).append(value)
        return None

    async def tile_read(self, client: httpx.AsyncClient) -> None:
        _, user = self._user()
        z, x, y = TILE
        await self.rec.call(
            client,
            "tile_read",
            "GET",
            f"/api/layers/{user.layer_id}/tiles/{z}/{x}/{y}",
            template="/api/layers/{id}/tiles/{z}/{x}/{y}",
            headers=user.headers,
        )

    async def feature_read(self, client: httpx.AsyncClient) -> None:
        _, user = self._user()
        lon = AREA[0] + random.random() * 1.5
        lat = AREA[1] + random.random() * 1.5
        await self.rec.call(
            client,
            "feature_read",
            "GET",
            f"/api/layers/{user.layer_id}/features",
            template="/api/layers/{id}/features",
            params={"bbox": f"{lon},{lat},{lon + 0.5},{lat + 0.5}", "limit": 100},
            headers=user.headers,
        )

    async def comment(self, client: httpx.AsyncClient) -> None:
        index, user = self._user()
        content = f"comment {next(self.counter)} {self.run_id}"
        response = await self.rec.call(
            client,
            "comment",
            "POST",
            "/api/comments",
            json={"content": content, "map_id": user.map_id},
            headers=user.headers,
        )
        if response is not None and response.is_success:
            self.acked.comments.append((str(response.json()["id"]), content, index))

    async def dnd_generate(self, client: httpx.AsyncClient) -> None:
        n = next(self.counter)
        body = {
            "subject_type": "item",
            "subject_name": f"Relic {n}",
            "prompt": f"An ancient relic number {n}, glowing runes, {self.run_id}",
            "aspect_ratio": "1:1",
            "component": "cluster-test",
        }
        response = await self.rec.call(
            client, "dnd_generate", "POST", "/api/v1/images/generate", json=body
        )
        if response is None or not response.is_success:
            return
        image_id = int(response.json()["id"])
        file = await self.rec.call(
            client,
            "dnd_file",
            "GET",
            f"/api/v1/images/{image_id}/file",
            template="/api/v1/images/{id}/file",
        )
        digest = sha256(file.content) if file is not None and file.status_code == 200 else None
        self.acked.images.append((image_id, digest))

    async def osm_ingest(self, client: httpx.AsyncClient) -> None:
        osm_id = next(self.osm_ids)
        lon = 13.0 + random.random()
        lat = 52.0 + random.random()
        node = {
            "type": "node",
            "id": osm_id,
            "lon": lon,
            "lat": lat,
            "version": 1,
            "tags": {"cluster": self.run_id},
        }
        start = self.rec.now()
        response = await self.rec.call(
            client,
            "osm_ingest",
            "POST",
            f"/data-sources/{self.osm_source}/ingest",
            template="/data-sources/{id}/ingest",
            json={"elements": [node]},
            headers={"Authorization": f"Bearer {self.osm_token}"},
        )
        if response is not None and response.is_success:
            self.acked.osm_nodes.append((osm_id, start, self.rec.now()))

    async def portrait(self, client: httpx.AsyncClient) -> None:
        n = next(self.counter)
        character = await self.rec.call(
            client,
            "character_create",
            "POST",
            "/api/characters",
            json={"name": f"Troll {n} {self.run_id}", "race": "Troll"},
            headers=self.admin.headers,
        )
        if character is None or not character.is_success:
            return
        character_id = int(character.json()["id"])
        upload = await self.rec.call(
            client,
            "portrait_upload",
            "PUT",
            f"/api/characters/{character_id}/image",
            template="/api/characters/{id}/image",
            files={"file": (f"troll-{n}.png", portrait_png(n), "image/png")},
            headers=self.admin.headers,
        )
        if upload is None or not upload.is_success:
            return
        read = await self.rec.call(
            client,
            "portrait_read",
            "GET",
            f"/api/characters/{character_id}/image",
            template="/api/characters/{id}/image",
            headers=self.admin.headers,
        )
        digest = sha256(read.content) if read is not None and read.status_code == 200 else None
        self.acked.portraits.append((character_id, digest))

    async def export(self, client: httpx.AsyncClient) -> None:
        fmt = EXPORT_FORMATS[next(self.counter) % len(EXPORT_FORMATS)]
        response = await self.rec.call(
            client,
            "export_create",
            "POST",
            "/api/export",
            json={"character_id": self.export_character, "format": fmt},
            headers=self.admin.headers,
        )
        if response is not None and response.is_success:
            self.acked.exports.append((int(response.json()["id"]), fmt, self.rec.now()))

    async def geotiff_upload(
        self, client: httpx.AsyncClient, size: int = 400
    ) -> tuple[str, User] | None:
        _, user = self._user()
        n = next(self.counter)
        path = await asyncio.to_thread(geotiff, self.tmp / f"upload-{n}.tif", size, n)
        data = path.read_bytes()
        response = await self.rec.call(
            client,
            "geotiff_upload",
            "POST",
            "/api/layers/upload",
            data={"name": f"Depth {n}", "tile_params": '{"rescale": "-200,50"}'},
            files={"file": (path.name, data, "image/tiff")},
            headers=user.headers,
        )
        path.unlink(missing_ok=True)
        if response is not None and response.is_success:
            job_id = str(response.json()["job_id"])
            self.acked.jobs.append((job_id, "geotiff_upload", self.rec.now()))
            return job_id, user
        return None

    # --- recovery probes -----

    # (action, the kind whose success ends its probe): every kind the load makes.
    PROBES: tuple[tuple[str, str], ...] = (
        ("signin", "signin"),
        ("map_edit", "map_edit"),
        ("feature_create", "feature_create"),
        ("feature_update", "feature_update"),
        ("tile_read", "tile_read"),
        ("feature_read", "feature_read"),
        ("comment", "comment"),
        ("osm_ingest", "osm_ingest"),
        ("dnd_generate", "dnd_file"),
        ("portrait", "portrait_read"),
        ("export", "export_create"),
        ("geotiff_upload", "geotiff_upload"),
    )

    def _succeeded(self, kind: str, since: float) -> bool:
        for record in reversed(self.rec.records):
            if record.start < since - 60:
                return False
            if record.kind == kind and record.start >= since and 200 <= record.status < 300:
                return True
        return False

    async def probe(self, client: httpx.AsyncClient, since: float, limit: float) -> None:
        """Right after a fault: each kind of request, every half second, until it succeeds
        (so each kind's recovery time is measured, not left to the load's mix)."""

        async def one(action: str, kind: str) -> None:
            deadline = self.rec.now() + limit
            while self.rec.now() < deadline and not self._succeeded(kind, since):
                if action == "signin":
                    await self.signin(client, force=True)
                else:
                    await getattr(self, action)(client)
                await asyncio.sleep(0.5)

        await asyncio.gather(*(one(action, kind) for action, kind in self.PROBES))

    # --- the loops -----

    WEIGHTS: tuple[tuple[str, int], ...] = (
        ("tile_read", 8),
        ("feature_read", 5),
        ("feature_create", 4),
        ("feature_update", 2),
        ("map_edit", 2),
        ("comment", 3),
        ("osm_ingest", 3),
        ("signin", 1),
        ("dnd_generate", 1),
        ("portrait", 1),
    )

    async def virtual_user(self, client: httpx.AsyncClient, think: float) -> None:
        names = [name for name, _ in self.WEIGHTS]
        weights = [weight for _, weight in self.WEIGHTS]
        while not self.stop.is_set():
            name = random.choices(names, weights)[0]
            action: Callable[[httpx.AsyncClient], Awaitable[None]] = getattr(self, name)
            await action(client)
            await asyncio.sleep(think * random.random())

    async def heavy_loop(self, client: httpx.AsyncClient, period: float) -> None:
        """A GeoTIFF upload and an export now and then (jobs for the workers)."""
        turn = 0
        while not self.stop.is_set():
            if turn % 2 == 0:
                await self.geotiff_upload(client)
            else:
                await self.export(client)
            turn += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), period)
