"""The database backups of a servers stack, from this machine: `make backup STACK=…` takes one now,
`make backups STACK=…` lists them, `make restore STACK=… FROM=<key|file name|latest>` restores one into the
running stack (verified before it touches the database, in one transaction).

Each runs as a one-off swarm job shaped like the stack's backup service (its image, environment and secrets;
backup/backup.py does the work), so it reaches the database and the bucket as the scheduled job does.
FROM may be another stack's backup (its full key, e.g. backups/<app>/app/<time>.dump), when both stacks use
the same bucket: that is how a new stack is restored from an old one.
"""

from __future__ import annotations

import argparse
import sys

from tools.stack_access import AccessError, app_deployment, manager, run_job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["backup", "list", "restore"])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--from", dest="source", help="restore: a key, a file name, or latest")
    args = parser.parse_args(argv)
    if args.command == "restore" and not args.source:
        parser.error("restore needs FROM=<key|file name|latest> (make backups STACK=… lists them)")
    try:
        deployment = app_deployment(args.stack)
        stack = str(deployment["stack"])
        with manager(deployment) as engine:
            if not engine.client.services.list(filters={"name": f"{stack}_backup"}):
                raise AccessError(
                    f"the stack {stack} has no backup service (its database is managed, or it is local)"
                )
            job = run_job(engine, f"{stack}_backup", [args.command, *([args.source] if args.source else [])])
    except AccessError as err:
        print(f"backups: {err}", file=sys.stderr)
        return 1
    print(job.output, end="")
    return 0 if job.succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
