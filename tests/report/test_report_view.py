"""What the HTML report sets side by side (no board): the inventory against the profile,
and which measurements form a chart."""

from __future__ import annotations

from harness.report.charts import charts
from harness.report.html import inventory_rows

PROFILE = {
    "cpus": 2,
    "memory_mib": 256,
    "block_devices": [{"name": "vda", "size_mib": 64}, {"name": "vdb", "size_mib": 32}],
    "network_interfaces": ["eth0", "eth1"],
    "usb_devices": [{"kind": "mass-storage"}],
    "serial_ports": 2,
    "watchdog": True,
    "rtc": True,
}


def _status(rows: list[dict]) -> dict[str, str]:
    return {row["what"]: row["status"] for row in rows}


def test_inventory_rows_name_what_is_missing_what_differs_and_what_is_extra() -> None:
    facts = {
        "cpus": 2,
        "memory_mib": 220,
        "block_devices": [{"name": "vda", "size_mib": 48}, {"name": "sda", "size_mib": 900}],
        "network_interfaces": ["eth0", "wlan0"],
        "usb_devices": [{"vendor_id": "1d6b", "kind": "hub"}],
        "serial_ports": 2,
        "watchdog": False,
        "rtc": True,
    }
    assert _status(inventory_rows(PROFILE, facts)) == {
        "CPUs": "ok",
        "memory (MiB)": "ok",  # MemTotal is a little under the RAM fitted
        "block device vda (MiB)": "differs",  # 48 against 64: beyond the 5 % the check allows
        "block device vdb": "missing",
        "block device sda (MiB)": "extra",
        "network interface eth0": "ok",
        "network interface eth1": "missing",
        "network interface wlan0": "extra",
        "USB mass-storage": "missing",  # a root hub is not a device
        "serial ports": "ok",
        "watchdog": "missing",
        "RTC": "ok",
    }


def test_measurements_seen_more_than_once_become_one_chart_per_series() -> None:
    points = [
        {"test": "reboot-cycles", "name": f"boot_{n}", "value": v, "unit": "s"}
        for n, v in ((1, 10.0), (2, 12.0), (3, 11.0))
    ] + [
        {"test": "storage-rw[vda]", "name": "write_throughput", "value": 80.0, "unit": "MB/s"},
        {"test": "storage-rw[sda]", "name": "write_throughput", "value": 20.0, "unit": "MB/s"},
        {"test": "cpu-count", "name": "cpus", "value": 2.0, "unit": "count"},
    ]
    drawn = {chart.name: chart for chart in charts(points)}
    assert set(drawn) == {"boot", "write_throughput"}, "a single value is a table row, not a chart"
    boot = drawn["boot"]
    assert [bar.value for bar in boot.bars] == [10.0, 12.0, 11.0]
    assert (boot.low, boot.high, boot.mean) == (10.0, 12.0, 11.0)
    tallest = max(boot.bars, key=lambda bar: bar.height)
    assert tallest.value == 12.0 and tallest.y + tallest.height <= boot.height
    speeds = drawn["write_throughput"].bars
    assert speeds[0].height == 4 * speeds[1].height, "bar heights are proportional"
