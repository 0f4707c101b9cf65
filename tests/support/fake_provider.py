"""A stand-in resource provider plugin for the packages whose real plugins cannot be built here (heroku,
random, command, linode) and for docker-build, so that the real Pulumi engine can run flightdeck's program
without any cloud, registry or build.

The engine starts `pulumi-resource-<package> <engine address>` and reads the port of its gRPC
ResourceProvider server from the first line of stdout, as `pulumi.dynamic.__main__` serves it.
`write_launchers(directory, versions)` writes such executables (a shell line running this file with the
given Python, so that any venv holding grpc and the Pulumi SDK serves them); put the directory first on PATH.

What it does:
- GetPluginInfo: the version given to the launcher (what the state records for the package's provider);
- CheckConfig/Check echo the inputs; Configure accepts secrets and previews;
- DiffConfig/Diff: DIFF_SOME naming the changed top-level keys when the new inputs differ from the old
  inputs (ignoreChanges honoured), else DIFF_NONE; never a replacement (the engine still replaces on
  `--replace` or replaceOnChanges);
- Create/Update: outputs are the inputs plus deterministic computed outputs the program reads (COMPUTED),
  unknown in a preview of a create; Update keeps the computed outputs the resource already had; Read
  returns the state as it is; Delete forgets. Nothing outside this process is touched: a command's
  scripts are only recorded.
- As `pulumi-python`, it also stands in for the SDK's dynamic provider plugin where a dynamic provider must
  not run (the old layout's Heroku release, which calls Heroku's API: tests/fixtures/old_layout/): the
  state then holds what that provider returned (COMPUTED, ECHOED, ID_KEYS) and the serialized provider the
  program sent.
- With FAKE_PROVIDER_LOG=<file>, every resource call is appended there as a JSON line
  (package, method, urn, type, changed keys for a diff, the inputs for a create or update).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent import futures
from pathlib import Path
from typing import Any

# The Python distribution of each package's SDK: its version is the one the program asks the plugin for.
PACKAGES = {
    "heroku": "pulumiverse-heroku",
    "random": "pulumi-random",
    "command": "pulumi-command",
    "linode": "pulumi-linode",
    "docker-build": "pulumi-docker-build",
}
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's marker of a value known only after an update


def write_launchers(directory: Path, versions: Mapping[str, str], python: str = sys.executable) -> Path:
    """`pulumi-resource-<package>` for each package in versions (package -> plugin version) in directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for package, version in versions.items():
        launcher = directory / f"pulumi-resource-{package}"
        # -P: not this directory first on sys.path (tests/support/secrets.py would shadow the stdlib's).
        command = shlex.join([python, "-P", str(Path(__file__).resolve()), package, version])
        launcher.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        launcher.chmod(0o755)
    return directory


def pulumi_root(
    directory: Path,
    pulumi_bin: Path,
    versions: Mapping[str, str],
    keep: Iterable[str] = (),
    python: str = sys.executable,
) -> Path:
    """A Pulumi installation (directory/bin): the CLI of pulumi_bin, those of its plugins named in keep, and
    the fake plugins of versions. The Automation API puts its root's bin first on the engine's PATH and the
    engine takes a plugin from PATH first, so the fakes win over the plugins beside the real CLI."""
    bin_dir = directory / "bin"
    write_launchers(bin_dir, versions, python)
    for name in ("pulumi", *keep):
        link = bin_dir / name
        link.unlink(missing_ok=True)
        link.symlink_to(pulumi_bin / name)
    return directory


def installed_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """The version of each package's SDK in this interpreter (packages whose SDK is missing are left out)."""
    from importlib import metadata

    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(PACKAGES[package])
        except metadata.PackageNotFoundError:
            continue
    return versions


# -- deterministic values --------------------------------------------------------------------------------


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def fake_id(package: str, urn: str) -> str:
    """Linode IDs are integers (the program converts them); the others look like Heroku's UUIDs."""
    h = _digest("id", urn)
    if package == "linode":
        return str(10_000_000 + int(h[:8], 16) % 90_000_000)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _octet(urn: str, salt: str) -> int:
    return 2 + int(_digest(salt, urn)[:4], 16) % 250


def _text(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) and value != UNKNOWN else default


def _plain(value: Any) -> Any:
    """A value without the secret wrapper the engine sends to providers that accept secrets."""
    if isinstance(value, dict) and "4dabf18193072939515e22adb298388d" in value:
        return value.get("value")
    return value


def _heroku_app(urn: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    name = _text(_plain(inputs.get("name")), _name(urn))
    host = f"{name}-{_digest('host', urn)[:12]}.herokuapp.com"
    return {
        "uuid": fake_id("heroku", urn),
        "herokuHostname": host,
        "webUrl": f"https://{host}/",
        "gitUrl": f"https://git.heroku.com/{name}.git",
        "allConfigVars": _plain(inputs.get("configVars")) or {},
    }


def _heroku_addon(urn: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    service = _text(_plain(inputs.get("plan")), "addon").split(":", 1)[0]
    return {
        "name": f"{service}-fake-{_digest('addon', urn)[:8]}",
        "providerId": f"resource{int(_digest('provider', urn)[:6], 16)}@heroku.example",
        "configVars": ["REDIS_URL"] if service == "heroku-redis" else ["DATABASE_URL"],
        "configVarValues": {},
    }


def _image(urn: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    digest = "sha256:" + _digest("image", urn, json.dumps(inputs, sort_keys=True, default=str))
    tags = [t for t in (_plain(inputs.get("tags")) or []) if isinstance(t, str) and t != UNKNOWN]
    repository = tags[0].rsplit(":", 1)[0] if tags and "@" not in tags[0] else "fake.invalid/image"
    return {"digest": digest, "ref": f"{repository}@{digest}", "contextHash": _digest("context", urn)}


def _password(urn: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    length = int(_plain(inputs.get("length")) or 16)
    stream = "".join(_digest("password", urn, str(n)) for n in range(1 + length // 64))
    result = ("fake" + stream)[:length]
    return {"result": result, "bcryptHash": "$2a$10$fake" + _digest("bcrypt", urn)[:49]}


def _command(urn: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    return {"stdout": f"fake stdout of {_name(urn)}", "stderr": ""}


def _container_release(urn: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """What the Heroku release provider of the old layout returned; it called Heroku's API."""
    ref = _text(_plain(inputs.get("image_ref")))
    return {
        "image_id": "sha256:" + _digest("config", ref),
        "release_id": fake_id("heroku", urn + ref),
        "version": 2,
        "status": "succeeded",
    }


def _linode_instance(urn: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    public, private = f"192.0.2.{_octet(urn, 'public')}", f"192.168.128.{_octet(urn, 'private')}"
    return {
        "ipv4s": [public, private],
        "ipAddress": public,
        "privateIpAddress": private,
        "ipv6": f"2001:db8::{_octet(urn, 'v6'):x}/128",
        "status": "running",
    }


def _node_balancer(urn: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "ipv4": f"192.0.2.{_octet(urn, 'balancer')}",
        "ipv6": f"2001:db8::{_octet(urn, 'balancer6'):x}",
        "hostname": f"nb-{_digest('nb', urn)[:8]}.fake.linode.example",
    }


def _bucket(_urn: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    region = _text(_plain(inputs.get("region")), _text(_plain(inputs.get("cluster")), "eu-central"))
    label = _text(_plain(inputs.get("label")), "bucket")
    endpoint = f"{region.removesuffix('-1')}-1.linodeobjects.com"
    return {"region": region, "s3Endpoint": endpoint, "hostname": f"{label}.{endpoint}", "endpointType": "E1"}


def _bucket_key(urn: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "accessKey": "FAKEACCESS" + _digest("ak", urn)[:10].upper(),
        "secretKey": "fake" + _digest("sk", urn),
    }


def _database(urn: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "hostPrimary": f"a{_digest('db', urn)[:8]}-akamai-prod.fake.linodedb.example",
        "hostSecondary": "",
        "port": 5432,
        "rootUsername": "akmadmin",
        "rootPassword": "fake" + _digest("dbpass", urn)[:28],
        "caCert": "-----BEGIN CERTIFICATE-----\nZmFrZQ==\n-----END CERTIFICATE-----\n",
        "status": "active",
    }


# Computed outputs per resource type: what the programs read beyond their own inputs.
COMPUTED: dict[str, Callable[[str, Mapping[str, Any]], dict[str, Any]]] = {
    "heroku:app/app:App": _heroku_app,
    "heroku:addon/addon:Addon": _heroku_addon,
    "heroku:domain/domain:Domain": lambda urn, _i: {
        "cname": f"fake-{_digest('cname', urn)[:12]}.herokudns.com"
    },
    "docker-build:index:Image": _image,
    "random:index/randomPassword:RandomPassword": _password,
    "command:local:Command": _command,
    "command:remote:Command": _command,
    "linode:index/instance:Instance": _linode_instance,
    "linode:index/nodeBalancer:NodeBalancer": _node_balancer,
    "linode:index/objectStorageBucket:ObjectStorageBucket": _bucket,
    "linode:index/objectStorageKey:ObjectStorageKey": _bucket_key,
    "linode:index/databasePostgresqlV2:DatabasePostgresqlV2": _database,
    "pulumi-python:dynamic/heroku:ContainerRelease": _container_release,
}
# Types whose outputs hold only these of their inputs (a dynamic provider's outputs are what its create
# returned, plus the serialized provider).
ECHOED: dict[str, tuple[str, ...]] = {
    "pulumi-python:dynamic/heroku:ContainerRelease": ("app", "image_ref", "release_timeout", "__provider"),
}


# Types whose ID is one of their inputs (the old Heroku release provider used the app's name).
ID_KEYS = {"pulumi-python:dynamic/heroku:ContainerRelease": "app"}


def resource_id(package: str, urn: str, inputs: Mapping[str, Any]) -> str:
    key = ID_KEYS.get(type_of(urn))
    return _text(_plain(inputs.get(key))) if key else fake_id(package, urn)


def outputs(urn: str, inputs: Mapping[str, Any], made: Mapping[str, Any]) -> dict[str, Any]:
    """A resource's outputs: its (echoed) inputs, then its computed values."""
    keep = ECHOED.get(type_of(urn))
    echoed = {k: v for k, v in inputs.items() if keep is None or k in keep}
    return {**echoed, **made}


def type_of(urn: str) -> str:
    return urn.split("::")[-2].rsplit("$", 1)[-1]


def computed(urn: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    make = COMPUTED.get(type_of(urn))
    return make(urn, inputs) if make else {}


def changed_keys(olds: Mapping[str, Any], news: Mapping[str, Any], ignore: Iterable[str] = ()) -> list[str]:
    """Top-level keys whose value differs (a value unknown in news counts as changed)."""
    skip = {key.split(".", 1)[0].split("[", 1)[0] for key in ignore}
    keys = sorted((set(olds) | set(news)) - skip)
    return [k for k in keys if k not in olds or k not in news or olds[k] != news[k] or news[k] == UNKNOWN]


# -- the gRPC server -------------------------------------------------------------------------------------


def serve(package: str, version: str) -> None:
    import grpc  # type: ignore[import-untyped]
    from google.protobuf import empty_pb2, json_format, struct_pb2  # type: ignore[import-untyped]
    from pulumi.runtime import proto
    from pulumi.runtime.proto import provider_pb2_grpc

    log_path = os.environ.get("FAKE_PROVIDER_LOG")
    log_lock = threading.Lock()

    def record(method: str, urn: str, **details: Any) -> None:
        if not log_path:
            return
        line = json.dumps({"package": package, "method": method, "urn": urn, "type": type_of(urn), **details})
        with log_lock, Path(log_path).open("a") as log:
            log.write(line + "\n")

    def to_dict(message: Any) -> dict[str, Any]:
        return json_format.MessageToDict(message) if message is not None else {}

    def to_struct(values: Mapping[str, Any]) -> Any:
        message = struct_pb2.Struct()
        message.update(dict(values))
        return message

    def diff(olds: Mapping[str, Any], news: Mapping[str, Any], ignore: Iterable[str]) -> Any:
        keys = changed_keys(olds, news, ignore)
        changes = proto.DiffResponse.DIFF_SOME if keys else proto.DiffResponse.DIFF_NONE
        return keys, proto.DiffResponse(changes=changes, diffs=keys)

    class FakeProvider(provider_pb2_grpc.ResourceProviderServicer):
        def GetPluginInfo(self, request: Any, context: Any) -> Any:
            return proto.PluginInfo(version=version)

        def CheckConfig(self, request: Any, context: Any) -> Any:
            return proto.CheckResponse(inputs=request.news)

        def DiffConfig(self, request: Any, context: Any) -> Any:
            olds = to_dict(request.old_inputs) if request.HasField("old_inputs") else to_dict(request.olds)
            return diff(olds, to_dict(request.news), request.ignoreChanges)[1]

        def Configure(self, request: Any, context: Any) -> Any:
            return proto.ConfigureResponse(acceptSecrets=True, supportsPreview=True)

        def Check(self, request: Any, context: Any) -> Any:
            record("Check", request.urn)
            return proto.CheckResponse(inputs=request.news)

        def Diff(self, request: Any, context: Any) -> Any:
            olds = to_dict(request.old_inputs) if request.HasField("old_inputs") else to_dict(request.olds)
            keys, response = diff(olds, to_dict(request.news), request.ignoreChanges)
            record("Diff", request.urn, changed=keys)
            return response

        def Create(self, request: Any, context: Any) -> Any:
            inputs = to_dict(request.properties)
            made = computed(request.urn, inputs)
            if request.preview:
                made = dict.fromkeys(made, UNKNOWN)
            else:
                record("Create", request.urn, inputs=inputs)
            return proto.CreateResponse(
                id="" if request.preview else resource_id(package, request.urn, inputs),
                properties=to_struct(outputs(request.urn, inputs, made)),
            )

        def Update(self, request: Any, context: Any) -> Any:
            olds, news = to_dict(request.olds), to_dict(request.news)
            made = {k: olds.get(k, v) for k, v in computed(request.urn, news).items()}
            if not request.preview:
                record("Update", request.urn, inputs=news)
            return proto.UpdateResponse(properties=to_struct(outputs(request.urn, news, made)))

        def Read(self, request: Any, context: Any) -> Any:
            record("Read", request.urn)
            return proto.ReadResponse(id=request.id, properties=request.properties, inputs=request.inputs)

        def Delete(self, request: Any, context: Any) -> Any:
            record("Delete", request.urn)
            return empty_pb2.Empty()

        def Cancel(self, request: Any, context: Any) -> Any:
            return empty_pb2.Empty()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(FakeProvider(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    # The engine kills its plugins when it is done; a plugin whose engine died goes too.
    parent = os.getppid()
    while os.getppid() == parent:
        threading.Event().wait(1.0)
    server.stop(0)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
