"""Monthly costs from the committed stack files and the price table, and the IaaS vs PaaS report."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components import compare, costs
from components.costs import PRICES_FILE, PriceError, load_prices, monthly_cost, parse_prices
from components.settings import HerokuDynoSize, HerokuPostgresPlan, HerokuRedisPlan, LinodeType, parse
from tests.support.stacks import STACKS, stack_config


def cost(stack: str, **overrides: Any) -> Decimal:
    return monthly_cost(parse(*stack_config(stack, **overrides))).total


def raw_prices() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PRICES_FILE.read_text(encoding="utf-8"))
    return data


# Hand-checked from components/prices.json:
#   local: nothing billed                                                             =   $0.00
#   dev:   1 x basic dyno $7 + essential-0 $5                                        =  $12.00
#   prod:  2 x standard-2x dyno $50 + standard-0 $50 + heroku-redis premium-0 $15    = $165.00
#   iaas:  3 x g6-standard-1 $12 + 3 x its backups $2.50 + NodeBalancer $10
#          + Object Storage $5 = 36 + 7.50 + 10 + 5                                  =  $58.50
EXPECTED = {"local": "0.00", "dev": "12.00", "prod": "165.00", "iaas": "58.50"}


@pytest.mark.parametrize("stack", STACKS)
def test_each_committed_stack_costs_the_hand_checked_figure(stack: str) -> None:
    estimate = monthly_cost(parse(*stack_config(stack)))
    assert estimate.total == Decimal(EXPECTED[stack])
    assert estimate.total == sum((i.subtotal for i in estimate.items), Decimal(0))
    assert estimate.as_of == "2026-11" and estimate.currency == "USD"


def test_prod_breakdown_names_each_line_with_its_quantity_and_source() -> None:
    items = monthly_cost(parse(*stack_config("prod"))).items
    assert [(i.item, i.quantity, str(i.unit_usd), str(i.subtotal)) for i in items] == [
        ("web dyno standard-2x", 2, "50.00", "100.00"),
        ("heroku-postgresql standard-0", 1, "50.00", "50.00"),
        ("heroku-redis premium-0", 1, "15.00", "15.00"),
    ]
    # premium-0 has no source in the stored docs: the estimate says so.
    assert [i.estimate for i in items] == [False, False, True]


def test_iaas_breakdown_has_vms_backups_nodebalancer_and_bucket() -> None:
    estimate = monthly_cost(parse(*stack_config("iaas")))
    assert [(i.item, i.quantity, str(i.subtotal)) for i in estimate.items] == [
        ("Linode g6-standard-1", 3, "36.00"),
        ("Linode Backups for g6-standard-1", 3, "7.50"),
        ("NodeBalancer", 1, "10.00"),
        ("Object Storage", 1, "5.00"),
    ]
    assert any("PostgreSQL runs as a swarm service" in n for n in estimate.notes)


def test_sizes_plans_and_switches_change_the_cost() -> None:
    # 2 x standard-1x $25 + standard-0 $50 + premium-0 $15
    assert cost("prod", herokuDynoSize="standard-1x") == Decimal("115.00")
    # prod without redis: 2 x $50 + $50
    assert cost("prod", accessories=[]) == Decimal("150.00")
    # dev with redis mini: $7 + $5 + $3
    assert cost("dev", accessories=["redis"]) == Decimal("15.00")
    # iaas without backups: 3 x $12 + $10 + $5
    assert cost("iaas", linodeBackups=False) == Decimal("51.00")
    # one VM: no NodeBalancer: $12 + $2.50 + $5
    assert cost("iaas", webInstances=1, linodeInstanceCount=1) == Decimal("19.50")
    # managed PostgreSQL, three g6-standard-2 nodes: $58.50 + $147
    assert cost(
        "iaas", linodeManagedDatabase=True, linodeDatabaseType="g6-standard-2", linodeDatabaseClusterSize=3
    ) == Decimal("205.50")
    # redis on iaas is a swarm service: same bill
    assert cost("iaas", accessories=["redis"]) == Decimal("58.50")


def test_eco_is_one_flat_subscription() -> None:
    estimate = monthly_cost(parse(*stack_config("dev", herokuDynoSize="eco")))
    # Eco pool $5 + essential-0 $5
    assert estimate.total == Decimal("10.00")
    assert estimate.items[0].quantity == 1
    assert any("1,000 dyno hours" in n for n in estimate.notes)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=49))
def test_each_more_dyno_adds_exactly_one_dyno_price(instances: int) -> None:
    dyno = load_prices().sections["heroku_dyno"]["standard-2x"].usd
    fewer, more = cost("prod", webInstances=instances), cost("prod", webInstances=instances + 1)
    assert more - fewer == dyno > 0


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=1, max_value=10), st.integers(min_value=1, max_value=10))
def test_iaas_cost_strictly_increases_with_vms(a: int, b: int) -> None:
    low, high = sorted((a, b))
    cost_low = cost("iaas", webInstances=low, linodeInstanceCount=low)
    cost_high = cost("iaas", webInstances=high, linodeInstanceCount=high)
    assert (cost_low < cost_high) == (low < high)
    assert (cost_low == cost_high) == (low == high)


def test_every_value_the_settings_allow_has_a_price() -> None:
    table = load_prices()
    for section, allowed in (
        ("heroku_dyno", get_args(HerokuDynoSize)),
        ("heroku_postgres", get_args(HerokuPostgresPlan)),
        ("heroku_redis", get_args(HerokuRedisPlan)),
        ("linode_instance", get_args(LinodeType)),
        ("linode_backup", get_args(LinodeType)),
        ("linode_database", [f"{t}/{n}" for t in get_args(LinodeType) for n in (1, 3)]),
    ):
        for value in allowed:
            assert table.price(section, value, "test").usd > 0


def test_a_plan_without_a_price_is_an_error_naming_the_setting_and_the_priced_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = raw_prices()
    del data["prices"]["heroku_redis"]["premium-0"]
    monkeypatch.setattr(costs, "load_prices", lambda: parse_prices(data))
    with pytest.raises(PriceError) as error:
        monthly_cost(parse(*stack_config("prod")))
    message = str(error.value)
    assert "flightdeck:herokuRedisPlan: 'premium-0' has no price" in message
    assert "priced values: mini, premium-1, premium-2" in message


def test_a_database_size_without_a_price_names_both_keys() -> None:
    data = raw_prices()
    del data["prices"]["linode_database"]["g6-nanode-1/3"]
    settings_ = parse(*stack_config("iaas", linodeManagedDatabase=True, linodeDatabaseClusterSize=3))
    with pytest.raises(PriceError, match=r"linodeDatabaseType x flightdeck:linodeDatabaseClusterSize"):
        monthly_cost(settings_, parse_prices(data))


@pytest.mark.parametrize(
    ("path", "value", "complaint"),
    [
        (("prices", "heroku_dyno", "basic", "usd"), 7.0, "is not an amount in a string"),
        (("prices", "heroku_dyno", "basic", "source"), "hearsay", "'hearsay' is not one of"),
        (("prices", "heroku_dyno", "basic", "estimate"), "maybe", "estimate: must be true or false"),
        (("as_of",), "late 2026", "is not a month"),
        (("currency",), "EUR", "currency: 'EUR'"),
    ],
)
def test_a_malformed_price_table_is_refused(path: tuple[str, ...], value: object, complaint: str) -> None:
    data = copy.deepcopy(raw_prices())
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(PriceError, match=complaint):
        parse_prices(data)


def test_every_price_names_a_source_with_a_read_date() -> None:
    table = load_prices()
    for entries in table.sections.values():
        for price in entries.values():
            source = table.sources[price.source]
            assert source.read.startswith("2026-") and source.page


def test_stack_output_is_plain_json() -> None:
    output = monthly_cost(parse(*stack_config("prod"))).as_output()
    assert json.loads(json.dumps(output)) == output
    assert output["total"] == "165.00" and output["pricesAsOf"] == "2026-11"
    assert output["includesEstimates"] is True
    assert [i["subtotal"] for i in output["items"]] == ["100.00", "50.00", "15.00"]


def test_scale_curves_pass_through_the_committed_stacks() -> None:
    heroku, linode, managed = compare.curves(load_prices())
    assert heroku.totals[compare.SCALE.index(2)] == cost("prod")
    assert linode.totals[compare.SCALE.index(3)] == cost("iaas")
    # The managed database adds the same node price at every scale: g6-nanode-1 x 1 = $16.
    assert {m - lin for m, lin in zip(managed.totals, linode.totals, strict=True)} == {Decimal("16.00")}
    assert managed.committed_at is None


def test_missing_evidence_is_reported(tmp_path: Path) -> None:
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "swarm.py").write_text("command = 'pg_dump ...'\n")
    wanted = (
        compare.Evidence("components/swarm.py", r"pg_dump"),
        compare.Evidence("components/linode.py", r"lifecycle"),
    )
    assert compare.missing(wanted, tmp_path) == wanted[1:]


def test_report_and_chart_are_written(tmp_path: Path) -> None:
    report, chart = tmp_path / "report.md", tmp_path / "chart.png"
    compare.write_report(report, chart, root=tmp_path)  # an empty tree: no evidence of any code
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000
    text = report.read_text(encoding="utf-8")
    assert "| prod | heroku | $165.00 | yes |" in text
    assert "| iaas | iaas | $58.50 | no |" in text
    assert "| concern | Heroku does | left to you on Heroku |" in text
    assert "Not yet in the code (`components/backups.py` has no `def backup_service`" in text
    assert "![Monthly cost against web instances](chart.png)" in text
    assert "Price table (as of 2026-11)" in text
    assert "- **linode-pricing-page**:" in text
    rows = [line for line in text.splitlines() if line.startswith("| 10 | ")]
    assert rows == ["| 10 | $565.00 | $160.00 | $176.00 |"]  # 10 x $50 + $65; 10 x $14.50 + $15; + $16


def test_committed_report_is_up_to_date() -> None:
    """docs/iaas-vs-paas.md is regenerated by `make compare`; its figures match the current tables."""
    committed = (compare.REPORT).read_text(encoding="utf-8")
    prices = load_prices()
    stacks = [(name, monthly_cost(parse(*stack_config(name)), prices)) for name in STACKS]
    for name, estimate in stacks:
        assert f"| {name} | {estimate.target.value} | ${estimate.total:,.2f} |" in committed
