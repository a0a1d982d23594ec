"""Settings, read from the environment and `.env`, with the seeds' own variable names.

Embedded defaults (SQLite, local files, in-process cache/jobs/hub) need no setting at all;
production (`WORLDBASE_ENV=production`) must name its secret explicitly.
"""

from __future__ import annotations

import json
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ALL_APPS = ("habitats", "samsyn", "dnd", "osm", "bestiary")
# The habitats app's raster when HABITAT_RASTER_URL is unset: the COG `worldbase seed`
# writes. Named here so the source policy (geo) knows it without importing the app.
DEMO_HABITAT_RASTER_KEY = "habitats/demo-habitat-raster.tif"
# Google Cloud Storage's S3-compatible (XML) API, used with HMAC keys (`STORAGE_BACKEND=gcs`).
GCS_ENDPOINT = "https://storage.googleapis.com"
# The frontends' usual development servers (Next.js/CRA on 3000, Vite on 5173): allowed as
# CORS origins in development besides CORS_ORIGINS, never in production.
DEV_CORS_ORIGINS = (
    "http://localhost:3000",
    "http://127.0.0.1:3000",
    "http://localhost:5173",
    "http://127.0.0.1:5173",
)


def _env(*names: str) -> AliasChoices:
    """The field's own name first, then the seeds' other names for it (first one set wins)."""
    return AliasChoices(*names)


class ConfigurationError(RuntimeError):
    """The settings cannot run a server; the message is one line saying why."""


def _split_list(value: Any) -> Any:
    # Accepts a JSON list (`["a","b"]`, the seeds' style) or a comma-separated string.
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # --- Worldbase itself -------------------------------------------------------------
    # NODE_ENV: seed 004's name (the same three values).
    worldbase_env: Literal["development", "production", "test"] = Field(
        default="development", validation_alias=_env("worldbase_env", "node_env")
    )
    worldbase_apps: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(ALL_APPS))
    worldbase_data_dir: Path = Path("./data")
    worldbase_admin_email: str | None = None
    worldbase_admin_password: str | None = None
    # Largest accepted request body; uploads that need more say so in their own routes.
    worldbase_max_body_bytes: int = 10 * 1024 * 1024
    # Run the Huey consumer inside `serve` (embedded); off when dedicated workers run.
    worldbase_inline_worker: bool | None = None
    # QUEUE_CONCURRENCY: seed 004's name.
    worldbase_worker_threads: int = Field(
        default=2, ge=1, validation_alias=_env("worldbase_worker_threads", "queue_concurrency")
    )
    # The apps' periodic schedules (daily cleanups, source polling); tests run them by hand.
    worldbase_periodic_jobs: bool = True
    # Names this deployment's job queue and event channels in a Redis shared with others.
    # QUEUE_NAME: seed 004's name for its queue.
    worldbase_namespace: str = Field(
        default="worldbase",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        validation_alias=_env("worldbase_namespace", "queue_name"),
    )
    # Seconds a WMS gets to answer (GetMap, GetCapabilities) before the request is a 504.
    worldbase_wms_timeout: float = Field(default=15.0, gt=0, le=300)
    # Request line and headers together, in bytes; past it the server answers 431.
    worldbase_max_header_bytes: int = Field(default=64 * 1024, ge=4096, le=16 * 1024 * 1024)
    # Largest GeoTIFF `POST /api/layers/upload` takes (at most 4 GiB, the route's body cap).
    worldbase_upload_max_bytes: int = Field(default=1024 * 1024 * 1024, gt=0, le=4 * 1024**3)
    # Per GeoTIFF upload, read from its header before anything is stored or queued:
    # width x height x bands, and that many pixels at the data type's size (decompressed).
    worldbase_upload_max_pixels: int = Field(default=1024**3, gt=0)
    worldbase_upload_max_decompressed_bytes: int = Field(default=4 * 1024**3, gt=0)
    # Heavy jobs (uploads, imports, reconstructions) one user may have queued or running
    # at once; past it the request is a 429 with Retry-After. 0 turns the limit off.
    worldbase_max_heavy_jobs_per_user: int = Field(default=2, ge=0)
    # GeoJSON positions per feature and per request (feature writes, imports, OSM objects);
    # past them the request is a 422 naming the setting.
    worldbase_max_feature_vertices: int = Field(default=100_000, gt=0)
    worldbase_max_request_vertices: int = Field(default=1_000_000, gt=0)
    # The fast lane (core.fast_lane): memory for public tiles answered before routing
    # (0 turns it off), and the longest an entry lives (changes invalidate it sooner).
    worldbase_fast_lane_mb: int = Field(default=64, ge=0, le=65536)
    worldbase_fast_lane_ttl: float = Field(default=30.0, ge=0, le=86400)
    # Seconds between re-checks of a live socket's access (users, maps, jobs): the backstop
    # for a revocation whose announcement was lost; announced ones close sockets at once.
    worldbase_ws_recheck_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Seconds a job may stay `queued` before recovery checks that its queue message exists
    # (re-queued once if lost, then failed); /health counts such jobs as stuck.
    worldbase_job_queued_grace: float = Field(default=300.0, gt=0, le=86400)
    # Seconds after which a staged upload no queued/running job owns (samsyn/uploads/,
    # samsyn/imports/) and a legacy temp folder are orphans, removed at start-up and by the
    # job reaper. Temp folders of dead processes go at once.
    worldbase_orphan_grace: float = Field(default=3600.0, ge=0, le=30 * 86400)
    # Where `worldbase serve` listens (its --host/--port win).
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    log_json: bool = True
    # Seed 003's DEBUG: debug-level logs (unless LOG_LEVEL says otherwise). Never tracebacks
    # in responses.
    debug: bool = False

    # --- Database -----------------------------------------------------------------------
    database_url: str | None = None
    database_pool_size: int = 20
    database_max_overflow: int = 40
    database_pool_recycle: int = 1800

    # --- Object storage -----------------------------------------------------------------
    # STORAGE_TYPE (seed 004): local|s3. `gcs` is Google Cloud Storage through its
    # S3-compatible API (HMAC keys in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY).
    storage_backend: Literal["local", "s3", "gcs"] = Field(
        default="local", validation_alias=_env("storage_backend", "storage_type")
    )
    storage_bucket: str | None = Field(
        default=None, validation_alias=_env("storage_bucket", "aws_bucket")
    )
    storage_prefix: str = ""
    # The local storage folder (default <data dir>/storage). IMAGE_STORAGE_DIR: seed 002's
    # name for the folder its images go to (D&D images are under <folder>/dnd/images/).
    storage_path: Path | None = Field(
        default=None, validation_alias=_env("storage_path", "image_storage_dir")
    )
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_region: str | None = None  # us-east-1 (s3) or auto (gcs) when unset
    aws_endpoint_url: str | None = None

    # --- Identity -----------------------------------------------------------------------
    jwt_secret: str | None = None
    jwt_algorithm: str = "HS256"
    jwt_expire_minutes: int = 60
    jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    clerk_webhook_secret: str | None = None

    # --- Shared services ----------------------------------------------------------------
    # CORS_ORIGIN: seed 004's singular name (one origin or a list, like CORS_ORIGINS).
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("cors_origins", "cors_origin")
    )
    # Seed 003's ALLOWED_HOSTS: when set, other Host headers are refused (400).
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    redis_url: str | None = None
    cache_default_ttl_seconds: int = 3600
    login_rate_limit: str = "10/minute"
    # Sign-ups per client: each costs an argon2 hash and makes an account.
    register_rate_limit: str = "5/minute"
    # Reverse proxies in front of the app that append to X-Forwarded-For. Rate limits key
    # on the address the outermost of them saw; 0 ignores the header (a client could
    # otherwise pick its own key and dodge its limit).
    trusted_proxy_count: int = 0

    # --- Bestiary (seed 004): photogrammetry uploads and models ---------------------------
    bestiary_upload_max_bytes: int = 200 * 1024 * 1024  # one reconstruction upload request
    bestiary_max_images: int = 300  # photos (or video frames) per upload
    bestiary_zip_max_bytes: int = 1024 * 1024 * 1024  # uncompressed total of a zip upload
    bestiary_video_frames: int = 36  # frames sampled from an uploaded video
    # Rate limits per client address (seed 004: "Implement rate limiting"): character,
    # favorite, export and job writes; portrait/model uploads, photo uploads and processing.
    bestiary_write_rate_limit: str = "60/minute"
    bestiary_upload_rate_limit: str = "10/minute"
    # Seconds to fetch a character's `image_path` / `model_path` URL (504 when exceeded).
    bestiary_fetch_timeout: float = 30.0

    # --- Seed settings (002 and friends) -----------------------------------------------------
    gemini_api_key: str | None = None
    # Points Google's SDK at another endpoint (a proxy, or a local fake in tests).
    gemini_base_url: str | None = None
    # D&D image provider: auto = gemini with GEMINI_API_KEY, else automatic1111 with
    # SD_WEBUI_URL, else procedural (offline); openai = an OpenAI-compatible images API.
    # Providers on loopback/private addresses must be in WORLDBASE_SOURCE_ALLOWLIST.
    image_provider: Literal["auto", "procedural", "gemini", "openai", "automatic1111"] = "auto"
    openai_api_key: str | None = None
    openai_base_url: str = "https://api.openai.com/v1"  # with or without the trailing /v1
    openai_image_model: str = "gpt-image-1"
    sd_webui_url: str | None = None  # AUTOMATIC1111 / Forge started with --api
    sd_webui_steps: int = Field(default=20, ge=1, le=150)
    image_timeout_seconds: float = Field(default=120.0, gt=0, le=600)
    # Seed 002's clients send no credentials; true requires a bearer token for D&D writes.
    dnd_require_auth: bool = False
    max_requests_per_minute: int = 10
    cache_expiry_days: int = 7
    webp_quality: int = 85
    backup_retention_days: int = 30
    backup_dir: Path | None = None

    # --- Source policy (core.source_policy, geo.raster_sources) ------------------------------
    # `public`: http(s)/s3 sources on public addresses are allowed, loopback, private,
    # link-local, multicast and metadata addresses refused (after DNS resolution);
    # `allowlist`: only WORLDBASE_SOURCE_ALLOWLIST.
    worldbase_source_policy: Literal["public", "allowlist"] = "public"
    # URL prefixes (`http://wms.internal:8080/`, `s3://bucket/rasters/`) and networks
    # (`10.2.0.0/16`) sources may name besides public addresses.
    worldbase_source_allowlist: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Folders whose GeoTIFFs may be named by local path; none by default. Never the data
    # directory, the database or /proc, /dev, /sys (start-up refuses such a folder).
    worldbase_raster_dirs: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    # The habitat classification COG the habitats app paints tiles from.
    habitat_raster_url: str | None = None

    @field_validator(
        "worldbase_apps",
        "cors_origins",
        "allowed_hosts",
        "worldbase_source_allowlist",
        "worldbase_raster_dirs",
        mode="before",
    )
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("worldbase_apps")
    @classmethod
    def _known_apps(cls, value: list[str]) -> list[str]:
        if value == ["all"]:
            return list(ALL_APPS)
        unknown = sorted(set(value) - set(ALL_APPS))
        if unknown:
            raise ValueError(f"unknown apps {unknown}; known: {', '.join(ALL_APPS)}")
        return value

    @field_validator("debug", mode="before")
    @classmethod
    def _debug_flag(cls, value: Any) -> Any:
        # Seed 003's reading: true/1/t (any case) is on, anything else off, so a Node-style
        # `DEBUG=express:*` in the same environment is not a start-up error.
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1", "t", "yes", "on")
        return value

    @model_validator(mode="after")
    def _debug_logs(self) -> Self:
        if self.debug and "log_level" not in self.model_fields_set:
            self.log_level = "DEBUG"
        return self

    # --- Derived values ------------------------------------------------------------------
    @property
    def is_production(self) -> bool:
        return self.worldbase_env == "production"

    @property
    def data_dir(self) -> Path:
        return self.worldbase_data_dir.resolve()

    @property
    def sqlalchemy_url(self) -> str:
        """The async driver URL; plain `postgresql://` and `sqlite:///` are upgraded."""
        url = self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'worldbase.db'}"
        for plain, driver in (
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if url.startswith(plain):
                return driver + url[len(plain) :]
        return url

    @property
    def uses_s3(self) -> bool:
        """The S3 storage backend serves `s3` and `gcs` (GCS's S3-compatible API)."""
        return self.storage_backend in ("s3", "gcs")

    @property
    def storage_endpoint_url(self) -> str | None:
        """AWS_ENDPOINT_URL, else GCS's endpoint for `gcs`, else None (AWS itself)."""
        if self.aws_endpoint_url:
            return self.aws_endpoint_url
        return GCS_ENDPOINT if self.storage_backend == "gcs" else None

    @property
    def storage_region(self) -> str:
        if self.aws_region:
            return self.aws_region
        return "auto" if self.storage_backend == "gcs" else "us-east-1"

    @property
    def cors_allowed_origins(self) -> list[str]:
        """CORS_ORIGINS, plus the usual local frontend servers in development."""
        origins = list(self.cors_origins)
        if self.worldbase_env == "development" and "*" not in origins:
            origins += [origin for origin in DEV_CORS_ORIGINS if origin not in origins]
        return origins

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    @property
    def habitat_raster(self) -> str | None:
        """The habitat raster in effect: HABITAT_RASTER_URL, else the seeded demo COG.

        None when neither applies (HABITAT_RASTER_URL unset and the habitats app disabled).
        """
        if self.habitat_raster_url:
            return self.habitat_raster_url
        if "habitats" in self.worldbase_apps:
            return f"storage://{DEMO_HABITAT_RASTER_KEY}"
        return None

    @property
    def public_raster_urls(self) -> frozenset[str]:
        """Rasters public by design, readable through `/cog` exactly as named (the game
        reads its habitat raster there): the habitat raster in effect, nothing else."""
        raster = self.habitat_raster
        return frozenset({raster}) if raster else frozenset()

    @property
    def local_storage_path(self) -> Path:
        return (self.storage_path or self.data_dir / "storage").resolve()

    @property
    def backups_path(self) -> Path:
        return (self.backup_dir or self.data_dir / "backups").resolve()

    @property
    def inline_worker(self) -> bool:
        """Consume jobs inside the web process unless dedicated workers do it (Redis)."""
        if self.worldbase_inline_worker is not None:
            return self.worldbase_inline_worker
        return self.redis_url is None

    @cached_property
    def secret(self) -> str:
        """The JWT signing secret; embedded mode keeps a generated one in the data dir."""
        if self.jwt_secret:
            return self.jwt_secret
        if self.is_production:
            raise ConfigurationError(
                "JWT_SECRET is not set: production refuses to start without a signing secret"
            )
        path = self.data_dir / "jwt_secret"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        path.write_text(value)
        path.chmod(0o600)
        return value

    def check(self) -> None:
        """Fail fast, with one line, on settings that cannot serve."""
        _ = self.secret
        if self.uses_s3 and not self.storage_bucket:
            raise ConfigurationError(
                f"STORAGE_BACKEND={self.storage_backend} needs STORAGE_BUCKET (or AWS_BUCKET)"
            )
        if self.is_production and self.database_url is None:
            raise ConfigurationError("DATABASE_URL is not set: production needs PostgreSQL")
        for folder in self.worldbase_raster_dirs:
            reason = self.raster_dir_problem(folder)
            if reason:
                raise ConfigurationError(f"WORLDBASE_RASTER_DIRS: {folder} {reason}")
        self._check_image_provider()

    def _check_image_provider(self) -> None:
        if self.image_provider == "gemini" and not self.gemini_api_key:
            raise ConfigurationError("IMAGE_PROVIDER=gemini needs GEMINI_API_KEY")
        if self.image_provider == "automatic1111" and not self.sd_webui_url:
            raise ConfigurationError("IMAGE_PROVIDER=automatic1111 needs SD_WEBUI_URL")
        official = self.openai_base_url.rstrip("/").startswith("https://api.openai.com")
        if self.image_provider == "openai" and official and not self.openai_api_key:
            raise ConfigurationError(
                "IMAGE_PROVIDER=openai needs OPENAI_API_KEY (or OPENAI_BASE_URL)"
            )

    @property
    def protected_paths(self) -> list[Path]:
        """What no raster source may ever be: the data dir, the database, system folders."""
        paths = [self.data_dir, Path("/proc"), Path("/dev"), Path("/sys")]
        if self.is_sqlite:
            database = self.sqlalchemy_url.split(":///", 1)[-1].split("?", 1)[0]
            if database and database != ":memory:":
                paths.append(Path(database).resolve())
        return paths

    def raster_dir_problem(self, folder: Path) -> str | None:
        """Why `folder` cannot be a raster folder (None when it can)."""
        resolved = folder.resolve()
        if not folder.is_absolute():
            return "must be an absolute path"
        for protected in self.protected_paths:
            if resolved.is_relative_to(protected) or protected.is_relative_to(resolved):
                return f"overlaps {protected}, which is never a raster source"
        return None

    @property
    def raster_dirs(self) -> list[Path]:
        """The configured raster folders that are allowed (see `raster_dir_problem`)."""
        return [
            folder.resolve()
            for folder in self.worldbase_raster_dirs
            if self.raster_dir_problem(folder) is None
        ]


def get_settings() -> Settings:
    return Settings()
