"""The cluster's processes on loopback: PostgreSQL/PostGIS, Redis, moto's S3 server, nginx,
`worldbase serve` x2 and `worldbase worker` x2, each on a free port in one temp dir.

Every process is started in its own session so a kill reaches it alone, and `stop_all`
(called in the harness's `finally`) kills whatever is still running.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _pg_bin() -> Path:
    """CLUSTER_PG_BIN, else the newest Debian PostgreSQL's server binaries."""
    if os.environ.get("CLUSTER_PG_BIN"):
        return Path(os.environ["CLUSTER_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
NGINX_CONF = ROOT / "deploy" / "nginx" / "nginx.conf"
S3_KEY = "cluster-test"
BUCKET = "worldbase-cluster"
ADMIN = ("cluster-admin@example.org", "cluster-admin-password")
JWT_SECRET = "cluster-test-secret-" + "x" * 40


class StartFailed(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StartFailed(f"process on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise StartFailed(f"nothing listens on port {port} after {timeout:.0f} s")


@dataclass
class Proc:
    """One managed process: how to start it again, its current Popen, its log."""

    name: str
    args: list[str]
    log: Path
    port: int | None = None
    env: dict[str, str] | None = None
    user: str | None = None
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self, timeout: float = 60.0) -> None:
        with self.log.open("ab") as out:
            out.write(f"\n=== start {self.starts + 1} at {time.time():.3f}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                self.args,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                user=self.user,
                start_new_session=True,
                cwd=self.log.parent,
            )
        self.starts += 1
        if self.port is not None:
            wait_port(self.port, timeout, self.popen)

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def send(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if not self.alive():
            return
        assert self.popen is not None
        try:
            os.kill(self.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            os.kill(self.pid, sig)
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)
        except ProcessLookupError:
            pass
        self._kill_group()

    def _kill_group(self) -> None:
        # Children it left (offload pools, a uvicorn reloader) go with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def kill9(self) -> None:
        """`kill -9` of the process and everything it started (as a crashed machine)."""
        if self.popen is None:
            return
        self._kill_group()
        self.popen.wait(timeout=10)

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass
class Cluster:
    root: Path
    namespace: str = "cluster"
    procs: dict[str, Proc] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    # --- addresses -----

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['nginx']}"

    def api_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[f'api{index}']}"

    def database_url(self, database: str = "worldbase") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.ports['postgres']}/{database}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports['redis']}/0"

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def app_env(self, **extra: str) -> dict[str, str]:
        """The served settings every `worldbase` process of the cluster gets."""
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PROJ_DATA", "GDAL_DATA")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env |= {
            # The Worldbase under test: this checkout's, or another tree's (CLUSTER_APP_SRC).
            "PYTHONPATH": os.environ.get("CLUSTER_APP_SRC") or str(ROOT / "src"),
            "WORLDBASE_ENV": "production",
            "DATABASE_URL": self.database_url(),
            "DATABASE_POOL_SIZE": "5",
            "DATABASE_MAX_OVERFLOW": "10",
            "REDIS_URL": self.redis_url,
            "STORAGE_BACKEND": "s3",
            "STORAGE_BUCKET": BUCKET,
            "AWS_ENDPOINT_URL": self.s3_url,
            "AWS_ACCESS_KEY_ID": S3_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_KEY,
            "AWS_REGION": "us-east-1",
            "WORLDBASE_INLINE_WORKER": "false",
            "WORLDBASE_NAMESPACE": self.namespace,
            "WORLDBASE_PERIODIC_JOBS": "false",
            "JWT_SECRET": JWT_SECRET,
            "TRUSTED_PROXY_COUNT": "1",
            "WORLDBASE_ADMIN_EMAIL": ADMIN[0],
            "WORLDBASE_ADMIN_PASSWORD": ADMIN[1],
            # A dead worker's job is recovered this fast (the fail-soft work's setting; a
            # build without it ignores the name, and recovery then takes its built-in time).
            "WORLDBASE_JOB_STALE_SECONDS": os.environ.get("CLUSTER_JOB_STALE_SECONDS", "10"),
            # A queued job whose queue message died with Redis is re-queued after this.
            "WORLDBASE_JOB_QUEUED_GRACE": "20",
            "WORLDBASE_MAX_HEAVY_JOBS_PER_USER": "0",
            # The load comes from one address (through nginx): only the login limit is under
            # test (cross-node); the others would turn the workload into 429s.
            "LOGIN_RATE_LIMIT": os.environ.get("CLUSTER_LOGIN_RATE_LIMIT", "40/minute"),
            "REGISTER_RATE_LIMIT": "10000/minute",
            "DND_MAX_REQUESTS_PER_MINUTE": "10000",
            "BESTIARY_WRITE_RATE_LIMIT": "10000/minute",
            "BESTIARY_UPLOAD_RATE_LIMIT": "10000/minute",
            "LOG_JSON": "true",
            "LOG_LEVEL": "WARNING",
        }
        return env | extra

    # --- start -----

    def _add(self, name: str, args: list[str], **kwargs: object) -> Proc:
        proc = Proc(name=name, args=args, log=self.root / "logs" / f"{name}.log", **kwargs)  # type: ignore[arg-type]
        self.procs[name] = proc
        return proc

    def start_postgres(self) -> None:
        data = self.root / "pgdata"
        sockets = self.root / "pgsock"
        postgres = pwd.getpwnam("postgres")
        for parent in self.root.parents:  # postgres must reach its folders
            if parent.stat().st_uid == os.getuid() and parent != Path("/"):
                parent.chmod(parent.stat().st_mode | 0o755)
        for folder in (self.root, sockets):
            folder.mkdir(parents=True, exist_ok=True)
            os.chown(folder, postgres.pw_uid, postgres.pw_gid)
        (self.root / "logs").mkdir(exist_ok=True)
        os.chmod(self.root / "logs", 0o777)
        subprocess.run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            user="postgres",
            check=True,
            capture_output=True,
            timeout=120,
            cwd=self.root,
        )
        port = self.ports.setdefault("postgres", free_port())
        args = [str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets)]
        args += ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300"]
        args += ["-c", "fsync=off", "-c", "full_page_writes=off", "-c", "jit=off"]
        self._add("postgres", args, port=port, user="postgres").start()
        self.psql("postgres", "CREATE DATABASE worldbase")
        self.psql("worldbase", "CREATE EXTENSION IF NOT EXISTS postgis")

    def psql(self, database: str, sql: str) -> str:
        result = subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.ports["postgres"]),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-tAc",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.stdout

    def start_redis(self) -> None:
        port = self.ports.setdefault("redis", free_port())
        args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--daemonize", "no"]
        self._add("redis", args, port=port).start()

    def start_s3(self) -> None:
        port = self.ports.setdefault("s3", free_port())
        executable = shutil.which("moto_server") or str(BIN / "moto_server")
        self._add("s3", [executable, "-H", "127.0.0.1", "-p", str(port)], port=port).start()
        self.s3_client().create_bucket(Bucket=BUCKET)

    def s3_client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_KEY,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30),
        )

    def worldbase(
        self, *args: str, timeout: float = 300, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "worldbase"), *args],
            env=self.app_env(**env),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def migrate(self) -> None:
        result = self.worldbase("migrate")
        if result.returncode != 0:
            raise StartFailed(f"worldbase migrate failed:\n{result.stderr[-3000:]}")

    def start_apis(self, count: int = 2) -> None:
        for index in range(count):
            port = self.ports.setdefault(f"api{index}", free_port())
            data = self.root / f"data-api{index}"
            data.mkdir(exist_ok=True)
            args = [str(BIN / "worldbase"), "serve", "--host", "127.0.0.1", "--port", str(port)]
            env = self.app_env(WORLDBASE_DATA_DIR=str(data))
            self._add(f"api{index}", args, port=port, env=env)
        for index in range(count):
            self.start_api(index)

    def start_api(self, index: int, timeout: float = 90.0) -> None:
        proc = self.procs[f"api{index}"]
        proc.start(timeout=timeout)
        self.wait_healthy(self.api_url(index), proc, timeout)

    def wait_healthy(self, base: str, proc: Proc, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                raise StartFailed(f"{proc.name} exited:\n{proc.tail()}")
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise StartFailed(f"{proc.name} is not healthy after {timeout:.0f} s:\n{proc.tail()}")

    def start_workers(self, count: int = 2) -> None:
        for index in range(count):
            data = self.root / f"data-worker{index}"
            data.mkdir(exist_ok=True)
            env = self.app_env(WORLDBASE_DATA_DIR=str(data))
            self._add(f"worker{index}", [str(BIN / "worldbase"), "worker"], env=env).start()

    def write_upstreams(self, apis: list[int]) -> None:
        lines = [
            f"server 127.0.0.1:{self.ports[f'api{i}']} max_fails=1 fail_timeout=2s;\n" for i in apis
        ]
        (self.root / "nginx" / "upstreams.conf").write_text("".join(lines))

    def start_nginx(self) -> None:
        prefix = self.root / "nginx"
        (prefix / "temp").mkdir(parents=True, exist_ok=True)  # nginx makes the folders in it
        port = self.ports.setdefault("nginx", free_port())
        text = NGINX_CONF.read_text()
        if text.count("listen 8080;") != 1:
            raise StartFailed("deploy/nginx/nginx.conf must hold exactly one `listen 8080;`")
        (prefix / "nginx.conf").write_text(
            text.replace("listen 8080;", f"listen 127.0.0.1:{port};")
        )
        self.write_upstreams([0, 1])
        args = ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr"]
        args += ["-g", "daemon off;"]
        self._add("nginx", args, port=port).start()

    def reload_nginx(self, apis: list[int]) -> None:
        self.write_upstreams(apis)
        self.procs["nginx"].send(signal.SIGHUP)
        time.sleep(1.0)  # old workers finish, new ones read the new upstreams

    def start_all(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.start_postgres()
        self.start_redis()
        self.start_s3()
        self.migrate()
        self.start_apis()
        self.start_workers()
        self.start_nginx()

    def stop_all(self) -> None:
        order = ["nginx", "api0", "api1", "worker0", "worker1", "s3", "redis", "postgres"]
        names = order + [n for n in self.procs if n not in order]
        for name in names:
            proc = self.procs.get(name)
            if proc is not None:
                try:
                    proc.stop(signal.SIGINT if name == "postgres" else signal.SIGTERM, timeout=15)
                except Exception:
                    proc.kill9()
