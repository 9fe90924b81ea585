"""A node or gateway whose broker certificate files cannot be used stops at its start, named."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from edge.errors import GatepostError
from edge.mqtt import BrokerUrl, Endpoint
from firmware_tools.site_pki import IdentityRole, SitePki
from simulators.processes import python_module

GATE_EXAMPLE = Path(__file__).parents[1] / "docs" / "examples" / "gate.yaml"
URL = BrokerUrl("127.0.0.1", 8883, tls=True)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        python_module("edge.cli", *args), capture_output=True, text=True, timeout=60
    )


def test_endpoint_check__valid(site_pki: SitePki) -> None:
    files = site_pki.issue(IdentityRole.GATE, "check-ok")
    files.endpoint(URL).check()  # no exception: the files load


@pytest.mark.parametrize("broken", ["ca", "cert", "key"])
def test_endpoint_check__invalid_names_the_files(
    site_pki: SitePki, tmp_path: Path, broken: str
) -> None:
    files = site_pki.issue(IdentityRole.GATE, f"check-{broken}")
    paths = {"ca": files.ca, "cert": files.cert, "key": files.key}
    paths[broken] = tmp_path / "missing.pem"
    with pytest.raises(GatepostError, match=f"broker {URL}: cannot use .*missing.pem"):
        Endpoint(URL, ca=paths["ca"], cert=paths["cert"], key=paths["key"]).check()


def test_endpoint_check__a_key_that_is_not_the_certificates_is_refused(
    site_pki: SitePki,
) -> None:
    mine, other = (site_pki.issue(IdentityRole.GATE, n) for n in ("check-mine", "check-other"))
    with pytest.raises(GatepostError, match="cannot use"):
        Endpoint(URL, ca=mine.ca, cert=mine.cert, key=other.key).check()


def test_edge_run__a_missing_certificate_stops_the_node_with_its_name(
    site_pki: SitePki, tmp_path: Path
) -> None:
    files = site_pki.issue(IdentityRole.GATE, "check-node")
    data = yaml.safe_load(GATE_EXAMPLE.read_text())
    data["node"]["state_dir"] = str(tmp_path / "state")
    data["gpio"]["pin_factory"] = "mock"
    root = Ed25519PrivateKey.generate().public_key()
    (tmp_path / "root.pem").write_bytes(
        root.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    data["trust"]["root_keys"] = [str(tmp_path / "root.pem")]
    data["secrets"] = {"id_hash_key_file": str(tmp_path / "id-hash.key")}
    data["broker"].update(ca=str(files.ca), cert=str(tmp_path / "gone.pem"), key=str(files.key))
    config = tmp_path / "gate.yaml"
    config.write_text(yaml.safe_dump(data, allow_unicode=True))
    done = run("edge", "run", "--config", str(config))
    assert done.returncode == 1, done.stderr
    assert "secrets.id_hash_key_file: [Errno 2] No such file or directory" in done.stderr
    assert "Traceback" not in done.stderr
    (tmp_path / "id-hash.key").write_bytes(b"k" * 32)
    done = run("edge", "run", "--config", str(config))
    assert done.returncode == 1, done.stderr
    assert f"cannot use {files.ca}, {tmp_path / 'gone.pem'}, {files.key}" in done.stderr
