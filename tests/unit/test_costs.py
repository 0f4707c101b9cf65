"""Monthly costs (reports/costs.py) from the committed stack files and the dated price table."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports import costs
from reports.costs import PRICES_FILE, PriceError, load_prices, monthly_cost, parse_prices
from settings import HerokuDynoSize, HerokuPostgresPlan, HerokuRedisPlan, LinodeType, parse
from tests.support.stacks import STACKS, stack_config


def cost(stack: str, **overrides: Any) -> Decimal:
    return monthly_cost(parse(*stack_config(stack, **overrides))).total


def raw_prices() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PRICES_FILE.read_text(encoding="utf-8"))
    return data


# Hand-checked from reports/prices.json (app/Procfile: web, worker, scheduler, release):
#   local:   nothing billed                                                                  =   $0.00
#   dev:     basic dynos: web $7 + scheduler $7 + worker $7; essential-0 $5                  =  $26.00
#   prod:    2 standard-2x web dynos $100 + standard-1x scheduler $25 and worker $25;
#            standard-0 $50; heroku-redis premium-0 $15                                      = $215.00
#   servers: the hosts are the user's own: nothing priced                                    =   $0.00
#   iaas:    3 x g6-standard-1 $12 + 3 x its backups $2.50 + NodeBalancer $10
#            + Object Storage $5 = 36 + 7.50 + 10 + 5                                        =  $58.50
EXPECTED = {"local": "0.00", "dev": "26.00", "prod": "215.00", "servers": "0.00", "iaas": "58.50"}


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
        ("scheduler dyno standard-1x", 1, "25.00", "25.00"),
        ("worker dyno standard-1x", 1, "25.00", "25.00"),
        ("heroku-postgresql standard-0", 1, "50.00", "50.00"),
        ("heroku-redis premium-0", 1, "15.00", "15.00"),
    ]
    # premium-0 has no source in the stored docs: the estimate says so.
    assert [i.estimate for i in items] == [False, False, False, False, True]


def test_servers_are_not_priced_here() -> None:
    estimate = monthly_cost(parse(*stack_config("servers")))
    assert estimate.items == () and estimate.total == Decimal("0.00")
    assert estimate.notes == ("runs on 3 server(s) you already pay for: not priced here",)
    assert estimate.as_output()["total"] == "0.00" and estimate.as_output()["includesEstimates"] is False


def test_local_is_billed_by_nobody() -> None:
    estimate = monthly_cost(parse(*stack_config("local")))
    assert estimate.items == () and "no provider bills it" in estimate.notes[0]


def test_iaas_breakdown_has_vms_backups_nodebalancer_and_bucket() -> None:
    estimate = monthly_cost(parse(*stack_config("iaas")))
    assert [(i.item, i.quantity, str(i.subtotal)) for i in estimate.items] == [
        ("Linode g6-standard-1", 3, "36.00"),
        ("Linode Backups for g6-standard-1", 3, "7.50"),
        ("NodeBalancer", 1, "10.00"),
        ("Object Storage", 1, "5.00"),
    ]
    assert any("PostgreSQL runs as a swarm service" in n for n in estimate.notes)


def test_iaas_process_shares_split_the_vms_by_cpu_limits() -> None:
    # 3 VMs of 1 vCPU ($36): web 3 x 0.5, scheduler 1 x 0.5, worker 1 x 0.5 CPUs.
    output = monthly_cost(parse(*stack_config("iaas"))).as_output()
    assert output["processShares"] == [
        {"process": "web", "tasks": 3, "cpusPerTask": "0.5", "shareOfVcpus": "0.500", "usd": "18.00"},
        {"process": "scheduler", "tasks": 1, "cpusPerTask": "0.5", "shareOfVcpus": "0.167", "usd": "6.00"},
        {"process": "worker", "tasks": 1, "cpusPerTask": "0.5", "shareOfVcpus": "0.167", "usd": "6.00"},
    ]
    # A share is an allocation of the VMs' bill, never an extra charge.
    assert output["total"] == "58.50"
    busy = monthly_cost(parse(*stack_config("iaas", processes={"worker": {"instances": 4, "cpus": "1"}})))
    assert busy.total == Decimal("58.50")
    worker = next(s for s in busy.as_output()["processShares"] if s["process"] == "worker")
    assert (worker["shareOfVcpus"], worker["usd"]) == ("1.333", "48.00")  # over 1: the limits overcommit
    assert monthly_cost(parse(*stack_config("prod"))).as_output()["processShares"] == []


def test_sizes_plans_and_switches_change_the_cost() -> None:
    # 4 x standard-1x $25 + standard-0 $50 + premium-0 $15
    assert cost("prod", herokuDynoSize="standard-1x") == Decimal("165.00")
    # prod without redis: $100 + $25 + $25 + $50
    assert cost("prod", accessories=[]) == Decimal("200.00")
    # prod's workers at web's size: 4 x $50 + $50 + $15
    assert cost("prod", processes={"worker": {}, "scheduler": {}}) == Decimal("265.00")
    # dev with redis mini: $26 + $3
    assert cost("dev", accessories=["redis"]) == Decimal("29.00")
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


def test_each_process_type_is_billed_at_its_own_size_and_count() -> None:
    # prod: 2 web standard-2x $100 + 3 standard-2x workers $150 + the scheduler at web's size (not given)
    # $50 + standard-0 $50 + premium-0 $15
    assert cost("prod", processes={"worker": {"instances": 3, "herokuSize": "standard-2x"}}) == Decimal(
        "365.00"
    )
    # a process type at 0 dynos costs nothing: web $7 + worker $7 + $5
    items = monthly_cost(parse(*stack_config("dev", processes={"scheduler": {"instances": 0}}))).items
    assert [i.item for i in items] == ["web dyno basic", "worker dyno basic", "heroku-postgresql essential-0"]
    # the swarm targets' processes cost nothing more
    assert cost("local", processes={"worker": {"instances": 5}}) == Decimal("0.00")


def test_eco_is_one_flat_subscription_for_every_eco_dyno() -> None:
    estimate = monthly_cost(parse(*stack_config("dev", herokuDynoSize="eco")))
    # Eco pool $5 (web, worker and scheduler alike) + essential-0 $5
    assert estimate.total == Decimal("10.00")
    assert [(i.item, i.quantity) for i in estimate.items] == [
        ("web dyno eco", 1),
        ("heroku-postgresql essential-0", 1),
    ]
    assert any("1,000 dyno hours" in n for n in estimate.notes)
    # A process type scaled to zero is not in the pool either; the pool is one subscription all the same.
    assert cost("dev", herokuDynoSize="eco", processes={"worker": {"instances": 0}}) == Decimal("10.00")


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
    assert output["total"] == "215.00" and output["pricesAsOf"] == "2026-11" and output["period"] == "month"
    assert output["includesEstimates"] is True
    assert [i["subtotal"] for i in output["items"]] == ["100.00", "25.00", "25.00", "50.00", "15.00"]
