"""Pickles are found by content, whatever they are called (issue 29, point 2).

Each file of the corpus runs ``echo`` when loaded by the tool its format belongs to (``torch.load``,
``numpy.load(allow_pickle=True)``, ``joblib.load``, ``pickle.load`` of a tar member), and each is given a
name that says something else. None is stored by default; with ``allow_pickle`` each is stored and marked
unsafe in the Hub's ``securityFileStatus`` format with the imports found. Files that hold no pickle pass,
whatever their names.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tarfile
import zipfile

import httpx
import pytest

from fmhub.client import LocalHub, UploadFile
from fmhub.errors import UnsafeFileError
from fmhub.server import HubConfig, create_app
from fmhub.store import AddFile, Store

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")


class _Payload:
    """Runs a shell command when unpickled: the shape of every pickle exploit."""

    def __reduce__(self):
        return (os.system, ("echo pwned-by-pickle",))


def _saved(obj, **kwargs) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, **kwargs)
    return buffer.getvalue()


def _corpus() -> dict[str, bytes]:
    import joblib

    plain = pickle.dumps(_Payload())
    npy, jl, tar, zipped = io.BytesIO(), io.BytesIO(), io.BytesIO(), io.BytesIO()
    np.save(npy, np.array([_Payload()], dtype=object), allow_pickle=True)
    joblib.dump({"model": _Payload()}, jl)
    with tarfile.open(fileobj=tar, mode="w") as archive:
        info = tarfile.TarInfo("checkpoint/data.pkl")
        info.size = len(plain)
        archive.addfile(info, io.BytesIO(plain))
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("archive/data.pkl", plain)
    return {
        "model.pth.tar": _saved({"w": torch.zeros(2), "x": _Payload()}),  # torch.save's zip
        "legacy.json": _saved({"x": _Payload()}, _use_new_zipfile_serialization=False),  # legacy format
        "weights.npy": plain,  # a plain pickle
        "embeddings.npy": npy.getvalue(),  # an object array
        "classifier.txt": jl.getvalue(),  # joblib
        "checkpoint.tar": tar.getvalue(),  # a tar archive holding a pickle
        "tokenizer.zip": zipped.getvalue(),  # a zip holding a pickle
        "README.md": plain,
    }


CORPUS = _corpus()


def _clean() -> dict[str, bytes]:
    npy = io.BytesIO()
    np.save(npy, np.arange(4, dtype=np.float32))
    return {"pytorch_model.bin": os.urandom(4096), "plain.npy": npy.getvalue(),
            "config.json": json.dumps({"hidden_size": 32}).encode(), "notes.pkl": b"just text, named like a pickle\n"}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_the_store_refuses_a_disguised_pickle(local_store: Store, name: str) -> None:
    local_store.create_repo("me/r")
    blob = local_store.put_bytes(CORPUS[name])
    with pytest.raises(UnsafeFileError) as refused:
        local_store.commit("me/r", [AddFile(name, blob.sha256, blob.size)], title="t", author="me")
    assert "posix.system" in refused.value.imports or "os.system" in refused.value.imports
    assert "--allow-pickle" in refused.value.hint
    assert name not in [e.path for e in local_store.list_files("me/r")]


def test_files_without_a_pickle_pass_whatever_their_names(local_store: Store) -> None:
    hub = LocalHub(local_store)
    hub.create_repo("me/clean")
    hub.commit("me/clean", [UploadFile(name, data) for name, data in _clean().items()], title="clean")
    assert set(_clean()) <= {e.path for e in local_store.list_files("me/clean")}


def test_the_client_refuses_before_sending(local_store: Store, tmp_path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "weights.npy").write_bytes(CORPUS["weights.npy"])
    hub = LocalHub(local_store)
    with pytest.raises(UnsafeFileError, match="weights.npy"):
        hub.upload(folder, "me/uploaded")
    assert "me/uploaded" not in [r.repo_id for r in local_store.list_repos()]


def test_hf_api_refuses_and_allow_pickle_marks_with_imports(local_store: Store, tokens, hf_env, serve_app) -> None:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    with serve_app(create_app(local_store, HubConfig())) as url:
        api = HfApi(endpoint=url, token=tokens.alice)
        api.create_repo("alice/strict")
        with pytest.raises(HfHubHTTPError) as refused:
            api.upload_file(path_or_fileobj=CORPUS["model.pth.tar"], path_in_repo="model.pth.tar",
                            repo_id="alice/strict")
        assert refused.value.response.status_code == 400
        assert "pickle" in refused.value.response.json()["error"]
    with serve_app(create_app(local_store, HubConfig(allow_pickle=True))) as url:
        api = HfApi(endpoint=url, token=tokens.alice)
        api.create_repo("alice/legacy")
        api.upload_file(path_or_fileobj=CORPUS["weights.npy"], path_in_repo="weights.npy", repo_id="alice/legacy")
        api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id="alice/legacy")
        files = {f.path: f for f in api.list_repo_tree("alice/legacy")}
        info = httpx.get(f"{url}/api/models/alice/legacy").json()
    status = files["weights.npy"].security  # parsed by huggingface_hub itself
    assert status["status"] == "unsafe" and not status["safe"]
    assert status["pickle_import_scan"]["highestSafetyLevel"] == "dangerous"
    assert {"module": "posix", "name": "system", "safety": "dangerous"} in status["pickle_import_scan"]["imports"]
    assert files["config.json"].security is None
    sibling = next(s for s in info["siblings"] if s["rfilename"] == "weights.npy")
    assert sibling["securityFileStatus"]["status"] == "unsafe"


def test_fmhub_load_never_unpickles_a_pickle_only_repo(local_store: Store, monkeypatch) -> None:
    import fmhub
    from fmhub.errors import InvalidInputError

    hub = LocalHub(local_store)
    hub.create_repo("me/pickled")
    config = {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 37, "vocab_size": 99, "architectures": ["BertForSequenceClassification"]}
    hub.commit("me/pickled", [UploadFile("config.json", json.dumps(config).encode()),
                              UploadFile("pytorch_model.bin", _saved({"w": torch.zeros(2)}))],
               title="pickle only", allow_pickle=True)

    def unpickling_is_a_failure(*args, **kwargs):  # a spy: the test fails if anything calls torch.load
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", unpickling_is_a_failure)
    with pytest.raises(InvalidInputError, match="safetensors"):
        fmhub.load("me/pickled", hub=hub)
