"""Behind nginx with X-Accel-Redirect, the Hugging Face client downloads what the hub would serve itself."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from huggingface_hub import hf_hub_download

from fmhub.server import HubConfig, create_app
from fmhub.store import AddFile, Store

NGINX = shutil.which("nginx") or (Path("/usr/sbin/nginx").exists() and "/usr/sbin/nginx")
pytestmark = pytest.mark.skipif(not NGINX, reason="nginx is not installed (Debian: apt-get install nginx)")
EXAMPLE = Path(__file__).parents[2] / "examples" / "nginx" / "fmhub.conf"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _nginx_conf(tmp: Path, port: int, hub_url: str, blobs: Path) -> Path:
    """The documented example config, run as this user in a temp prefix."""
    server = EXAMPLE.read_text().replace("listen 80;", f"listen 127.0.0.1:{port};") \
        .replace("BLOBS", str(blobs)).replace("http://127.0.0.1:8000", hub_url)
    temp_paths = "".join(f"{kind}_temp_path {tmp}/{kind};\n" for kind in
                         ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = tmp / "nginx.conf"
    conf.write_text(f"daemon off; master_process off; pid {tmp}/nginx.pid; error_log {tmp}/error.log warn;\n"
                    f"events {{ worker_connections 256; }}\n"
                    f"http {{ access_log off; sendfile on; {temp_paths} {server} }}\n")
    return conf


def test_downloads_through_nginx_accel_redirect(local_store: Store, tokens, serve_app, hf_env, tmp_path) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB
    local_store.create_repo("alice/big")
    blob = local_store.put_bytes(data)
    local_store.commit("alice/big", [AddFile("weights.dat", blob.sha256, blob.size)], title="t", author="alice")
    local_store.create_repo("alice/hidden", private=True)
    local_store.commit("alice/hidden", [AddFile("weights.dat", blob.sha256, blob.size)], title="t", author="alice")
    blobs = Path(local_store.blobs.local_path(blob.sha256)).parents[2]
    port = _free_port()
    with serve_app(create_app(local_store, HubConfig(accel_redirect="/_fmhub_blobs/"))) as hub_url:
        prefix = tmp_path / "nginx"
        prefix.mkdir()
        conf = _nginx_conf(prefix, port, hub_url, blobs)
        nginx = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(prefix), "-e", str(prefix / "error.log")])
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    httpx.get(url + "/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            direct = httpx.get(f"{hub_url}/alice/big/resolve/main/weights.dat")
            assert direct.headers["x-accel-redirect"].startswith("/_fmhub_blobs/") and direct.content == b""

            path = hf_hub_download("alice/big", "weights.dat", endpoint=url, cache_dir=tmp_path / "c", token=False)
            assert Path(path).read_bytes() == data
            ranged = httpx.get(f"{url}/alice/big/resolve/main/weights.dat", headers={"Range": "bytes=10-19"})
            assert ranged.status_code == 206 and ranged.content == data[10:20]
            assert ranged.headers["x-repo-commit"] == local_store.resolve_revision("alice/big").oid
            assert ranged.headers["etag"] == f'"{blob.sha256}"'
            # Access is still the hub's decision: the internal location cannot be reached directly.
            assert httpx.get(f"{url}/alice/hidden/resolve/main/weights.dat").status_code == 404
            assert httpx.get(url + direct.headers["x-accel-redirect"]).status_code == 404
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
