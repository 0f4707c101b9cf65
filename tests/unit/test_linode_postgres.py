"""LinodePostgres under Pulumi mocks: PostgreSQL 16 open to the VMs only, a DATABASE_URL that verifies the
server against the database's own CA (mounted at /run/secrets/database_ca.crt), protection on request."""

from __future__ import annotations

import base64

import dj_database_url
import pulumi
import pytest
from cryptography import x509
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from components.linode_postgres import (
    CA_PATH,
    LinodePostgres,
    LinodePostgresArgs,
    ca_pem,
    database_url,
)
from tests.support.linode_mocks import (
    CA_PEM,
    DATABASE,
    DATABASE_HOST,
    DATABASE_PASSWORD,
    DATABASE_PORT,
    DATABASE_USER,
    Run,
    run,
)

APP = "flightdeck-iaas"
VM_IPS = ["203.0.113.1", "203.0.113.2"]


def deploy(*, protect_data: bool = False) -> Run[LinodePostgres]:
    args = LinodePostgresArgs(APP, "eu-central", "g6-nanode-1", 3, VM_IPS, protect_data=protect_data)

    def build(opts: pulumi.ResourceOptions) -> LinodePostgres:
        return LinodePostgres("postgres", args, opts=opts)

    return run(build, lambda db: {"url": db.database_url, "ca": db.ca_certificate, "host": db.host})


def test_postgres_16_admits_the_vms_only() -> None:
    database = deploy().one(DATABASE)
    assert database.inputs["engineId"] == "postgresql/16"
    assert database.inputs["label"] == f"{APP}-db"
    assert database.inputs["region"] == "eu-central"
    assert database.inputs["type"] == "g6-nanode-1"
    assert database.inputs["clusterSize"] == 3
    assert database.inputs["allowLists"] == [f"{ip}/32" for ip in VM_IPS]


def test_the_url_verifies_the_server_against_the_mounted_ca_and_the_app_reads_it_so() -> None:
    deployed = deploy()
    url = deployed.values["url"]
    assert deployed.secret["url"] and deployed.secret["ca"]
    assert url.startswith("postgres://")
    assert url.endswith(f"/defaultdb?sslmode=verify-full&sslrootcert={CA_PATH}")
    assert CA_PATH == "/run/secrets/database_ca.crt"
    # What the app does with it (airline/settings.py): dj-database-url, then psycopg's connection string.
    parsed = dj_database_url.parse(url)
    assert (parsed["USER"], parsed["PASSWORD"]) == (DATABASE_USER, DATABASE_PASSWORD)
    assert (parsed["HOST"], parsed["PORT"], parsed["NAME"]) == (DATABASE_HOST, DATABASE_PORT, "defaultdb")
    assert parsed["OPTIONS"] == {"sslmode": "verify-full", "sslrootcert": CA_PATH}
    conninfo = conninfo_to_dict(make_conninfo(host=parsed["HOST"], **parsed["OPTIONS"]))
    assert conninfo["sslmode"] == "verify-full" and conninfo["sslrootcert"] == CA_PATH


def test_the_ca_is_output_as_the_pem_the_database_signs_with() -> None:
    deployed = deploy()
    assert deployed.values["ca"] == CA_PEM
    certificate = x509.load_pem_x509_certificate(deployed.values["ca"].encode())
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert deployed.values["host"] == DATABASE_HOST


@pytest.mark.parametrize("protect", [False, True])
def test_the_database_is_protected_and_retained_on_request(protect: bool) -> None:
    options = deploy(protect_data=protect).options["postgres-db"]
    assert bool(options.protect) is protect
    assert bool(options.retain_on_delete) is protect


def test_every_part_of_the_url_is_escaped() -> None:
    url = database_url("us@er", "p:a/s?s#w&rd%", "db.example.net", 5432)
    parsed = dj_database_url.parse(url)
    assert (parsed["USER"], parsed["PASSWORD"]) == ("us@er", "p:a/s?s#w&rd%")
    assert parsed["OPTIONS"]["sslmode"] == "verify-full"
    with pytest.raises(ValueError, match="not a DNS name"):
        database_url("u", "p", "db.example.net/evil?sslmode=disable", 5432)
    with pytest.raises(ValueError, match="not a TCP port"):
        database_url("u", "p", "db.example.net", 0)


def test_a_ca_that_is_not_a_pem_certificate_is_refused() -> None:
    assert ca_pem(base64.b64encode(CA_PEM.encode()).decode()) == CA_PEM
    with pytest.raises(ValueError, match="does not hold a PEM certificate"):
        ca_pem(base64.b64encode(b"mock-ca").decode())
    with pytest.raises(ValueError, match="not base64"):
        ca_pem("not base64!")
