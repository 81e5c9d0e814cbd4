#!/usr/bin/env python3
"""A schemathesis run (GraphQL mode) against a real `tweetmeet serve`.

Starts the server as hostile.py does (fresh SQLite, or a PostgreSQL database
of its own with --postgres), registers a member, and runs
`schemathesis run http://127.0.0.1:PORT/graphql` twice: anonymous and signed
in (`-H "Authorization: Bearer …"`). schemathesis fetches the schema by
introspection (on in development) and generates queries and mutations with
valid and invalid arguments. Checked: `not_a_server_error` (no 5xx) by
schemathesis; here, every response in its report with an error whose
extensions.code is "INTERNAL", "internal error" and "panicked" lines in the
server log, and that the server is still up at the end.

Prints `schemathesis: N operations, 0 5xx, 0 INTERNAL, 0 panics` (N: the
test cases schemathesis sent) and exits 1 if a count is not zero or
schemathesis failed to run.
"""

import argparse
import base64
import glob
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def default_schemathesis():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(harness.ROOT, "target")
    return os.path.join(target, "fuzz-venv", "bin", "schemathesis")


def graphql_fields(server):
    """Query and mutation fields: schemathesis tests each as one operation."""
    data = server.graphql("{ __schema { queryType { fields { name } } mutationType { fields { name } } } }")
    schema = data["__schema"]
    return len(schema["queryType"]["fields"]) + len(schema["mutationType"]["fields"])


def scan_report(path):
    """Every request schemathesis recorded in its NDJSON events file:
    (test cases, 5xx, INTERNAL, no answer, examples)."""
    cases, server_errors, internal, unanswered, examples = 0, 0, 0, 0, []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            recorder = (event.get("ScenarioFinished") or {}).get("recorder") or {}
            for interaction in (recorder.get("interactions") or {}).values():
                cases += 1
                request = interaction.get("request") or {}
                response = interaction.get("response")
                if not response:
                    unanswered += 1
                    examples.append(("no answer", decode(request.get("body")), None))
                    continue
                status = response.get("status_code") or 0
                body = decode(response.get("content"))
                if status >= 500:
                    server_errors += 1
                    examples.append((f"HTTP {status}", decode(request.get("body")), body))
                if '"INTERNAL"' in body:
                    internal += 1
                    examples.append(("INTERNAL", decode(request.get("body")), body))
    return cases, server_errors, internal, unanswered, examples


def decode(body):
    if isinstance(body, dict):
        if "$base64" in body:
            return base64.b64decode(body["$base64"]).decode("utf-8", "replace")
        body = body.get("string", "")
    return body or ""


def run_schemathesis(binary, url, max_examples, token, workdir, label, seed, timeout):
    report = os.path.join(workdir, f"{label}.ndjson")
    cmd = [binary, "run", url,
           "--checks", "not_a_server_error",
           "--max-examples", str(max_examples),
           "--seed", str(seed),
           "--workers", "1",
           "--request-timeout", str(timeout),
           "--generation-database", "none",
           "--suppress-health-check", "all",
           "--continue-on-failure",
           "--no-color",
           "--report", "ndjson", "--report-ndjson-path", report]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace")
    elapsed = time.monotonic() - started
    output = done.stdout
    with open(os.path.join(workdir, f"{label}.out"), "w") as f:
        f.write(output)
    return done.returncode, output, report, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=harness.default_server(), help="tweetmeet binary")
    parser.add_argument("--schemathesis", default=default_schemathesis(), help="schemathesis CLI")
    parser.add_argument("--postgres", metavar="URL",
                        help="run on PostgreSQL: a database of its own is created on this server")
    parser.add_argument("--operations", type=int, default=3000,
                        help="test cases per identity, at most (spread over the schema's fields)")
    parser.add_argument("--quick", action="store_true", help="--operations 100, for CI")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    if args.quick:
        args.operations = 100
    if not os.access(args.schemathesis, os.X_OK):
        print(f"schemathesis: not installed at {args.schemathesis} (bench/hostile/run.sh installs it)")
        sys.exit(2)
    backend = "postgres" if args.postgres else "sqlite"
    workdir = tempfile.mkdtemp(prefix="tweetmeet-schemathesis-")
    totals = {"cases": 0, "5xx": 0, "INTERNAL": 0, "timeouts": 0}
    problems = []
    started = time.monotonic()
    with harness.Server(args.server, args.postgres) as server:
        member = server.register("fuzzmember")
        fields = graphql_fields(server)
        per_field = max(1, math.ceil(args.operations / fields))
        url = f"http://127.0.0.1:{server.port}/graphql"
        for label, token in (("anonymous", None), ("signed-in", member["token"])):
            code, output, report, elapsed = run_schemathesis(
                args.schemathesis, url, per_field, token, workdir, label, args.seed, args.timeout)
            if not os.path.exists(report):
                problems.append(f"{label}: schemathesis wrote no report (exit {code}):\n{output[-3000:]}")
                continue
            cases, errors5, internal, unanswered, examples = scan_report(report)
            totals["cases"] += cases
            totals["5xx"] += errors5
            totals["INTERNAL"] += internal
            totals["timeouts"] += unanswered
            print(f"schemathesis ({backend}, {label}): {cases} test cases over {fields} fields "
                  f"(--max-examples {per_field}) in {elapsed:.0f} s: {errors5} 5xx, "
                  f"{internal} INTERNAL, {unanswered} unanswered")
            for kind, request, response in examples[:5]:
                print(f"  {kind}: request {request[:600]!r}")
                print(f"        response {(response or '')[:400]!r}")
            # schemathesis exits 1 whenever a response has `errors` (its
            # not_a_server_error takes any GraphQL error for a server error,
            # ST113): NOT_FOUND, UNAUTHENTICATED, BAD_USER_INPUT are answers
            # here, so what counts is read from the report above. Anything
            # else it reports (its own errors) is shown and fails the run.
            if code not in (0, 1) or re.search(r"^Errors?:|Network Error|Internal Error", output, re.M):
                problems.append(f"{label}: schemathesis exited {code}:\n{output[-4000:]}")
        alive = server.alive()
        log = server.log_text()
        panics = [line for line in log.splitlines() if "panicked" in line]
        if not alive:
            panics.append(f"server exited with {server.proc.returncode}")
        logged_internal = [line for line in log.splitlines() if "internal error" in line]
    for line in (panics + logged_internal)[:10]:
        print(f"  server log: {line[:400]}")
    for problem in problems:
        print(problem)
    internal = max(totals["INTERNAL"], len(logged_internal))
    print(f"schemathesis ({backend}): {time.monotonic() - started:.0f} s")
    print(f"schemathesis: {totals['cases']} operations, {totals['5xx']} 5xx, {internal} INTERNAL, "
          f"{totals['timeouts']} timeouts, {len(panics)} panics")
    if totals["5xx"] or internal or totals["timeouts"] or panics or problems or not totals["cases"]:
        print(f"reports in {workdir}")
        sys.exit(1)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
