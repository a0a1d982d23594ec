"""Settings, read from the environment and `.env`, with the seeds' own variable names.

Embedded defaults (SQLite, local files, in-process cache/jobs/hub) need no setting at all;
production (`WORLDBASE_ENV=production`) must name its secret explicitly.
"""

from __future__ import annotations

import json
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar, cast

from pydantic import AliasChoices, Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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


def env(*names: str) -> AliasChoices:
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


_CONFIG = SettingsConfigDict(
    env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
)


class AppSettings(BaseSettings):
    """One app's settings (`apps/<name>/settings.py`), read from the same environment and
    `.env`; its fields name their environment variables with `env(...)`."""

    model_config = _CONFIG

    def check(self) -> None:
        """Fail fast (ConfigurationError, one line) on settings that cannot serve."""


AppSettingsT = TypeVar("AppSettingsT", bound=AppSettings)


class Settings(BaseSettings):
    """The core's settings; each app's own are `settings.app(ItsSettings)`."""

    model_config = _CONFIG
    # What the settings were built from (keyword values, `_env_file`): app settings are
    # read from the same, so a test's keyword override reaches the app that reads it.
    _init_values: dict[str, Any] = PrivateAttr(default_factory=dict)
    _apps: dict[type[AppSettings], AppSettings] = PrivateAttr(default_factory=dict)
    # Set by the app registry from the enabled apps (`registry.configure`), not the env.
    _public_rasters: frozenset[str] = PrivateAttr(default_factory=frozenset)

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._init_values = values

    def app(self, cls: type[AppSettingsT]) -> AppSettingsT:
        """An app's settings, read once per Settings from the same sources."""
        if cls not in self._apps:
            self._apps[cls] = cls(**self._init_values)
        return cast(AppSettingsT, self._apps[cls])

    # --- Worldbase itself -------------------------------------------------------------
    # NODE_ENV: seed 004's name (the same three values).
    worldbase_env: Literal["development", "production", "test"] = Field(
        default="development", validation_alias=env("worldbase_env", "node_env")
    )
    # The apps to mount, by name (`all`: every app in worldbase/apps/registry.py).
    worldbase_apps: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["all"])
    worldbase_data_dir: Path = Path("./data")
    worldbase_admin_email: str | None = None
    worldbase_admin_password: str | None = None
    # Largest accepted request body; uploads that need more say so in their own routes.
    worldbase_max_body_bytes: int = 10 * 1024 * 1024
    # Run the Huey consumer inside `serve` (embedded); off when dedicated workers run.
    worldbase_inline_worker: bool | None = None
    # QUEUE_CONCURRENCY: seed 004's name.
    worldbase_worker_threads: int = Field(
        default=2, ge=1, validation_alias=env("worldbase_worker_threads", "queue_concurrency")
    )
    # The apps' periodic schedules (daily cleanups, source polling); tests run them by hand.
    worldbase_periodic_jobs: bool = True
    # Names this deployment's job queue and event channels in a Redis shared with others.
    # QUEUE_NAME: seed 004's name for its queue.
    worldbase_namespace: str = Field(
        default="worldbase",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        validation_alias=env("worldbase_namespace", "queue_name"),
    )
    # Request line and headers together, in bytes; past it the server answers 431.
    worldbase_max_header_bytes: int = Field(default=64 * 1024, ge=4096, le=16 * 1024 * 1024)
    # Heavy jobs (uploads, imports, reconstructions) one user may have queued or running
    # at once; past it the request is a 429 with Retry-After. 0 turns the limit off.
    worldbase_max_heavy_jobs_per_user: int = Field(default=2, ge=0)
    # GeoJSON positions per feature (feature writes, imports, OSM objects); past it the
    # request is a 422 naming the setting.
    worldbase_max_feature_vertices: int = Field(default=100_000, gt=0)
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
    # Fault bounds (core.outages): seconds to open a database connection, and the longest
    # one statement of a web request may take (0: no bound); past either the request is a
    # 503. Jobs' statements are not bounded.
    worldbase_db_connect_timeout: float = Field(default=5.0, gt=0, le=300)
    worldbase_db_command_timeout: float = Field(default=60.0, ge=0, le=86400)
    # Seconds a Redis command (cache, rate limits, events) may take before Redis counts as
    # down (the cache is then skipped, limits kept in-process, events dropped).
    worldbase_redis_timeout: float = Field(default=2.0, gt=0, le=300)
    # Seconds to connect to, and to wait for each read from, the object store; a call is
    # tried twice at most, so a frozen store is a 503 within about 2x this for a read, 4x
    # for an upload (a refused connection fails at once).
    worldbase_storage_timeout: float = Field(default=5.0, gt=0, le=600)
    # Seconds without a heartbeat after which a running job's worker counts as dead: the
    # job is re-queued (or failed after its last attempt) within about 1.5x this.
    worldbase_job_stale_seconds: float = Field(default=60.0, ge=3, le=86400)
    # Seconds `serve` and `worker` give in-flight requests and running jobs on SIGTERM.
    worldbase_shutdown_timeout: float = Field(default=20.0, gt=0, le=3600)
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
        default="local", validation_alias=env("storage_backend", "storage_type")
    )
    storage_bucket: str | None = Field(
        default=None, validation_alias=env("storage_bucket", "aws_bucket")
    )
    storage_prefix: str = ""
    # The local storage folder (default <data dir>/storage). IMAGE_STORAGE_DIR: seed 002's
    # name for the folder its images go to (D&D images are under <folder>/dnd/images/).
    storage_path: Path | None = Field(
        default=None, validation_alias=env("storage_path", "image_storage_dir")
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
    # Where a verified external token (and a Clerk webhook's user) says "administrator":
    # dotted paths, comma-separated; empty turns the flag off (see `core.auth.admin_claim`).
    jwt_admin_claim: str = "public_metadata.isAdmin,publicMetadata.isAdmin"

    # --- Shared services ----------------------------------------------------------------
    # CORS_ORIGIN: seed 004's singular name (one origin or a list, like CORS_ORIGINS).
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=env("cors_origins", "cors_origin")
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

    # --- Seed settings (002 and friends) -----------------------------------------------------
    # WebP quality of stored images (D&D images, bestiary portraits).
    webp_quality: int = 85
    backup_retention_days: int = 30
    # Stored objects travel inside the archive (every backend), so a backup alone refills an
    # empty bucket; off: S3/GCS objects stay in their bucket and are only listed.
    backup_objects: bool = True
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
    def public_raster_urls(self) -> frozenset[str]:
        """Rasters public by design, readable through `/cog` exactly as named (the game
        reads its habitat raster there): those the enabled apps publish, nothing else."""
        return self._public_rasters

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
