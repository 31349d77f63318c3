"""A bundle that is not what was exported is refused, naming the object, with nothing visible on the hub."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from _mirror_helpers import Source

from fmhub.errors import IntegrityError, InvalidInputError
from fmhub.mirror import Target, import_bundle, plan_export, write_bundle
from fmhub.store import Store
from fmhub.store.maintenance import fsck


@pytest.fixture
def bundle(source: Source, tmp_path: Path) -> Path:
    path = tmp_path / "clf.fmbundle"
    write_bundle(source.store, plan_export(source.store, [Target("acme/clf"), Target("acme/base")]), path)
    return path


def _members(path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(path) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers()]


def _rewrite(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    out = path.with_suffix(".altered")
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def _refused(target: Store, path: Path, error: type[Exception], match: str) -> None:
    with open(path, "rb") as f, pytest.raises(error, match=match):
        import_bundle(target, f)
    assert target.list_repos() == []  # nothing visible
    assert fsck(target).ok


def _a_blob(path: Path) -> tuple[str, int]:
    """A blob member's name and the offset of its data in the file."""
    with tarfile.open(path) as tar:
        member = next(m for m in tar.getmembers() if m.name.startswith("blobs/") and m.size > 100)
        return member.name, member.offset_data


def test_one_byte_of_a_blob(bundle: Path, target: Store) -> None:
    name, offset = _a_blob(bundle)
    raw = bytearray(bundle.read_bytes())
    raw[offset + 10] ^= 0x01
    bundle.write_bytes(bytes(raw))
    _refused(target, bundle, IntegrityError, f"bundle object {name} is corrupt: sha256 mismatch")


def test_a_manifest_entry_changed(bundle: Path, target: Store) -> None:
    members = _members(bundle)
    manifest = json.loads(members[0][1])
    entry = next(e for e in manifest["objects"] if e["kind"] == "commit")
    entry["sha256"] = "0" * 64
    members[0] = (members[0][0], json.dumps(manifest).encode())
    _refused(target, _rewrite(bundle, members), IntegrityError, f"bundle object {entry['name']} is corrupt")


def test_a_record_changed_with_its_manifest_entry(bundle: Path, target: Store) -> None:
    """Even a consistent forgery of a commit (record and manifest agree) fails: the commit id is its content's hash."""
    import hashlib

    members = _members(bundle)
    manifest = json.loads(members[0][1])
    index = next(i for i, (m, _) in enumerate(members) if m.name.startswith("commits/"))
    record = json.loads(members[index][1])
    record["author"] = "mallory"
    data = json.dumps(record).encode()
    members[index] = (members[index][0], data)
    entry = next(e for e in manifest["objects"] if e["name"] == members[index][0].name)
    entry["sha256"], entry["size"] = hashlib.sha256(data).hexdigest(), len(data)
    members[0] = (members[0][0], json.dumps(manifest).encode())
    _refused(target, _rewrite(bundle, members), IntegrityError,
             f"bundle object {entry['name']} is corrupt: commit {record['oid']}: its content hashes to")


def test_an_object_the_manifest_does_not_list(bundle: Path, target: Store) -> None:
    members = _members(bundle)
    extra = tarfile.TarInfo("blobs/" + "a" * 64)
    members.append((extra, b"smuggled"))
    _refused(target, _rewrite(bundle, members), IntegrityError, "blobs/a{64} is corrupt: the manifest does not list it")


def test_truncated_inside_a_blob(bundle: Path, target: Store) -> None:
    name, offset = _a_blob(bundle)
    bundle.write_bytes(bundle.read_bytes()[:offset + 50])
    _refused(target, bundle, InvalidInputError, f"truncated or damaged at {name}|truncated: .* first {name}")


def test_truncated_between_members(bundle: Path, target: Store) -> None:
    members = _members(bundle)
    cut = _rewrite(bundle, members[:-1])
    _refused(target, cut, InvalidInputError, f"truncated: 1 object.* did not arrive, first {members[-1][0].name}")


def test_not_a_bundle(tmp_path: Path, target: Store) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    _refused(target, path, InvalidInputError, "not a bundle")
