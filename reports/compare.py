"""IaaS vs PaaS: `python -m reports.compare` (make compare) writes docs/iaas-vs-paas.md and its chart.

Every figure is computed by `costs.monthly_cost` from the committed stack files and `prices.json`; every
claim about what flightdeck automates names the file and the code that shows it (comments and docstrings
do not count), and is reported as missing when that code is not in the tree. Rendering is pure
(`render_report`); only `main` touches files.
The chart needs matplotlib, a dev dependency: the Pulumi program never imports this module.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from contract import ROOT
from reports.costs import Estimate, PriceTable, load_prices, monthly_cost
from reports.stack_files import config_text, read_stack_config, stack_names
from settings import HEROKU_API_KEY, NAMESPACE, HerokuSettings, IaasSettings, parse

REPORT = ROOT / "docs" / "iaas-vs-paas.md"
CHART = ROOT / "docs" / "iaas-vs-paas.png"
SCALE = tuple(range(1, 11))


@dataclass(frozen=True)
class Curve:
    """Monthly totals of one configuration at each web-instance count of SCALE."""

    label: str
    estimates: tuple[Estimate, ...]
    committed_at: int | None  # the web-instance count the committed stack file sets, if it is one

    @property
    def totals(self) -> tuple[Decimal, ...]:
        return tuple(e.total for e in self.estimates)

    @property
    def includes_estimates(self) -> bool:
        return any(e.includes_estimates for e in self.estimates)


# Pricing reads no secret: the secrets the settings require are stand-ins here, never sent anywhere.
_PRICING_ONLY_SECRETS = {
    HEROKU_API_KEY: "not-needed-to-price-a-stack",
    f"{NAMESPACE}:bucketAccessKey": "not-needed-to-price-a-stack",
    f"{NAMESPACE}:bucketSecretKey": "not-needed-to-price-a-stack",
}


def committed(stack: str, **overrides: object) -> Any:
    """The settings of Pulumi.<stack>.yaml, with flightdeck keys overridden."""
    raw = read_stack_config(stack) | _PRICING_ONLY_SECRETS
    raw.update({f"{NAMESPACE}:{key}": config_text(value) for key, value in overrides.items()})
    return parse(raw, set(_PRICING_ONLY_SECRETS))


def heroku_at(instances: int) -> HerokuSettings:
    """prod as committed, with `instances` web dynos."""
    settings = committed("prod", webInstances=instances)
    assert isinstance(settings, HerokuSettings)
    return settings


def linode_at(instances: int, *, managed_database: bool = False) -> IaasSettings:
    """iaas as committed with one VM per web instance, and prod's accessories so both sides run the same
    services (on iaas they are swarm services on the VMs)."""
    accessories = list(heroku_at(1).app.accessories)
    settings = committed(
        "iaas",
        webInstances=instances,
        linodeInstanceCount=instances,
        accessories=accessories,
        linodeManagedDatabase=managed_database,
    )
    assert isinstance(settings, IaasSettings)
    return settings


def curve(
    label: str,
    settings_at: Callable[[int], HerokuSettings | IaasSettings],
    committed_at: int | None,
    prices: PriceTable,
) -> Curve:
    return Curve(label, tuple(monthly_cost(settings_at(n), prices) for n in SCALE), committed_at)


def curves(prices: PriceTable) -> tuple[Curve, Curve, Curve]:
    """Heroku as prod, Linode as iaas, and iaas with its managed database turned on (no committed stack
    runs that, so it has no committed point)."""
    prod, iaas = heroku_at(1), linode_at(1)
    committed_prod = committed("prod").app.web_instances
    committed_iaas = committed("iaas").linode
    return (
        curve(f"Heroku (prod): {prod.heroku.dyno_size} dynos", heroku_at, committed_prod, prices),
        curve(
            f"Linode (iaas): {iaas.linode.instance_type} VMs, PostgreSQL in the swarm",
            linode_at,
            committed_iaas.instance_count,
            prices,
        ),
        curve(
            f"Linode (iaas): {iaas.linode.instance_type} VMs + managed PostgreSQL "
            f"{iaas.linode.database_type} x {iaas.linode.database_cluster_size}",
            lambda n: linode_at(n, managed_database=True),
            None,
            prices,
        ),
    )


@dataclass(frozen=True)
class Evidence:
    """Where the code shows a claim: a file of the repository and a regular expression found in it."""

    path: str
    pattern: str


@dataclass(frozen=True)
class Duty:
    """One operations concern: what each side does for the team, and what it leaves to the team."""

    concern: str
    heroku_done: str
    heroku_left: str
    iaas_done: str
    iaas_left: str
    # Where our code does the "done" part; empty when the provider or Docker itself does it.
    heroku_evidence: tuple[Evidence, ...] = ()
    iaas_evidence: tuple[Evidence, ...] = ()


DUTIES: tuple[Duty, ...] = (
    Duty(
        "OS and runtime patches",
        heroku_done="Heroku patches the hosts and the dyno runtime.",
        heroku_left="Rebuilding the image when its Python base image gets fixes.",
        iaas_done="cloud-init turns on unattended-upgrades (Debian security updates) on every VM, with "
        "automatic reboots at staggered times.",
        iaas_left="Debian release upgrades; checking that the swarm comes back after each reboot; image "
        "rebuilds as on Heroku.",
        iaas_evidence=(
            Evidence("render/cloud_init.py", r"unattended-upgrades"),
            Evidence("render/cloud_init.py", r"Automatic-Reboot"),
        ),
    ),
    Duty(
        "TLS certificates",
        heroku_done="Automated Certificate Management issues and renews the custom domain's certificate.",
        heroku_left="The domain's DNS record.",
        iaas_done="Caddy gets and renews a certificate for the configured domain by itself.",
        iaas_left="The DNS records; noticing a failed renewal in Caddy's logs.",
        heroku_evidence=(Evidence("components/heroku_app.py", r"acm=bool\(settings\.domain\)"),),
        iaas_evidence=(Evidence("render/caddyfile.py", r"token\(domain\)"),),
    ),
    Duty(
        "Database backups and restore",
        heroku_done="The Postgres plan: WAL archived every 60 s on every tier; rollback for 4 days on "
        "Standard and 1 week on Premium, none on Essential.",
        heroku_left="On Essential plans, scheduling PG Backups; rehearsing a restore.",
        iaas_done="A scheduled backup service of the swarm stack runs pg_dump and uploads the dump to the "
        "Object Storage bucket; a lifecycle rule on the bucket expires old dumps.",
        iaas_left="Rehearsing restores; without the managed database a restore is only as recent as "
        "the last dump (no point-in-time recovery).",
        iaas_evidence=(
            Evidence("render/stack_file.py", r"def backup_service"),
            Evidence("backup/backup.py", r"pg_dump"),
            Evidence("components/linode_object_storage.py", r"lifecycle_rules="),
        ),
    ),
    Duty(
        "Scaling",
        heroku_done="`webInstances` sets the dyno formation's quantity; Heroku places the dynos and "
        "routes to them.",
        heroku_left="Choosing the dyno size.",
        iaas_done="`webInstances` sets the swarm's web replicas; `linodeInstanceCount` adds VMs and a "
        "NodeBalancer in front of them.",
        iaas_left="Choosing VM sizes and count; the database shares a VM with the app unless it is managed.",
        heroku_evidence=(Evidence("components/heroku_app.py", r"heroku\.formation\.Formation\("),),
        iaas_evidence=(
            Evidence("targets/processes.py", r"app\.web_instances"),
            Evidence("components/linode_balancer.py", r"linode\.NodeBalancer\("),
        ),
    ),
    Duty(
        "Deploys and rollback",
        heroku_done="The release phase migrates before the new release takes traffic, and a failed "
        "release phase keeps the old release; rolling back is releasing an earlier image digest again.",
        heroku_left="Keeping the digests: Heroku deletes release artifacts older than 30 days and beyond "
        "the last 20.",
        iaas_done="A swarm rolling update that starts new tasks first and rolls back by itself when they "
        "fail their health check.",
        iaas_left="Migrations that the old release can still run against.",
        heroku_evidence=(Evidence("providers/heroku_release.py", r"_release_output\("),),
        iaas_evidence=(
            Evidence("render/stack_file.py", r"\"start-first\""),
            Evidence("render/stack_file.py", r"\"failure_action\": \"rollback\""),
        ),
    ),
    Duty(
        "Background work and scheduled jobs",
        heroku_done="A formation per Procfile process type (worker, scheduler), all released with the same "
        "image in one formation update.",
        heroku_left="Heroku Scheduler cannot be set up through the API; the scheduler dyno runs the app's "
        "own schedule instead.",
        iaas_done="A swarm service per Procfile process type, with a process health check, a stop grace "
        "period and exactly one scheduler replica.",
        iaas_left="Watching the queue's failed jobs (the admin lists them).",
        heroku_evidence=(Evidence("components/heroku_app.py", r"type=kind"),),
        iaas_evidence=(
            Evidence("targets/processes.py", r"Process\(name, p\.instances"),
            Evidence("render/stack_file.py", r"\"/app/healthcheck\.py\", process\.name"),
        ),
    ),
    Duty(
        "Logs",
        heroku_done="Logplex gathers every dyno's output; a log drain ships it elsewhere.",
        heroku_left="A drain and a log store: Logplex keeps only recent lines.",
        iaas_done="Docker keeps each container's output on its VM; `docker service logs` reads a "
        "service's logs across the VMs.",
        iaas_left="Shipping, retention and search of logs; the disk space they take on the VMs.",
    ),
    Duty(
        "Failures and on-call",
        heroku_done="Heroku restarts crashed dynos, replaces failed hosts and staffs the platform's on-call.",
        heroku_left="The app's own errors and the database plan's limits.",
        iaas_done="Swarm restarts failed tasks and reschedules them on healthy VMs; a cloud firewall admits "
        "only HTTP(S), and SSH from the allow list.",
        iaas_left="Everything below the app: VMs, disks, the Docker engine, the swarm manager, PostgreSQL on "
        "a VM, the registry; someone on call for them.",
        iaas_evidence=(
            Evidence("render/stack_file.py", r"\"restart_policy\""),
            Evidence("components/linode_network.py", r"linode\.Firewall\("),
        ),
    ),
)


def code_of(path: Path) -> str:
    """A file's text without what is not code: a Python file has its comments and docstrings blanked out;
    other files stay as they are."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        return text
    lines = text.splitlines()
    for node in ast.walk(ast.parse(text)):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            for number in range(first.lineno, (first.end_lineno or first.lineno) + 1):
                lines[number - 1] = ""
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            row, column = token.start
            lines[row - 1] = lines[row - 1][:column]
    return "\n".join(lines)


def missing(evidence: Iterable[Evidence], root: Path = ROOT) -> tuple[Evidence, ...]:
    """The pieces of evidence whose code is not in the tree under root."""

    def present(e: Evidence) -> bool:
        path = root / e.path
        return path.is_file() and re.search(e.pattern, code_of(path)) is not None

    return tuple(e for e in evidence if not present(e))


def _money(amount: Decimal) -> str:
    return f"${amount:,.2f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _claim(text: str, evidence: tuple[Evidence, ...], absent: tuple[Evidence, ...]) -> str:
    if not absent:
        paths = ", ".join(f"`{path}`" for path in dict.fromkeys(e.path for e in evidence))
        return f"{text} ({paths})" if paths else text
    lacking = "; ".join(f"`{e.path}` has no `{e.pattern}`" for e in absent)
    return f"Not yet in the code ({lacking}): {text}"


def breakdown_table(estimate: Estimate) -> list[str]:
    lines = ["| item | quantity | unit | subtotal | source |", "|---|---:|---:|---:|---|"]
    for item in estimate.items:
        source = item.source + (" (estimate)" if item.estimate else "")
        lines.append(
            f"| {item.item} | {item.quantity} | {_money(item.unit_usd)} | {_money(item.subtotal)} "
            f"| {source} |"
        )
    lines.append(f"| **total** | | | **{_money(estimate.total)}** | |")
    return lines


def _difference(heroku: Curve, linode: Curve) -> str:
    gaps = [h - linode_total for h, linode_total in zip(heroku.totals, linode.totals, strict=True)]
    cheaper = [n for n, gap in zip(SCALE, gaps, strict=True) if gap > 0]
    if len(cheaper) == len(SCALE):
        where = f"cheaper at every scale from {SCALE[0]} to {SCALE[-1]} web instances"
    elif not cheaper:
        where = f"never cheaper between {SCALE[0]} and {SCALE[-1]} web instances"
    else:
        where = "cheaper at " + ", ".join(str(n) for n in cheaper) + " web instance(s)"
    return (
        f"{linode.label} is {where}: Heroku costs {_money(gaps[0])} more a month at {SCALE[0]} and "
        f"{_money(gaps[-1])} more at {SCALE[-1]}."
    )


def render_report(
    stacks: Sequence[tuple[str, Estimate]],
    scale: Sequence[Curve],
    duties: Iterable[tuple[Duty, tuple[Evidence, ...], tuple[Evidence, ...]]],
    prices: PriceTable,
    chart_name: str,
    paas: HerokuSettings,
    iaas: IaasSettings,
) -> str:
    """The report's markdown. duties: (duty, its Heroku evidence missing, its Linode evidence missing)."""
    heroku, linode, managed = scale
    dyno, vm = paas.heroku.dyno_size, iaas.linode.instance_type
    dyno_note = prices.sections["heroku_dyno"][dyno].note
    vm_note = prices.sections["linode_instance"][vm].note
    database = f"{iaas.linode.database_type} x {iaas.linode.database_cluster_size}"
    out = [
        "# IaaS vs PaaS: what flightdeck's stacks cost and what they leave to you",
        "",
        "_Generated by `make compare` (`python -m reports.compare`) from the committed "
        f"`Pulumi.<stack>.yaml` files and `reports/prices.json` (prices as of {prices.as_of}, "
        f"{prices.currency} per month). "
        "Do not edit by hand: change the stack files or the price table and run it again._",
        "",
        "## What each stack costs",
        "",
        "| stack | target | monthly total | includes estimated prices |",
        "|---|---|---:|---|",
    ]
    for name, estimate in stacks:
        flag = "yes" if estimate.includes_estimates else "no"
        out.append(f"| {name} | {estimate.target} | {_money(estimate.total)} | {flag} |")
    for name, estimate in stacks:
        out += ["", f"### {name}", ""]
        out += breakdown_table(estimate) if estimate.items else ["Nothing is billed."]
        out += [""] + [f"- {note}" for note in estimate.notes]
    out += [
        "",
        "## Cost against scale",
        "",
        f"![Monthly cost against web instances]({chart_name})",
        "",
        "| web instances | " + " | ".join(c.label for c in scale) + " |",
        "|---:|" + "---:|" * len(scale),
    ]
    for i, n in enumerate(SCALE):
        out.append(f"| {n} | " + " | ".join(_money(c.totals[i]) for c in scale) + " |")
    out += [
        "",
        _difference(heroku, linode),
        "",
        _difference(heroku, managed),
        "",
        "### What is compared with what",
        "",
        f"- Heroku is the `prod` stack as committed (it runs {heroku.committed_at} web dynos) with its web "
        "dynos varied; Linode is the `iaas` stack as committed (it runs "
        f"{linode.committed_at} VMs) with one VM per web instance and `prod`'s accessories.",
        f"- A dyno and a VM are not the same unit. A {dyno} dyno ({dyno_note}) runs the app alone; a "
        f"{vm} ({vm_note}) shares itself between the app, the proxy and the registry, and on the manager "
        "also PostgreSQL and redis.",
        "- The Heroku database is a managed plan with rollback. The first Linode line runs PostgreSQL as a "
        "swarm service on a VM and backs it up with pg_dump; the second uses Linode's managed PostgreSQL "
        f"sized as the `iaas` stack configures it ({database}). Check that either fits your data before "
        "relying on the comparison.",
        "- Redis is a paid add-on on Heroku and a swarm service on the VMs on Linode.",
        "- Not priced on either side: bandwidth beyond the included allowance, storage beyond the "
        "included amounts, taxes, and the people who run it (next section).",
    ]
    if any(c.includes_estimates for c in scale):
        out += [
            "- Some prices are estimates (see the price table below): the totals that include them are "
            "estimates too.",
        ]
    out += [
        "",
        "## Operations each side leaves to the team",
        "",
        "What flightdeck's code does is shown with the file that does it; a claim whose code is not in "
        "the tree when this report was generated says so.",
        "",
        "| concern | Heroku does | left to you on Heroku | flightdeck on Linode does "
        "| left to you on Linode |",
        "|---|---|---|---|---|",
    ]
    for duty, heroku_absent, iaas_absent in duties:
        cells = [
            duty.concern,
            _claim(duty.heroku_done, duty.heroku_evidence, heroku_absent),
            duty.heroku_left,
            _claim(duty.iaas_done, duty.iaas_evidence, iaas_absent),
            duty.iaas_left,
        ]
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    out += [
        "",
        f"## Price table (as of {prices.as_of})",
        "",
        "| what | plan or type | USD / month | source | estimate | note |",
        "|---|---|---:|---|---|---|",
    ]
    for section, entries in prices.sections.items():
        for value, price in entries.items():
            out.append(
                f"| {section} | {value} | {_money(price.usd)} | {price.source} | "
                f"{'yes' if price.estimate else 'no'} | {_cell(price.note)} |"
            )
    out += ["", "### Sources", ""]
    for name, source in prices.sources.items():
        out.append(f"- **{name}**: {source.page}; read {source.read}; {source.how}.")
    return "\n".join(out) + "\n"


def draw_chart(scale: Sequence[Curve], path: Path, as_of: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 5.5), dpi=120)
    for c, marker in zip(scale, ("o", "s", "^"), strict=True):
        totals = [float(t) for t in c.totals]  # plotting only; the figures in the report stay Decimal
        axes.plot(SCALE, totals, marker=marker, label=c.label + (" *" if c.includes_estimates else ""))
        if c.committed_at is not None:
            at = SCALE.index(c.committed_at)
            axes.annotate(
                f"as committed: {_money(c.totals[at])}",
                (c.committed_at, totals[at]),
                textcoords="offset points",
                xytext=(8, -12),
                fontsize=8,
            )
    axes.set_xlabel("web instances (Heroku dynos; Linode VMs, one replica each)")
    axes.set_ylabel("USD per month")
    axes.set_xticks(SCALE)
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    axes.set_title("flightdeck: monthly cost against scale")
    axes.legend(loc="upper left", fontsize=8)
    figure.text(
        0.01,
        0.01,
        f"List prices as of {as_of} (reports/prices.json). * includes estimated prices.",
        fontsize=7,
    )
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    figure.savefig(path, metadata={"Software": None})  # no version stamp: regenerating is byte-stable
    plt.close(figure)


def write_report(report: Path = REPORT, chart: Path = CHART, root: Path = ROOT) -> None:
    prices = load_prices()
    # Cheapest first: the report reads as a scale from what runs free to what costs most.
    stacks = sorted(
        ((name, monthly_cost(committed(name), prices)) for name in stack_names()), key=lambda s: s[1].total
    )
    scale = curves(prices)
    duties = [(d, missing(d.heroku_evidence, root), missing(d.iaas_evidence, root)) for d in DUTIES]
    report.parent.mkdir(parents=True, exist_ok=True)
    draw_chart(scale, chart, prices.as_of)
    text = render_report(stacks, scale, duties, prices, chart.name, heroku_at(1), linode_at(1))
    report.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_report()
    print(f"wrote {REPORT.relative_to(ROOT)} and {CHART.relative_to(ROOT)}")
