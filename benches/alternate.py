#!/usr/bin/env python3
"""Measures the codec issue's bars in alternation, as ratios taken round by round.

A full `cargo bench --bench codec` run measures each codec of a group for a few seconds in
turn, so a group's figures are taken up to half a minute apart; on a shared VM one routine's
median moved by a fifth between consecutive runs of a few seconds, and each ratio of a full
run inherits that drift. Here every routine a bar compares is measured by its own short
criterion run, the routines of a round one after the other in an order that rotates from
round to round, and each bar's ratio is taken within each round: its median over the rounds
is the figure, its spread the noise.

    cargo bench -p haka-benches --bench codec --no-run
    python3 benches/alternate.py [--rounds 7] [--only TEXT] [--json target/codec-alternate.json]

The routines are the criterion benchmark's own (same inputs, placement and timing model); a
round of the default set took about 80 seconds on a 2-core guest.
"""

import argparse
import json
import pathlib
import statistics
import subprocess
import sys

PEERS = ["rumqttc", "mqttrs", "mqtt-protocol"]

# (bar, haka's routine, the routines it is compared with, the limit of the ratio). Against
# several routines the ratio is to the fastest of them in the same round.
BARS = [
    ("decode PUBLISH 1 KiB: at most 0.5x the fastest peer",
     ("decode/publish_1KiB", "haka_ref"), [("decode/publish_1KiB", p) for p in PEERS], 0.5),
    ("decode, per packet of the 1,000-packet stream: at most 0.5x",
     ("decode/stream_1000_mixed", "haka_ref"),
     [("decode/stream_1000_mixed", p) for p in PEERS], 0.5),
    ("decode SUBSCRIBE, 10 filters: at most 0.25x",
     ("decode/subscribe_10", "haka_ref"), [("decode/subscribe_10", p) for p in PEERS], 0.25),
    ("decode CONNECT, 42 B: at most 0.5x",
     ("decode/connect_42B", "haka_ref"), [("decode/connect_42B", p) for p in PEERS], 0.5),
    ("decode PUBLISH 64 KiB: within 1.5x of 16 B",
     ("decode/publish_64KiB", "haka_ref"), [("decode/publish_16B", "haka_ref")], 1.5),
    ("encode PUBLISH 16 B: no slower than the fastest peer",
     ("encode/publish_16B", "haka"), [("encode/publish_16B", p) for p in PEERS], 1.0),
    ("encode PUBLISH 1 KiB: no slower than the fastest peer",
     ("encode/publish_1KiB", "haka"), [("encode/publish_1KiB", p) for p in PEERS], 1.0),
    ("encode PUBLISH 1 KiB: within 1.3x of the memcpy",
     ("encode/publish_1KiB", "haka"), [("encode/publish_1KiB", "memcpy")], 1.3),
]


def median_ns(root, group, function):
    """The median of the last criterion run of `group`/`function`, in nanoseconds."""
    for bench in pathlib.Path(root).glob("*/*/new/benchmark.json"):
        ids = json.loads(bench.read_text())
        if ids["group_id"] == group and ids["function_id"] == function:
            estimates = json.loads((bench.parent / "estimates.json").read_text())
            return estimates["median"]["point_estimate"]
    raise SystemExit(f"criterion wrote no estimate for {group}/{function}")


def measure(args, group, function):
    """One short criterion run of one routine; its median."""
    command = [
        "cargo", "bench", "-q", "-p", "haka-benches", "--bench", "codec", "--",
        f"^{group}/{function}$", "--warm-up-time", str(args.warm_up),
        "--measurement-time", str(args.measurement), "--noplot",
    ]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        sys.stderr.write(run.stdout + run.stderr)
        raise SystemExit(f"the benchmark of {group}/{function} failed")
    return median_ns(args.criterion, group, function)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warm-up", type=float, default=0.5, help="seconds per routine")
    parser.add_argument("--measurement", type=float, default=1.0, help="seconds per routine")
    parser.add_argument("--criterion", default="target/criterion")
    parser.add_argument("--json", default="target/codec-alternate.json")
    parser.add_argument("--only", default="", help="only the bars whose text contains this")
    args = parser.parse_args()
    bars = [bar for bar in BARS if args.only in bar[0]]
    if not bars:
        raise SystemExit(f"no bar contains {args.only!r}")

    routines = []
    for _, ours, others, _ in bars:
        for routine in [ours, *others]:
            if routine not in routines:
                routines.append(routine)
    rounds = []
    for n in range(args.rounds):
        shift = n % len(routines)
        order = routines[shift:] + routines[:shift]
        figures = {}
        for group, function in order:
            figures[(group, function)] = measure(args, group, function)
        rounds.append(figures)
        ratios = [figures[ours] / min(figures[o] for o in others) for _, ours, others, _ in bars]
        print(f"round {n + 1}/{args.rounds}: " + " ".join(f"{r:.2f}" for r in ratios),
              file=sys.stderr, flush=True)

    print("| bar | median ratio | per round | met |")
    print("|---|---:|---|---|")
    verdicts = []
    for bar, ours, others, limit in bars:
        ratios = [r[ours] / min(r[o] for o in others) for r in rounds]
        median = statistics.median(ratios)
        met = median <= limit
        verdicts.append({"bar": bar, "limit": limit, "ratios": ratios, "median": median,
                         "met": met})
        spread = f"{min(ratios):.2f} to {max(ratios):.2f}"
        print(f"| {bar} | {median:.2f} | {spread} | {'yes' if met else '**no**'} |")
    print()
    print("| routine | median of the rounds' medians |")
    print("|---|---:|")
    for routine in routines:
        ns = statistics.median(r[routine] for r in rounds)
        print(f"| {routine[0]}/{routine[1]} | {ns:.1f} ns |")
    pathlib.Path(args.json).write_text(json.dumps({
        "rounds": [{f"{g}/{f}": ns for (g, f), ns in r.items()} for r in rounds],
        "bars": verdicts,
    }, indent=1))


if __name__ == "__main__":
    main()
