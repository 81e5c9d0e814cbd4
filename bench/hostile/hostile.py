#!/usr/bin/env python3
"""Hostile requests against a real `tweetmeet serve`.

Starts the server (fresh SQLite in a temporary directory, or a PostgreSQL
database of its own with --postgres), registers members, makes one of them
an administrator, hosts meets, publishes a story and sends an invitation;
then sends hostile requests, anonymous and signed in, over POST and GET:

* every contract operation (tests/operations/*.graphql) with its variables
  filled from the schema, each String or ID in turn (top level, inside input
  objects and lists) replaced by NUL and other control characters, CR/LF,
  lone surrogates, 100 KB strings (ASCII, 2-byte, 4-byte), garbage and
  forged IDs and cursors (base64 of far-out dates, bad ranks); each scalar
  by a value of the wrong type or out of range; variables missing or null;
* document shapes: the doubling fragment bomb (40 levels), fragment cycles,
  5,000 aliases, deep nesting, 50,000 open braces or brackets, thousands of
  directives, variables, operations; huge literals and names;
* HTTP: bad bodies, content types, methods, Accept headers, oversize
  bodies, batches, forged and garbage access tokens.

Each request has a timeout. Counted: HTTP 5xx, errors with
extensions.code == "INTERNAL", timeouts and connection failures, and panics
(a "panicked" line in the server's log, or the server gone at the end).
Prints `hostile: N requests, 0 5xx, 0 INTERNAL, 0 timeouts, 0 panics` and
exits 1 if any count is not zero. Loopback only; a fixed number of requests.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import socket
import sys
import time
import urllib.parse
from collections import Counter
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

KB100 = 100_000
NIL_UUID = "00000000-0000-0000-0000-000000000000"


def b64(text):
    raw = text if isinstance(text, bytes) else text.encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def string_mutants(real_id):
    """Values to put where a String or ID goes."""
    return [
        "\x00", "a\x00b", "\x00" * 1000,
        "\x01\x02\x07\x08\x1b[31m\x7f", "\u0085\u2028\u2029", "\ufeff\u202e\u200b",
        "line\r\nbreak", "\r\n" * 5000, "\t\v\f", "\ud800", "a\udfffb",
        "A" * KB100, "\u00e9" * (KB100 // 2), "\U0001F600" * (KB100 // 4),
        ("a\x00\r\n" * (KB100 // 4)),
        "", " ", "   \t  ",
        "' OR '1'='1' --", "%_\\%", "<script>alert(1)</script>", "../../../../etc/passwd",
        "not-an-id", NIL_UUID, real_id + "\x00", real_id.upper(), real_id + "x",
        b64(f"99999999999999.0|{real_id}"), b64(f"-99999999999.0|{real_id}"),
        b64(f"253402300800.000000000|{real_id}"), b64(f"0.9999999999999|{real_id}"),
        b64(f"2147483648|1700000000.000000000|{real_id}"),
        b64(f"1|{2**63}.0|{real_id}"), b64(b"\xff\xfe\x00|\x80"), "====", "a" * 3 + "!",
        b64("A" * 75_000),
    ]


def wrong_type_mutants(kind):
    """Values of the wrong type or out of range for a scalar of `kind`."""
    common = [{"a": 1}, [1, 2], True]
    if kind in ("Int",):
        return common + ["ten", 2**31, -2**31 - 1, 2**63, -1, 0, 1.5, 1e308, 10**40]
    if kind == "Float":
        return common + ["NaN", 1e308, -1e308, 91.0, -181.0, 1e-320, 10**400]
    if kind == "Boolean":
        return common + ["true", 1, 0]
    if kind == "DateTime":
        return common + [12345, "yesterday", "+275760-09-13T00:00:00Z", "0000-01-01T00:00:00Z",
                         "9999-12-31T23:59:59.999999999Z", "1969-12-31T23:59:59Z",
                         "10000-01-01T00:00:00Z", "2024-02-30T00:00:00Z",
                         "2024-01-01T00:00:00+99:99", "-000001-01-01T00:00:00Z"]
    if kind in ("String", "ID"):
        return [12345, 1e308, {"a": 1}, [["x"]], True]
    return common + ["NOT_A_VALUE", "going", 3]  # enums and unknown types


class Values:
    """Base (valid-looking) values for the contract's variables."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.inputs, self.enums = harness.schema_inputs()
        now = datetime.now(timezone.utc)
        self.starts = (now + timedelta(hours=3)).isoformat()
        self.ends = (now + timedelta(hours=5)).isoformat()

    def id_for(self, op, var):
        c = self.ctx
        if var == "userId":
            return c["victim"]["id"]
        if op in ("StoryDetail", "UpdateStory"):
            return c["story"]
        if op == "DeleteStory":
            return c["spare_story"]
        if op in ("CancelMeet",):
            return c["spare_meet"]
        if op in ("RespondToInvitation", "RevokeInvitation"):
            return c["invitation"]
        return c["meet"]

    def scalar(self, op, var, kind):
        if kind == "ID":
            return self.id_for(op, var)
        if kind == "String":
            return {
                "handle": self.ctx["member"]["handle"], "email": "someone@example.com",
                "password": "wrong horse battery", "currentPassword": "wrong horse battery",
                "newPassword": "another horse battery", "search": "rose",
                "refreshToken": self.ctx["victim"]["refresh"], "token": "x" * 43,
                "after": self.ctx["cursor"], "timeZone": "America/Toronto",
                "avatarUrl": "https://example.com/a.png", "handles": self.ctx["victim"]["handle"],
                "emails": "guest@example.com", "hostHandle": self.ctx["member"]["handle"],
            }.get(var, f"Hostile {var}")
        if kind == "Int":
            return {"first": 10, "capacity": 20, "etaMinutes": 5}.get(var, 30)
        if kind == "Float":
            return {"latitude": 43.65, "longitude": -79.38, "radiusKm": 10.0}.get(var, 1.0)
        if kind == "Boolean":
            return True
        if kind == "DateTime":
            return self.ends if var in ("endsAt", "startsBefore") else self.starts
        if kind in self.enums:
            preferred = {"RsvpStatus": "GOING", "Role": "MEMBER", "Visibility": "PUBLIC"}
            return preferred.get(kind, self.enums[kind][0])
        return f"Hostile {var}"  # a type the schema does not have (yet)

    def value(self, op, var, type_text):
        """(value, kinds): the value and, per leaf path, its scalar kind."""
        t = type_text.rstrip("!")
        if t.startswith("["):
            inner, kinds = self.value(op, var, t[1:-1])
            return [inner], {(0,) + path: kind for path, kind in kinds.items()}
        if t in self.inputs:
            obj, kinds = {}, {}
            for field, ftype in self.inputs[t]:
                v, k = self.value(op, field, ftype)
                obj[field] = v
                kinds.update({(field,) + path: kind for path, kind in k.items()})
            return obj, kinds
        return self.scalar(op, var, t), {(): t}


def set_path(value, path, new):
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return copy


def fragment_bomb(levels, fan_out=2, leaf="meets { edges { cursor } }"):
    q = "query Q { ...F0 }\n"
    for i in range(levels):
        q += f"fragment F{i} on Query {{" + f" ...F{i + 1}" * fan_out + " }\n"
    return q + f"fragment F{levels} on Query {{ {leaf} }}\n"


def nested(depth):
    q = "{ me { "
    for _ in range(depth):
        q += "hostedMeets { edges { node { host { "
    q += "id" + " } } } }" * depth + " } }"
    return q


def introspection_deep(depth):
    return "{ __schema { types { " + "ofType { " * depth + "name" + " }" * depth + " } } }"


FULL_INTROSPECTION = """query IntrospectionQuery { __schema { queryType { name } mutationType { name }
subscriptionType { name } types { ...FullType } directives { name description locations
args { ...InputValue } } } }
fragment FullType on __Type { kind name description fields(includeDeprecated: true) { name
description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
inputFields { ...InputValue } interfaces { ...TypeRef } enumValues(includeDeprecated: true)
{ name description isDeprecated deprecationReason } possibleTypes { ...TypeRef } }
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind
name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }"""


def documents(ctx):
    """Hostile document shapes, as (label, query, variables)."""
    meet = ctx["meet"]
    yield "fragment bomb x2 40 levels", fragment_bomb(40), None
    yield "fragment bomb x3 30 levels", fragment_bomb(30, 3), None
    yield "fragment bomb, wide leaf", fragment_bomb(40, 2, "__typename " * 50), None
    yield "fragment cycle", "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }", None
    yield "fragment self", "query { ...A } fragment A on Query { me { id } ...A }", None
    yield "5000 aliases __typename", "{" + " ".join(f"a{i}: __typename" for i in range(5000)) + "}", None
    yield "5000 aliases meets", "{" + " ".join(f"a{i}: meets(first: 100) {{ edges {{ node {{ id }} }} }}" for i in range(5000)) + "}", None
    yield "5000 aliases meet", "{" + " ".join(f"a{i}: meet(id: \"{meet}\") {{ id title }}" for i in range(5000)) + "}", None
    yield "1500 aliases meet", "{" + " ".join(f"a{i}: meet(id: \"{meet}\") {{ id }}" for i in range(1500)) + "}", None
    yield "300 aliases attendees", "{" + " ".join(f"a{i}: meet(id: \"{meet}\") {{ attendees(first: 100) {{ edges {{ node {{ user {{ handle }} }} }} }} }}" for i in range(300)) + "}", None
    yield "5000 same field", "{" + " __typename" * 5000 + "}", None
    yield "wide 100 fields x 100 first", "{ meets(first: 100) { edges { node { " + " ".join(f"t{i}: title" for i in range(100)) + " } } } }", None
    yield "first: 2^31-1", "{ meets(first: 2147483647) { edges { cursor } } users(first: 2147483647) { edges { cursor } } }", None
    yield "nested 12", nested(12), None
    yield "nested 40", nested(40), None
    yield "introspection ofType 200", introspection_deep(200), None
    yield "introspection full", FULL_INTROSPECTION, None
    yield "__type huge name", '{ __type(name: "' + "A" * KB100 + '") { name } }', None
    yield "50000 open braces", "{" * 50_000, None
    yield "50000 braces balanced", "{" * 25_000 + "}" * 25_000, None
    yield "50000 brackets in argument", "{ meets(filter: " + "[" * 50_000 + "]" * 50_000 + ") { edges { cursor } } }", None
    yield "50000 objects in argument", "{ meets(filter: " + "{a: " * 20_000 + "1" + "}" * 20_000 + ") { edges { cursor } } }", None
    yield "deep list type", "query($v: " + "[" * 20_000 + "String" + "]" * 20_000 + ") { __typename }", None
    yield "deep variable json", "query($v: String) { __typename }", {"v": json.loads("[" * 100 + "]" * 100)}
    yield "5000 directives", "{ __typename" + " @skip(if: false)" * 5000 + " }", None
    yield "5000 include directives on fragment", "{ ...F" + " @include(if: true)" * 5000 + " } fragment F on Query { __typename }", None
    yield "5000 variables", "query(" + " ".join(f"$v{i}: String" for i in range(5000)) + ") { __typename }", None
    yield "5000 arguments", "{ meets(" + " ".join(f"a{i}: 1" for i in range(5000)) + ") { edges { cursor } } }", None
    yield "5000 operations", " ".join(f"query Q{i} {{ __typename }}" for i in range(5000)), None
    yield "2 anonymous operations", "{ __typename } { __typename }", None
    yield "huge string literal", '{ user(handle: "' + "h" * KB100 + '") { id } }', None
    yield "huge block string", '{ user(handle: """' + "\n" * KB100 + '""") { id } }', None
    yield "NUL escape literal", '{ user(handle: "a\\u0000b") { id } meets(filter: {search: "\\u0000"}) { edges { cursor } } }', None
    yield "surrogate escape literal", '{ user(handle: "\\uD800") { id } }', None
    yield "raw NUL in document", "{ __typename \x00 }", None
    yield "raw control in document", "{ me\x01 { id } }", None
    yield "huge int literal", "{ meets(first: 99999999999999999999999999) { edges { cursor } } }", None
    yield "huge float literal", "{ meets(filter: {near: {latitude: 1e999, longitude: -1e999, radiusKm: 1e999}}) { edges { cursor } } }", None
    yield "negative radius", "{ meets(filter: {near: {latitude: 91, longitude: 181, radiusKm: -1}}) { edges { cursor } } }", None
    yield "huge field name", "{ " + "f" * KB100 + " }", None
    yield "huge alias", "{ " + "a" * KB100 + ": __typename }", None
    yield "huge comment", "#" + "c" * 900_000 + "\n{ __typename }", None
    yield "subscription over HTTP", "subscription { meetAnnounced { id } }", None
    yield "subscription meetActivity HTTP", f'subscription {{ meetActivity(meetId: "{meet}") {{ kind }} }}', None
    yield "empty document", "", None
    yield "whitespace document", " \n\t " * 1000, None
    yield "only a fragment", "fragment F on Query { __typename }", None
    yield "unknown type condition", "{ ... on Nope { a } }", None
    yield "typename everywhere", "{ __typename me { __typename } meets { __typename edges { __typename node { __typename } } } }", None


def first_code(data):
    try:
        response = json.loads(data)
    except ValueError:
        return "not JSON"
    if not isinstance(response, dict):
        return "not an object"
    errors = response.get("errors")
    if not errors:
        return "data"
    return str((errors[0].get("extensions") or {}).get("code"))


def forged_jwt(claims, secret=harness.JWT_SECRET.encode(), alg="HS256"):
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}))
    payload = b64(json.dumps(claims))
    signing = f"{header}.{payload}".encode()
    sig = b64(hmac.new(secret, signing, hashlib.sha256).digest()) if alg == "HS256" else ""
    return f"{header}.{payload}.{sig}"


def bad_authorizations(ctx):
    uid = ctx["member"]["id"]
    now = int(time.time())
    base = {"iss": "tweetmeet", "aud": "tweetmeet-api", "sub": uid, "exp": now + 600, "iat": now,
            "token_use": "access"}
    token = ctx["member"]["token"]
    yield "Bearer"
    yield "Bearer "
    yield "Bearer garbage"
    yield "bearer " + token
    yield "Bearer  " + token
    yield "Bearer " + token + "x"
    yield "Bearer " + token[:-2]
    yield token
    yield "Basic Zm9vOmJhcg=="
    yield "Bearer a.b.c"
    yield "Bearer ..."
    yield "Bearer " + "A" * 60_000
    yield "Bearer " + forged_jwt(base, alg="none")
    yield "Bearer " + forged_jwt(base, secret=b"wrong-secret-wrong-secret-wrong-secret")
    yield "Bearer " + forged_jwt({**base, "sub": NIL_UUID})
    yield "Bearer " + forged_jwt({**base, "sub": "not-a-uuid"})
    yield "Bearer " + forged_jwt({**base, "sub": uid + "\x00"})
    yield "Bearer " + forged_jwt({**base, "exp": 2**62})
    yield "Bearer " + forged_jwt({**base, "exp": 2**63 - 1})
    yield "Bearer " + forged_jwt({**base, "exp": -1})
    yield "Bearer " + forged_jwt({**base, "exp": 1e300})
    yield "Bearer " + forged_jwt({**base, "iat": 2**63 - 1})
    yield "Bearer " + forged_jwt({**base, "token_use": "refresh"})
    yield "Bearer " + forged_jwt({k: v for k, v in base.items() if k != "sub"})
    yield "Bearer " + forged_jwt({**base, "sub": ctx["victim"]["id"]})  # valid, another member
    yield "Bearer " + forged_jwt([1, 2, 3])
    yield "Bearer " + b64("{}") + "." + b64("{}") + "."
    yield "Bearer \x01\x02"
    yield b"Bearer \xff\xfe\x80"


class Driver:
    def __init__(self, server, timeout, log):
        self.server = server
        self.timeout = timeout
        self.log = log
        self.requests = 0
        self.failures = {"5xx": [], "INTERNAL": [], "timeouts": []}
        self.answers = Counter()  # (HTTP status, first error code)

    def send(self, label, method, path, body=None, headers=None):
        self.requests += 1
        headers = dict(headers or {})
        try:
            status, _, data = harness.request(method, self.server.port, path, body, headers,
                                              self.timeout)
        except (socket.timeout, TimeoutError) as e:
            self.fail("timeouts", label, f"timeout after {self.timeout}s: {e}")
            return None
        except (OSError, Exception) as e:  # noqa: BLE001 (any failure to get an answer)
            self.fail("timeouts", label, f"no answer: {type(e).__name__}: {e}")
            return None
        self.answers[(status, first_code(data))] += 1
        if status >= 500:
            self.fail("5xx", label, f"HTTP {status}: {data[:300]!r}")
        if b"INTERNAL" in data:
            try:
                response = json.loads(data)
            except ValueError:
                response = {}
            errors = response.get("errors") if isinstance(response, dict) else None
            if errors and any((e.get("extensions") or {}).get("code") == "INTERNAL" for e in errors):
                self.fail("INTERNAL", label, f"HTTP {status}: {data[:300]!r}")
        return status

    def fail(self, kind, label, detail):
        self.failures[kind].append((label, detail))
        self.log.write(f"{kind}: {label}: {detail}\n")

    def post(self, label, payload, token=None, raw=None, headers=None):
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = f"Bearer {token}"
        h.update(headers or {})
        body = raw if raw is not None else json.dumps(payload).encode()
        return self.send(label, "POST", "/graphql", body, h)

    def get(self, label, payload, token=None):
        params = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in payload.items()
                  if v is not None}
        h = {"Authorization": f"Bearer {token}"} if token else {}
        return self.send(label, "GET", "/graphql?" + urllib.parse.urlencode(params), None, h)


def operation_cases(ctx, operations):
    """(label, op name, identity, variables) for every mutant of every operation."""
    values = Values(ctx)
    cases = []
    for op, document in sorted(operations.items()):
        kind = document.split(None, 1)[0]
        if op in ("ChangePassword", "Logout", "RefreshSession"):
            identities = [None, "victim"]  # these end sessions: not the member's
        elif op in ("AdminUsers", "SetUserRole", "SuspendUser", "UnsuspendUser"):
            identities = [None, "member", "admin"]
        else:
            identities = [None, "member"]
        base, kinds = {}, {}
        for var, vtype in harness.variable_definitions(document):
            v, k = values.value(op, var, vtype)
            base[var] = v
            kinds.update({(var,) + path: kind for path, kind in k.items()})
        variants = [("base", base)]
        for path, leaf in sorted(kinds.items(), key=lambda p: [str(x) for x in p[0]]):
            name = ".".join(str(p) for p in path)
            if leaf in ("String", "ID"):
                real = ctx["meet"] if leaf == "ID" else "x"
                for i, m in enumerate(string_mutants(real)):
                    variants.append((f"{name}=string#{i}", set_path(base, path, m)))
            for i, m in enumerate(wrong_type_mutants(leaf)):
                variants.append((f"{name}=wrong#{i}", set_path(base, path, m)))
            variants.append((f"{name}=null", set_path(base, path, None)))
        for var in base:
            variants.append((f"{var} missing", {k: v for k, v in base.items() if k != var}))
        variants.append(("variables not an object", ["x"]))
        variants.append(("unknown variable", {**base, "zzz": "\x00" * 1000}))
        for label, variables in variants:
            for who in identities:
                cases.append((f"{op} [{who or 'anonymous'}] {label}", op, kind, who, variables))
    return cases


def http_cases(ctx):
    """(label, method, path, body, headers) for transport-level abuse."""
    token = ctx["member"]["token"]
    q = json.dumps({"query": "{ me { id } }"}).encode()
    js = {"Content-Type": "application/json"}
    yield "empty body", "POST", "/graphql", b"", js
    yield "invalid json", "POST", "/graphql", b"{", js
    yield "json string", "POST", "/graphql", b'"{ me { id } }"', js
    yield "json null", "POST", "/graphql", b"null", js
    yield "json number", "POST", "/graphql", b"1e999", js
    yield "empty object", "POST", "/graphql", b"{}", js
    yield "query null", "POST", "/graphql", b'{"query": null}', js
    yield "query number", "POST", "/graphql", b'{"query": 1}', js
    yield "query object", "POST", "/graphql", b'{"query": {"a": 1}}', js
    yield "variables string", "POST", "/graphql", b'{"query": "{ me { id } }", "variables": "x"}', js
    yield "operationName number", "POST", "/graphql", b'{"query": "{ me { id } }", "operationName": 5}', js
    yield "operationName missing op", "POST", "/graphql", b'{"query": "query A { me { id } }", "operationName": "B"}', js
    yield "operationName huge", "POST", "/graphql", json.dumps({"query": "{ me { id } }", "operationName": "\x00" * KB100}).encode(), js
    yield "extensions garbage", "POST", "/graphql", b'{"query": "{ me { id } }", "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "00"}}}', js
    yield "extensions string", "POST", "/graphql", b'{"query": "{ me { id } }", "extensions": "x"}', js
    yield "persisted query only", "POST", "/graphql", b'{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ab"}}}', js
    yield "batch empty", "POST", "/graphql", b"[]", js
    yield "batch one", "POST", "/graphql", b"[" + q + b"]", js
    yield "batch 1000", "POST", "/graphql", b"[" + b",".join([q] * 1000) + b"]", js
    yield "invalid utf-8", "POST", "/graphql", b'{"query": "{ me { id } }\xff\xfe"}', js
    yield "utf-8 BOM", "POST", "/graphql", b"\xef\xbb\xbf" + q, js
    yield "json lone surrogate", "POST", "/graphql", b'{"query": "{ __typename }", "variables": {"a": "\\ud800"}}', js
    yield "duplicate keys", "POST", "/graphql", b'{"query": "{ me { id } }", "query": "{ __typename }"}', js
    yield "deep json 100000", "POST", "/graphql", b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}", js
    yield "json 1e400 variable", "POST", "/graphql", b'{"query": "query($f: Int) { meets(first: $f) { edges { cursor } } }", "variables": {"f": 1e400}}', js
    yield "body over limit", "POST", "/graphql", b'{"query": "{ __typename }", "x": "' + b"a" * 1_100_000 + b'"}', js
    yield "body just under limit", "POST", "/graphql", b'{"query": "{ __typename }", "x": "' + b"\\u0000" * 170_000 + b'"}', js
    yield "no content type", "POST", "/graphql", q, {}
    yield "text/plain", "POST", "/graphql", q, {"Content-Type": "text/plain"}
    yield "application/graphql", "POST", "/graphql", b"{ me { id } }", {"Content-Type": "application/graphql"}
    yield "form", "POST", "/graphql", b"query=%7B+me+%7B+id+%7D+%7D", {"Content-Type": "application/x-www-form-urlencoded"}
    yield "multipart", "POST", "/graphql", b"--x\r\n\r\n--x--", {"Content-Type": "multipart/form-data; boundary=x"}
    yield "json utf-16 charset", "POST", "/graphql", q, {"Content-Type": "application/json; charset=utf-16"}
    yield "content type garbage", "POST", "/graphql", q, {"Content-Type": "\x01/\x02;;;=="}
    yield "content type huge", "POST", "/graphql", q, {"Content-Type": "application/json; a=" + "b" * 60_000}
    yield "accept graphql-response", "POST", "/graphql", q, {**js, "Accept": "application/graphql-response+json"}
    yield "accept html only", "POST", "/graphql", q, {**js, "Accept": "text/html"}
    yield "accept garbage", "POST", "/graphql", q, {**js, "Accept": "*/*;q=x, ;;, \x01"}
    yield "accept q=0 json", "POST", "/graphql", q, {**js, "Accept": "application/json;q=0"}
    yield "content-length lies", "POST", "/graphql", q, {**js, "Content-Length": "3"}
    yield "x-forwarded-for garbage", "POST", "/graphql", q, {**js, "X-Forwarded-For": "\x00, 999.999.1.1, ::ffff:zz, " + "1" * 5000}
    yield "forwarded garbage", "POST", "/graphql", q, {**js, "Forwarded": "for=\"[::1\";by=;;", "X-Real-IP": "not-an-ip"}
    yield "origin header", "POST", "/graphql", q, {**js, "Origin": "http://evil.example\x00"}
    yield "GET no query", "GET", "/graphql", None, {}
    yield "GET empty query", "GET", "/graphql?query=", None, {}
    yield "GET mutation", "GET", "/graphql?" + urllib.parse.urlencode({"query": "mutation { logout(refreshToken: \"x\") }"}), None, {}
    yield "GET variables not json", "GET", "/graphql?query=%7B+me+%7B+id+%7D+%7D&variables=%7B", None, {}
    yield "GET variables array", "GET", "/graphql?query=%7B+me+%7B+id+%7D+%7D&variables=%5B%5D", None, {}
    yield "GET extensions garbage", "GET", "/graphql?query=%7B+me+%7B+id+%7D+%7D&extensions=%00", None, {}
    yield "GET duplicate query", "GET", "/graphql?query=%7B+me+%7B+id+%7D+%7D&query=%7B", None, {}
    yield "GET percent garbage", "GET", "/graphql?query=%ZZ%00%ff%fe", None, {}
    yield "GET NUL", "GET", "/graphql?query=%7B%00%7D", None, {}
    yield "GET 100KB query", "GET", "/graphql?query=" + "%7B" * 33_000, None, {}
    yield "GET fragment bomb", "GET", "/graphql?" + urllib.parse.urlencode({"query": fragment_bomb(40)}), None, {}
    yield "GET subscription", "GET", "/graphql?" + urllib.parse.urlencode({"query": "subscription { meetAnnounced { id } }"}), None, {}
    yield "GET body", "GET", "/graphql?query=%7B__typename%7D", q, js
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "CONNECT", "FOO"):
        yield f"{method} /graphql", method, "/graphql", q, js
    for path in ("/", "/graphql/", "/graphql/../healthz", "/%00", "/graphql%00", "/graphql?%", "//graphql",
                 "/readyz?x=" + "y" * 50_000, "/playground?%00", "/graphql/ws", "/" + "a" * 60_000):
        yield f"path {path[:30]!r}", "GET", path, None, {}
    yield "ws upgrade garbage", "GET", "/graphql/ws", None, {"Connection": "Upgrade", "Upgrade": "websocket",
                                                             "Sec-WebSocket-Key": "\x00", "Sec-WebSocket-Version": "99"}
    for i, auth in enumerate(bad_authorizations(ctx)):
        yield f"authorization #{i}", "POST", "/graphql", q, {**js, "Authorization": auth}
        yield f"authorization #{i} mutation", "POST", "/graphql", json.dumps(
            {"query": "mutation { updateProfile(input: {headline: \"x\"}) { id } }"}).encode(), {**js, "Authorization": auth}


class WebSocket:
    """Just enough of a WebSocket client (RFC 6455) to send hostile messages."""

    def __init__(self, port, protocol, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /graphql/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                           f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            head += chunk
        head, self.buffer = head.split(b"\r\n\r\n", 1)
        self.status = int(head.split(b" ", 2)[1])

    def send(self, payload, opcode=1):
        data = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            header = bytes([0x80 | opcode, 0x80 | n])
        elif n < 65536:
            header = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
        else:
            header = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(header + mask + masked)

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed without a close frame")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def receive(self):
        """("text", str) or ("close", code); pings are answered."""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self._read(2), "big")
            elif n == 127:
                n = int.from_bytes(self._read(8), "big")
            data = self._read(n)
            opcode = b0 & 0x0F
            if opcode == 8:
                return "close", int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
            if opcode == 9:
                self.send(data, opcode=10)
            elif opcode in (1, 2):
                return "text", data.decode("utf-8", "replace")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def ws_cases(ctx):
    """(label, protocol, token for connection_init or None for no init, messages)."""
    meet, token = ctx["meet"], ctx["member"]["token"]

    def sub(query, variables=None, id_="1", legacy=False):
        kind = "start" if legacy else "subscribe"
        return json.dumps({"id": id_, "type": kind, "payload": {"query": query, "variables": variables or {}}})

    activity = "subscription($m: ID!) { meetActivity(meetId: $m) { kind } }"
    for protocol in ("graphql-transport-ws", "graphql-ws"):
        legacy = protocol == "graphql-ws"
        for who in (None, token):
            yield f"{protocol} activity garbage id", protocol, who, [sub(activity, {"m": "not-an-id"}, legacy=legacy)]
            yield f"{protocol} activity NUL id", protocol, who, [sub(activity, {"m": meet + "\x00"}, legacy=legacy)]
            yield f"{protocol} activity 100KB id", protocol, who, [sub(activity, {"m": "A" * KB100}, legacy=legacy)]
            yield f"{protocol} activity private meet", protocol, who, [sub(activity, {"m": ctx["private_meet"]}, legacy=legacy)]
            yield f"{protocol} announced 100KB region", protocol, who, [sub("subscription($r: String) { meetAnnounced(region: $r) { id } }", {"r": "\x00\r\n" * 30_000}, legacy=legacy)]
            yield f"{protocol} fragment bomb", protocol, who, [sub(fragment_bomb(40, 2, "__typename").replace("query Q", "subscription S").replace("on Query", "on Subscription"), legacy=legacy)]
            yield f"{protocol} 5000 aliases", protocol, who, [sub("subscription {" + " ".join(f"a{i}: meetAnnounced {{ id }}" for i in range(5000)) + "}", legacy=legacy)]
            yield f"{protocol} query over ws", protocol, who, [sub("{ " + " ".join(f"a{i}: me {{ id }}" for i in range(3000)) + " }", legacy=legacy)]
            yield f"{protocol} mutation over ws", protocol, who, [sub("mutation { updateProfile(input: {bio: \"\\u0000\"}) { id } }", legacy=legacy)]
            yield f"{protocol} invalid json", protocol, who, ["{"]
            yield f"{protocol} not an object", protocol, who, ["[1,2,3]"]
            yield f"{protocol} unknown type", protocol, who, [json.dumps({"type": "\x00" * 1000})]
            yield f"{protocol} no id", protocol, who, [json.dumps({"type": "subscribe", "payload": {"query": activity}})]
            yield f"{protocol} 100KB id", protocol, who, [sub(activity, {"m": meet}, id_="\x00" * KB100, legacy=legacy)]
            yield f"{protocol} duplicate id", protocol, who, [sub(activity, {"m": meet}, legacy=legacy)] * 3
            yield f"{protocol} payload null", protocol, who, [json.dumps({"id": "1", "type": "subscribe", "payload": None})]
            yield f"{protocol} lone surrogate", protocol, who, ['{"id": "1", "type": "subscribe", "payload": {"query": "\\ud800"}}']
            yield f"{protocol} binary frame", protocol, who, [b"\xff\xfe\x00"]
            yield f"{protocol} 900KB text", protocol, who, ["x" * 900_000]
        yield f"{protocol} subscribe before init", protocol, "no init", [sub(activity, {"m": meet}, legacy=legacy)]
        for i, auth in enumerate(a for a in bad_authorizations(ctx) if isinstance(a, str)):
            yield f"{protocol} init authorization #{i}", protocol, {"authorization": auth}, [sub(activity, {"m": meet}, legacy=legacy)]
        yield f"{protocol} init payload string", protocol, "\x00" * 1000, []
        yield f"{protocol} init payload list", protocol, [[[[[]]]]], []
        yield f"{protocol} init authorization number", protocol, {"authorization": 12}, []
        yield f"{protocol} init 100 KB", protocol, {"authorization": "Bearer " + "A" * KB100, "x": "\x00" * KB100}, []


def run_ws(driver, ctx, timeout):
    """Each case on a connection of its own: handshake, connection_init,
    the messages, then whatever arrives within a short wait."""
    for label, protocol, init, messages in ws_cases(ctx):
        driver.requests += 1
        label = "ws " + label
        ws = None
        try:
            ws = WebSocket(driver.server.port, protocol, timeout)
            driver.answers[("ws handshake", ws.status)] += 1
            if ws.status >= 500:
                driver.fail("5xx", label, f"handshake HTTP {ws.status}")
                continue
            if init != "no init":
                if init is None:
                    payload = {}
                elif isinstance(init, str) and init.startswith("ey"):
                    payload = {"authorization": f"Bearer {init}"}
                else:
                    payload = init
                ws.send(json.dumps({"type": "connection_init", "payload": payload}))
                kind, value = ws.receive()  # ack, or a close for a refused init
                if kind == "close":
                    note_close(driver, label, value)
                    continue
            for message in messages:
                ws.send(message, opcode=2 if isinstance(message, bytes) else 1)
            ws.sock.settimeout(0.15)
            try:
                while True:
                    kind, value = ws.receive()
                    if kind == "close":
                        note_close(driver, label, value)
                        break
                    driver.answers[("ws message", ws_summary(value))] += 1
                    if '"INTERNAL"' in value:
                        driver.fail("INTERNAL", label, value[:300])
            except (socket.timeout, TimeoutError):
                pass  # a subscription that holds: nothing more to read
        except (socket.timeout, TimeoutError) as e:
            driver.fail("timeouts", label, f"no answer within {timeout}s: {e}")
        except OSError as e:
            driver.fail("timeouts", label, f"connection failed: {type(e).__name__}: {e}")
        finally:
            if ws:
                ws.close()


def ws_summary(text):
    try:
        message = json.loads(text)
        payload = message.get("payload")
        if isinstance(payload, list):
            payload = {"errors": payload}
        errors = (payload or {}).get("errors") if isinstance(payload, dict) else None
        code = (errors[0].get("extensions") or {}).get("code") if errors else None
        return f"{message.get('type')} {code or ''}".strip()
    except (ValueError, AttributeError, TypeError, IndexError):
        return "not JSON"


def note_close(driver, label, code):
    driver.answers[("ws close", code)] += 1
    if code == 1011:  # "internal error"
        driver.fail("INTERNAL", label, "closed with 1011")


def setup(server):
    ctx = {"member": server.register("hostilemember"),
           "victim": server.register("hostilevictim"),
           "admin": server.admin("hostileadmin")}
    tok = ctx["member"]["token"]
    starts = (datetime.now(timezone.utc) + timedelta(hours=3)).isoformat()
    create = ("mutation($input: CreateMeetInput!) { createMeet(input: $input) { id } }")
    ctx["meet"] = server.graphql(create, {"input": {
        "title": "Drinks at the Rose & Crown", "venueName": "Rose & Crown", "startsAt": starts,
        "region": "Toronto", "capacity": 50, "description": "Come meet the industry"}}, tok)["createMeet"]["id"]
    ctx["spare_meet"] = server.graphql(create, {"input": {
        "title": "Spare", "venueName": "Elsewhere", "startsAt": starts}}, tok)["createMeet"]["id"]
    ctx["private_meet"] = server.graphql(create, {"input": {
        "title": "Private", "venueName": "Somewhere", "startsAt": starts,
        "visibility": "INVITE_ONLY"}}, ctx["admin"]["token"])["createMeet"]["id"]
    publish = "mutation($input: PublishStoryInput!) { publishStory(input: $input) { id } }"
    ctx["story"] = server.graphql(publish, {"input": {"title": "War story", "body": "It went well.",
                                                      "meetId": ctx["meet"]}}, tok)["publishStory"]["id"]
    ctx["spare_story"] = server.graphql(publish, {"input": {"title": "Spare", "body": "x"}},
                                        tok)["publishStory"]["id"]
    ctx["invitation"] = server.graphql(
        "mutation($m: ID!, $h: [String!]) { inviteToMeet(meetId: $m, handles: $h) { id } }",
        {"m": ctx["meet"], "h": ["hostilevictim"]}, tok)["inviteToMeet"][0]["id"]
    server.graphql("mutation($m: ID!) { rsvp(meetId: $m, status: GOING) { status } }",
                   {"m": ctx["meet"]}, ctx["victim"]["token"])
    page = server.graphql("{ meets(first: 1) { pageInfo { endCursor } } }", None, tok)
    ctx["cursor"] = page["meets"]["pageInfo"]["endCursor"]
    return ctx


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=harness.default_server(), help="tweetmeet binary")
    parser.add_argument("--postgres", metavar="URL",
                        help="run on PostgreSQL: a database of its own is created on this server")
    parser.add_argument("--requests", type=int, default=0,
                        help="contract-operation requests (sampled; 0: all of them)")
    parser.add_argument("--quick", action="store_true", help="--requests 300, for CI")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    parser.add_argument("--verbose", action="store_true", help="count answers by status and code")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--log", help="write every failure here (default: beside the summary)")
    args = parser.parse_args()
    if args.quick and not args.requests:
        args.requests = 300
    backend = "postgres" if args.postgres else "sqlite"
    log_path = args.log or os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                        f"hostile-{backend}-{os.getpid()}.log")
    started = time.monotonic()
    with open(log_path, "w") as log, harness.Server(args.server, args.postgres) as server:
        ctx = setup(server)
        driver = Driver(server, args.timeout, log)
        operations = harness.contract_operations()
        cases = operation_cases(ctx, operations)
        total_cases = len(cases)
        if args.requests and args.requests < len(cases):
            cases = random.Random(args.seed).sample(cases, args.requests)
        rng = random.Random(args.seed)
        for label, op, kind, who, variables in cases:
            token = ctx[who]["token"] if who else None
            payload = {"query": operations[op], "variables": variables, "operationName": op}
            if kind == "query" and rng.random() < 0.25:
                driver.get("GET " + label, payload, token)
            else:
                driver.post(label, payload, token)
        shapes = list(documents(ctx))
        for label, query, variables in shapes:
            for who in (None, "member"):
                token = ctx[who]["token"] if who else None
                tag = f"{label} [{who or 'anonymous'}]"
                driver.post(tag, {"query": query, "variables": variables}, token)
            if len(query) < 60_000 and not query.lstrip().startswith(("mutation",)):
                driver.get(f"GET {label}", {"query": query, "variables": variables})
        for label, method, path, body, headers in http_cases(ctx):
            driver.send(label, method, path, body, headers)
        run_ws(driver, ctx, args.timeout)
        # The server still serves, and the sessions the run used still work.
        alive = server.alive()
        if alive:
            try:
                me = server.graphql("{ me { handle } }", None, ctx["member"]["token"])["me"]
            except (SystemExit, OSError) as e:
                me = f"{type(e).__name__}: {e}"
            if not isinstance(me, dict) or me.get("handle") != ctx["member"]["handle"]:
                print(f"warning: the member's session did not last the run ({me!r:.200}): "
                      "signed-in cases after it were anonymous")
        panics = server.panics()
        if not alive:
            panics.append(f"server exited with {server.proc.returncode}")
            tail = server.log_text()[-2000:]
            log.write(f"server log tail:\n{tail}\n")
        for line in panics:
            log.write(f"panic: {line}\n")
    counts = {k: len(v) for k, v in driver.failures.items()}
    elapsed = time.monotonic() - started
    print(f"hostile ({backend}): {driver.requests} requests ({len(cases)} of {total_cases} operation "
          f"cases, {len(shapes)} document shapes, transport cases) in {elapsed:.0f} s")
    if args.verbose:
        for (status, code), n in sorted(driver.answers.items(), key=lambda a: -a[1]):
            print(f"  {n:6d} x {status} {code}")
    for kind, failures in driver.failures.items():
        for label, detail in failures[:10]:
            print(f"  {kind}: {label[:150]}: {detail[:300]}")
        if len(failures) > 10:
            print(f"  ... {len(failures) - 10} more {kind} in {log_path}")
    for line in panics[:10]:
        print(f"  panic: {line[:300]}")
    print(f"hostile: {driver.requests} requests, {counts['5xx']} 5xx, {counts['INTERNAL']} INTERNAL, "
          f"{counts['timeouts']} timeouts, {len(panics)} panics")
    if any(counts.values()) or panics:
        print(f"failures logged in {log_path}")
        sys.exit(1)
    os.remove(log_path)


if __name__ == "__main__":
    main()
