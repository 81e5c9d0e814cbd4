#!/usr/bin/env python3
"""Server CPU per hostile request, for the shapes that cost the most: each
shape is sent N times over one connection each, and the server process's
user + system time (from /proc) is divided by N. The goal (issue 11): any
request within the body limit is answered or refused within 50 ms of CPU.

    bench/hostile/cpu.py [--server target/release/tweetmeet] [--repeat 20]
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BODY_LIMIT = 1024 * 1024


def cpu_ms(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) * 1000 / ticks


def fill(prefix, unit, suffix, budget):
    """prefix + unit repeated + suffix, its JSON body just under the limit."""
    room = budget - len(prefix) - len(suffix) - 64
    return prefix + unit * (room // len(unit)) + suffix


def shapes():
    doubling = "query Q { ...F0 }\n" + "".join(
        f"fragment F{n} on Query {{ ...F{n + 1} ...F{n + 1} }}\n" for n in range(40)
    ) + "fragment F40 on Query { meets { edges { cursor } } }\n"
    fan_out = "query Q { ...F0 }\n" + "".join(
        f"fragment F{n} on Query {{ {' '.join(f'...F{n + 1}' for _ in range(10))} }}\n"
        for n in range(8)
    ) + "fragment F8 on Query { meets { edges { cursor } } }\n"
    aliases = "{" + "".join(f" a{n}:__typename" for n in range(50_000)) + "}"
    unused = "query Q { __typename }" + "".join(
        f" fragment U{n} on Query {{ __typename }}" for n in range(25_000)
    )
    return [
        ("doubling fragments, 40 levels", doubling),
        ("10 spreads x 8 levels", fan_out),
        ("deep nesting, 1 MiB", fill("{", "me{", "", BODY_LIMIT // 2) + "}" * 10),
        ("50,000 aliases", aliases),
        ("25,000 unused fragments", unused),
        ("1 MiB string argument", '{ user(handle: "' + "x" * (BODY_LIMIT - 200) + '") { id } }'),
        ("1 MiB variable", None),
        ("nested lists, 1 MiB", fill('{ meets(filter: { search: ', "[", "", BODY_LIMIT // 2)
         + '"x"' + "]" * 10 + ") { edges { cursor } } }"),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=harness.default_server())
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    worst = 0.0
    with harness.Server(args.server, extra_env={"RUST_LOG": "warn"}) as server:
        print("| shape | body KiB | status | server CPU ms per request |")
        print("|---|---:|---:|---:|")
        for name, query in shapes():
            if query is None:
                body = json.dumps({
                    "query": "query Q($h: String!) { user(handle: $h) { id } }",
                    "variables": {"h": "x" * (BODY_LIMIT - 200)},
                }).encode()
            else:
                body = json.dumps({"query": query}).encode()
            before = cpu_ms(server.proc.pid)
            for _ in range(args.repeat):
                status, _, _ = harness.request(
                    "POST", server.port, "/graphql", body=body,
                    headers={"Content-Type": "application/json"}, timeout=30)
            per_request = (cpu_ms(server.proc.pid) - before) / args.repeat
            worst = max(worst, per_request)
            print(f"| {name} | {len(body) // 1024} | {status} | {per_request:.1f} |")
        if not server.alive():
            raise SystemExit("the server died")
    print(f"worst: {worst:.1f} ms of server CPU per request")


if __name__ == "__main__":
    main()
