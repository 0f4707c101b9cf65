"""The monthly cost of a stack, computed from its validated settings and a dated price table.

Prices live in `prices.json` next to this module: each one says where it came from and whether it is an
estimate. `monthly_cost(settings)` returns an itemized `Estimate`; `Estimate.as_output()` is the plain dict
a Pulumi stack output takes. Money is `Decimal` in dollars and cents throughout: no float ever touches it.
Only the standard library is used, so the program needs nothing more at run time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import pulumi

from settings import KEYS, NAMESPACE, HerokuSettings, IaasSettings, LocalSettings, ServersSettings

PRICES_FILE = Path(__file__).with_name("prices.json")
_USD = re.compile(r"^(0|[1-9][0-9]*)\.[0-9]{2}$")
_AS_OF = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
CENT = Decimal("0.01")


class PriceError(pulumi.RunError):
    """A setting names something the price table has no price for (or the table itself is malformed)."""


def _key(section: str, field: str) -> str:
    """The config key of a settings field, so that errors name what the user sets."""
    return next(f"{NAMESPACE}:{k}" for k, where in KEYS.items() if where == (section, field))


@dataclass(frozen=True)
class Source:
    page: str
    read: str
    how: str


@dataclass(frozen=True)
class Price:
    usd: Decimal
    source: str  # a key of PriceTable.sources
    estimate: bool
    flat: bool = False  # one charge whatever the quantity (Heroku Eco's shared pool)
    note: str = ""


@dataclass(frozen=True)
class PriceTable:
    as_of: str
    currency: str
    sources: Mapping[str, Source]
    sections: Mapping[str, Mapping[str, Price]]

    def price(self, section: str, value: str, setting: str) -> Price:
        entries = self.sections.get(section, {})
        if value not in entries:
            priced = ", ".join(entries) or "none"
            raise PriceError(
                f"{setting}: {value!r} has no price in {PRICES_FILE.name} (prices as of {self.as_of}); "
                f"priced values: {priced}. Choose one of those or add a sourced price for it"
            )
        return entries[value]


def parse_prices(data: Mapping[str, Any]) -> PriceTable:
    """Validate the decoded price file. Amounts are strings such as "12.50" so that JSON never makes them
    floats; every entry must name a declared source."""
    problems: list[str] = []
    as_of, currency = str(data.get("as_of", "")), str(data.get("currency", ""))
    if not _AS_OF.match(as_of):
        problems.append(f"as_of: {as_of!r} is not a month such as 2026-11")
    if currency != "USD":
        problems.append(f"currency: {currency!r}; the table and every figure computed from it are USD")
    sources = {
        name: Source(page=str(s.get("page", "")), read=str(s.get("read", "")), how=str(s.get("how", "")))
        for name, s in data.get("sources", {}).items()
    }
    for name, source in sources.items():
        if not (source.page and source.read and source.how):
            problems.append(f"sources.{name}: needs page, read and how")
    sections: dict[str, dict[str, Price]] = {}
    for section, entries in data.get("prices", {}).items():
        sections[section] = {}
        for value, entry in entries.items():
            where = f"prices.{section}.{value}"
            usd, source = entry.get("usd"), entry.get("source")
            if not isinstance(usd, str) or not _USD.match(usd):
                problems.append(f'{where}.usd: {usd!r} is not an amount in a string such as "12.50"')
                continue
            if source not in sources:
                problems.append(f"{where}.source: {source!r} is not one of {', '.join(sources)}")
                continue
            if not isinstance(entry.get("estimate"), bool):
                problems.append(f"{where}.estimate: must be true or false")
                continue
            sections[section][value] = Price(
                usd=Decimal(usd),
                source=source,
                estimate=entry["estimate"],
                flat=bool(entry.get("flat", False)),
                note=str(entry.get("note", "")),
            )
    if problems:
        raise PriceError(f"{PRICES_FILE.name} is not valid:\n" + "\n".join(f"  - {p}" for p in problems))
    return PriceTable(as_of=as_of, currency=currency, sources=sources, sections=sections)


@lru_cache(maxsize=1)
def load_prices(path: Path = PRICES_FILE) -> PriceTable:
    return parse_prices(json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class LineItem:
    item: str
    quantity: int
    unit_usd: Decimal
    source: str
    estimate: bool

    @property
    def subtotal(self) -> Decimal:
        return (self.unit_usd * self.quantity).quantize(CENT)


@dataclass(frozen=True)
class Share:
    """What one process type takes of the VMs: its tasks' CPU limits against the VMs' vCPUs, and that share
    of what the VMs cost (an allocation of the bill, not an extra charge)."""

    process: str
    tasks: int
    cpus: Decimal  # per task
    share: Decimal  # of all vCPUs, 0-1 (over 1: the limits overcommit the VMs)
    usd: Decimal


@dataclass(frozen=True)
class Estimate:
    """A stack's monthly cost: what is billed, one line per priced thing, and what is left out."""

    target: str
    items: tuple[LineItem, ...]
    as_of: str
    currency: str
    notes: tuple[str, ...] = ()
    shares: tuple[Share, ...] = ()

    @property
    def total(self) -> Decimal:
        return sum((i.subtotal for i in self.items), Decimal("0.00")).quantize(CENT)

    @property
    def includes_estimates(self) -> bool:
        return any(i.estimate for i in self.items)

    def as_output(self) -> dict[str, Any]:
        """Plain JSON-able values (amounts as "12.50" strings) for `pulumi.export`."""
        return {
            "total": str(self.total),
            "currency": self.currency,
            "period": "month",
            "pricesAsOf": self.as_of,
            "includesEstimates": self.includes_estimates,
            "items": [
                {
                    "item": i.item,
                    "quantity": i.quantity,
                    "unit": str(i.unit_usd),
                    "subtotal": str(i.subtotal),
                    "source": i.source,
                    "estimate": i.estimate,
                }
                for i in self.items
            ],
            "notes": list(self.notes),
            "processShares": [
                {
                    "process": s.process,
                    "tasks": s.tasks,
                    "cpusPerTask": str(s.cpus),
                    "shareOfVcpus": str(s.share.quantize(Decimal("0.001"))),
                    "usd": str(s.usd.quantize(CENT)),
                }
                for s in self.shares
            ],
        }


def _line(item: str, quantity: int, price: Price) -> LineItem:
    return LineItem(
        item=item,
        quantity=1 if price.flat else quantity,
        unit_usd=price.usd,
        source=price.source,
        estimate=price.estimate,
    )


def _heroku(settings: HerokuSettings, prices: PriceTable) -> tuple[list[LineItem], list[str]]:
    heroku, app = settings.heroku, settings.app
    dyno = prices.price("heroku_dyno", heroku.dyno_size, _key("heroku", "dyno_size"))
    items = [_line(f"web dyno {heroku.dyno_size}", app.web_instances, dyno)]
    for kind, process in sorted(app.processes.items()):
        size = process.heroku_size or heroku.dyno_size
        price = prices.price("heroku_dyno", size, f"{NAMESPACE}:processes.{kind}.herokuSize")
        if process.instances and not (price.flat and dyno.flat):  # Eco's pool is billed once for all types
            items.append(_line(f"{kind} dyno {size}", process.instances, price))
    items += [
        _line(
            f"heroku-postgresql {heroku.postgres_plan}",
            1,
            prices.price("heroku_postgres", heroku.postgres_plan, _key("heroku", "postgres_plan")),
        ),
    ]
    if "redis" in app.accessories:
        redis = prices.price("heroku_redis", heroku.redis_plan, _key("heroku", "redis_plan"))
        items.append(_line(f"heroku-redis {heroku.redis_plan}", 1, redis))
    notes = ["the release phase's dyno runs for seconds per release and is not priced"]
    if dyno.flat:
        notes.append(f"{heroku.dyno_size}: {dyno.note}")
    return items, notes


# vCPUs of each Linode type (prices.json's notes say the same in words).
VCPUS = {
    "g6-nanode-1": 1, "g6-standard-1": 1, "g6-standard-2": 2, "g6-standard-4": 4, "g6-standard-6": 6,
    "g6-dedicated-2": 2, "g6-dedicated-4": 4,
}  # fmt: skip


def process_shares(settings: IaasSettings, vms_usd: Decimal) -> tuple[Share, ...]:
    """Each app process type's share of the VMs by its tasks' CPU limits."""
    total = Decimal(VCPUS[settings.linode.instance_type] * settings.linode.instance_count)
    tasks = [("web", settings.app.web_instances, Decimal(settings.swarm.web_cpus))]
    tasks += [(name, p.instances, Decimal(p.cpus)) for name, p in sorted(settings.app.processes.items())]
    return tuple(
        Share(name, count, cpus, count * cpus / total, vms_usd * count * cpus / total)
        for name, count, cpus in tasks
    )


def _iaas(settings: IaasSettings, prices: PriceTable) -> tuple[list[LineItem], list[str]]:
    linode = settings.linode
    vm_type = linode.instance_type
    items = [
        _line(
            f"Linode {vm_type}",
            linode.instance_count,
            prices.price("linode_instance", vm_type, _key("linode", "instance_type")),
        )
    ]
    if linode.backups:
        backup = prices.price("linode_backup", vm_type, _key("linode", "instance_type"))
        items.append(_line(f"Linode Backups for {vm_type}", linode.instance_count, backup))
    if linode.instance_count > 1:
        nodebalancer = prices.price("linode_service", "nodebalancer", _key("linode", "instance_count"))
        items.append(_line("NodeBalancer", 1, nodebalancer))
    # The bucket holds the private registry's layers and the Postgres backups: every iaas stack has one.
    bucket = prices.price("linode_service", "object-storage", _key("", "target"))
    items.append(_line("Object Storage", 1, bucket))
    notes = [
        "the app's processes share the VMs: only the VMs are billed (processShares splits that by CPU limit)",
        "Object Storage beyond 250 GB and transfer beyond the included allowance are not priced",
    ]
    if linode.managed_database:
        plan = f"{linode.database_type}/{linode.database_cluster_size}"
        setting = f"{_key('linode', 'database_type')} x {_key('linode', 'database_cluster_size')}"
        database = prices.price("linode_database", plan, setting)
        items.append(
            _line(
                f"Managed PostgreSQL {linode.database_type} x {linode.database_cluster_size} node(s)",
                1,
                database,
            )
        )
    else:
        notes.append("PostgreSQL runs as a swarm service on the VMs: no extra charge")
    if "redis" in settings.app.accessories:
        notes.append("redis runs as a swarm service on the VMs: no extra charge")
    return items, notes


def monthly_cost(
    settings: LocalSettings | HerokuSettings | ServersSettings | IaasSettings,
    prices: PriceTable | None = None,
) -> Estimate:
    """The itemized monthly cost of the stack these settings describe (prices: the committed table)."""
    table = prices if prices is not None else load_prices()
    shares: tuple[Share, ...] = ()
    if isinstance(settings, HerokuSettings):
        items, notes = _heroku(settings, table)
    elif isinstance(settings, IaasSettings):
        items, notes = _iaas(settings, table)
        shares = process_shares(settings, items[0].subtotal)
    elif isinstance(settings, ServersSettings):
        items, notes = (
            [],
            [f"runs on {len(settings.servers.hosts)} server(s) you already pay for: not priced here"],
        )
    else:
        items, notes = [], ["runs on this machine's Docker engine: no provider bills it"]
    return Estimate(
        target=settings.target,
        items=tuple(items),
        as_of=table.as_of,
        currency=table.currency,
        notes=tuple(notes),
        shares=shares,
    )
