"""A real `tweetmeet serve` for the hostile-input runs: a free loopback port,
a fresh temporary working directory (so a fresh SQLite database) or a
PostgreSQL database of its own (created here, dropped at the end), its log in
a file, and the few GraphQL calls the runs need to set up. Standard library
only."""

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
JWT_SECRET = "hostile-run-secret-hostile-run-secret!"
PASSWORD = "correct horse battery"


def default_server():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    return os.path.join(target, "debug", "tweetmeet")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_database(base_url):
    """A fresh database on the server of `base_url`; returns (url, name)."""
    name = "tweetmeet_hostile_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", "-q", "-X", base_url, "-c", f"CREATE DATABASE {name}"],
                   check=True, stdout=subprocess.DEVNULL)
    scheme_host, _, rest = base_url.partition("://")
    authority, _, path = rest.partition("/")
    query = path.partition("?")[2]
    url = f"{scheme_host}://{authority}/{name}" + (f"?{query}" if query else "")
    return url, name


class Server:
    """`with Server(binary, postgres=None) as server:` serves until the block ends."""

    def __init__(self, binary, postgres=None, extra_env=None):
        self.binary = os.path.abspath(binary)
        self.postgres = postgres
        self.extra_env = extra_env or {}
        self.proc = None
        self.dbname = None

    def __enter__(self):
        if not os.access(self.binary, os.X_OK):
            raise SystemExit(f"no server binary at {self.binary} (cargo build, or pass --server)")
        self.dir = tempfile.mkdtemp(prefix="tweetmeet-hostile-")
        self.port = free_port()
        if self.postgres:
            self.db_url, self.dbname = postgres_database(self.postgres)
        else:
            self.db_url = "sqlite://tweetmeet.db?mode=rwc"
        self.env = dict(os.environ)
        for key in list(self.env):
            if key.startswith("TWEETMEET_"):
                del self.env[key]
        self.env.update({
            "TWEETMEET_DATABASE_URL": self.db_url,
            "TWEETMEET_BIND": f"127.0.0.1:{self.port}",
            "TWEETMEET_ENV": "development",
            "TWEETMEET_JWT_SECRET": JWT_SECRET,
            "TWEETMEET_MAIL_DIR": os.path.join(self.dir, "outbox"),
            "TWEETMEET_PUBLIC_URL": "https://tweetmeet.test",
            # Every request comes from 127.0.0.1; the limits are not what is
            # tested here, and at 1 they would answer RATE_LIMITED before the
            # inputs reach validation.
            "TWEETMEET_RATE_LIMIT_FACTOR": "1000",
            "RUST_LOG": os.environ.get("RUST_LOG", "info"),
            "RUST_BACKTRACE": "1",
        })
        self.env.update(self.extra_env)
        self.log_path = os.path.join(self.dir, "server.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([self.binary, "serve"], cwd=self.dir, env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited at start ({self.proc.returncode}):\n{self.log_text()[-3000:]}")
            try:
                status, _, _ = request("GET", self.port, "/healthz", timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server did not answer /healthz within 60 s")
            time.sleep(0.1)
        return self

    def alive(self):
        return self.proc.poll() is None

    def log_text(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def panics(self):
        return [line for line in self.log_text().splitlines() if "panicked" in line]

    def cli(self, *args):
        """Runs another `tweetmeet` command on the same database."""
        return subprocess.run([self.binary, *args], cwd=self.dir, env=self.env, check=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if self.dbname:
            subprocess.run(["psql", "-q", "-X", self.postgres, "-c",
                            f"DROP DATABASE IF EXISTS {self.dbname} WITH (FORCE)"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if os.environ.get("HOSTILE_KEEP_DIR"):
            print(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False

    # GraphQL helpers for setting up.

    def graphql(self, query, variables=None, token=None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        status, _, data = request("POST", self.port, "/graphql", body, headers, timeout=30)
        response = json.loads(data)
        if status != 200 or response.get("errors"):
            raise SystemExit(f"setup request failed: {status} {data[:500]!r}\n{query}")
        return response["data"]

    def register(self, handle):
        data = self.graphql(
            "mutation($input: RegisterInput!) { register(input: $input) "
            "{ accessToken refreshToken user { id } } }",
            {"input": {"email": f"{handle}@example.com", "password": PASSWORD,
                       "handle": handle, "displayName": handle.title()}})["register"]
        return {"token": data["accessToken"], "refresh": data["refreshToken"],
                "id": data["user"]["id"], "handle": handle}

    def login(self, handle):
        data = self.graphql(
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) "
            "{ accessToken refreshToken user { id } } }",
            {"e": f"{handle}@example.com", "p": PASSWORD})["login"]
        return {"token": data["accessToken"], "refresh": data["refreshToken"],
                "id": data["user"]["id"], "handle": handle}

    def admin(self, handle):
        """Registers `handle`, promotes it with the CLI and signs in again."""
        self.register(handle)
        self.cli("promote", handle)
        return self.login(handle)


def request(method, port, path, body=None, headers=None, timeout=5.0):
    """One request on its own connection: (status, headers, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        try:
            conn.request(method, path, body=body, headers=headers or {})
        except (BrokenPipeError, ConnectionResetError):
            # The server may answer (413) and close before reading all of an
            # oversize body; its answer is still there to read.
            pass
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


CONTRACT_DIR = os.path.join(ROOT, "tests", "operations")


def contract_operations():
    """{name: document} for every operation of tests/operations/, each with
    the fragments it spreads (as tests/common/mod.rs's Contract does)."""
    operations, fragments = {}, {}
    for file in sorted(os.listdir(CONTRACT_DIR)):
        if not file.endswith(".graphql"):
            continue
        with open(os.path.join(CONTRACT_DIR, file)) as f:
            text = "\n".join(line.split("#")[0] for line in f.read().splitlines())
        depth, start = 0, None
        for at, c in enumerate(text):
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            elif depth == 0 and start is None and not c.isspace():
                start = at
            if c == "}" and depth == 0 and start is not None:
                definition = text[start:at + 1]
                start = None
                words = re.findall(r"\w+", definition)
                (fragments if words[0] == "fragment" else operations)[words[1]] = definition
    result = {}
    for name, document in operations.items():
        included, pending, full = [], [document], document
        while pending:
            for spread in re.findall(r"\.\.\.\s*(\w+)", pending.pop()):
                if spread != "on" and spread not in included and spread in fragments:
                    included.append(spread)
                    full += "\n" + fragments[spread]
                    pending.append(fragments[spread])
        result[name] = full
    return result


def variable_definitions(document):
    """[(name, type text)] of the first operation's variables."""
    head = document.split("{", 1)[0]
    if "(" not in head:
        return []
    inner = head[head.index("(") + 1:head.rindex(")")]
    return [(m.group(1), m.group(2).strip())
            for m in re.finditer(r"\$(\w+)\s*:\s*([^,$=]+?)(?:\s*=\s*[^,$]+)?\s*(?=,|\$|$)", inner)]


def schema_inputs():
    """{input type: [(field, type text)]} and the set of enum names, from schema.graphql."""
    with open(os.path.join(ROOT, "schema.graphql")) as f:
        text = re.sub(r'"""(.|\n)*?"""', "", f.read())
    inputs, enums = {}, {}
    for kind, name, body in re.findall(r"(input|enum)\s+(\w+)\s*\{([^}]*)\}", text):
        if kind == "input":
            inputs[name] = re.findall(r"(\w+)\s*:\s*([\w\[\]!]+)", body)
        else:
            enums[name] = re.findall(r"\w+", body)
    return inputs, enums
