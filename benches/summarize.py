#!/usr/bin/env python3
"""Prints the medians of the last `cargo bench -p haka-benches --bench codec` run as Markdown
tables, with haka's ratio to the fastest peer and to memcpy, read from target/criterion."""

import json
import pathlib
import sys

PEERS = ["rumqttc", "mqttrs", "mqtt-protocol"]
HAKA = ["haka", "haka_bytes", "haka_ref", "haka_vectored"]
ORDER = HAKA + PEERS + ["memcpy"]


def fmt(ns):
    if ns >= 10_000:
        return f"{ns / 1000:.1f} µs"
    if ns >= 1000:
        return f"{ns / 1000:.2f} µs"
    return f"{ns:.1f} ns"


def main(root):
    groups = {}
    for estimates in sorted(pathlib.Path(root).glob("*/*/new/estimates.json")):
        bench = json.loads((estimates.parent / "benchmark.json").read_text())
        median = json.loads(estimates.read_text())["median"]["point_estimate"]
        groups.setdefault(bench["group_id"], {})[bench["function_id"]] = median
    print("| group | " + " | ".join(ORDER) + " | best haka / fastest peer | best haka / memcpy |")
    print("|---|" + "---|" * (len(ORDER) + 2))
    for group in sorted(groups):
        row = groups[group]
        peers = [row[p] for p in PEERS if p in row]
        # The vectored encode does not copy the payload: it is reported, not ranked.
        ours = [row[h] for h in ("haka", "haka_bytes", "haka_ref") if h in row]
        cells = [fmt(row[c]) if c in row else "–" for c in ORDER]
        best = min(ours)
        ratio = f"{best / min(peers):.2f}" if peers else "–"
        floor = f"{best / row['memcpy']:.2f}" if "memcpy" in row else "–"
        print(f"| {group} | " + " | ".join(cells) + f" | {ratio} | {floor} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
