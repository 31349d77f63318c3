"""The hub runs without the ML stack: the base install (``pip install fmhub``) has no torch.

The server, the client and the store commands run in a child process where importing any package of the ``ml``
extra fails, as it would on a hub-only install; the unmodified huggingface_hub client then uploads and
downloads through that server. A lifecycle command there ends with exit code 2 and the install hint.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

# Importing any of these fails in the child processes (the ml extra's packages, as import names).
ML = ("torch", "transformers", "datasets", "safetensors", "onnx", "onnxruntime", "sklearn", "matplotlib",
      "tensorboard", "charset_normalizer")

_BLOCKER = textwrap.dedent(f"""
    import sys
    from importlib.abc import MetaPathFinder

    class _NoML(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {ML!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}} (a hub-only install)", name=name)
            return None

    sys.meta_path.insert(0, _NoML())
""")


@pytest.fixture
def no_ml(tmp_path: Path) -> dict[str, str]:
    """An environment whose Python processes cannot import the ML stack (a sitecustomize that refuses it)."""
    folder = tmp_path / "no-ml"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(_BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]),
           "FMHUB_HOME": str(tmp_path / "hub-home"), "FMHUB_ADMIN_TOKEN": "fmhub_no-ml-admin-0123456789",
           "HF_HUB_DISABLE_XET": "1", "HF_HUB_CACHE": str(tmp_path / "hf-cache")}
    env.pop("FMHUB_ENDPOINT", None)
    return env


def _fmhub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fmhub", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_blocker_blocks(no_ml: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-c", "import torch"], env=no_ml, capture_output=True, text=True)
    assert done.returncode != 0 and "hub-only install" in done.stderr


def test_a_hub_serves_the_hugging_face_client_without_the_ml_stack(no_ml: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "fmhub", "server", "--port", str(port), "--log-level",
                               "warning"], env=no_ml, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail(f"the hub did not start: {server.stdout.read() if server.poll() is not None else ''}")
        client = textwrap.dedent(f"""
            import sys
            from huggingface_hub import HfApi, hf_hub_download
            api = HfApi(endpoint={url!r}, token="fmhub_no-ml-admin-0123456789")
            api.create_repo("admin/tiny")
            api.upload_file(path_or_fileobj=b'{{"hidden_size": 32}}', path_in_repo="config.json", repo_id="admin/tiny")
            path = hf_hub_download("admin/tiny", "config.json", endpoint={url!r}, token="fmhub_no-ml-admin-0123456789")
            print(open(path).read())
            assert "torch" not in sys.modules and "transformers" not in sys.modules
        """)
        done = subprocess.run([sys.executable, "-c", client], env=no_ml, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert '"hidden_size": 32' in done.stdout
        listed = _fmhub({**no_ml, "FMHUB_ENDPOINT": url, "FMHUB_TOKEN": "fmhub_no-ml-admin-0123456789"},
                        "ls", "admin/tiny")
        assert listed.returncode == 0 and "config.json" in listed.stdout, listed.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_lifecycle_command_on_a_hub_only_install_says_what_to_install(no_ml: dict[str, str]) -> None:
    done = _fmhub(no_ml, "train", "--task", "text-classification", "--model", "a/b", "--data", "a/c",
                  "--output", "a/d")
    assert done.returncode == 2, done.stderr
    assert "needs the ML stack" in done.stderr and "pip install 'fmhub[ml]'" in done.stderr
    assert "Traceback" not in done.stderr
