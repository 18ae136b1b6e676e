"""The example agent's world: real files in a temporary folder and a real HTTP service on 127.0.0.1.

A customer-support agent works tickets. Its tools:

- files, on a workspace folder (`tickets/<id>/ticket.json`, `closed/`): `list_dir`, `read_file`, `stat`,
  `grep` (reads) and `write_file`, `move_file` (state-changing: they never run ahead);
- a shop API, served by `ShopService` (stdlib `http.server` in a thread): GET /orders/{id}, /users/{id},
  /shipments/{id}, /payments/{id}, /policies/{topic} (reads) and POST /orders/{id}/cancel,
  /orders/{id}/refund (state-changing). Each handler sleeps a fixed 0.35-0.8 s: it stands in for a
  remote API's latency (network, database); the local work itself takes microseconds.

Every tool carries an honest `ToolContract`: reads are side-effect-free, idempotent, fresh for a while
and name the resource keys they read; writes declare what they mutate and stay default-deny. The data
(orders, users, tickets) is `data/store.json`; `reset()` puts both the files and the service back to it,
so the serial and the speculative run start from the same world.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from toolcast.runtime import Tool, ToolContract, read_only

log = logging.getLogger("examples.support_world")

STORE = Path(__file__).resolve().parent / "data" / "store.json"

LATENCY_S: dict[str, float] = {
    "get_order": 0.6, "get_user": 0.35, "get_shipment": 0.7, "get_payment": 0.5, "get_policy": 0.45,
    "cancel_order": 0.8, "refund_order": 0.8,
}
"""Seconds each service handler sleeps (times the run's scale): stands in for a remote API."""


class ToolError(Exception):
    """What a tool raises; the agent sees its message as the tool's (error) result."""


# ---- the shop service ------------------------------------------------------------------------------


class ShopService:
    """A small JSON API over the store, on a free port of 127.0.0.1, in a daemon thread."""

    _ROUTES = [
        ("GET", re.compile(r"/orders/([\w-]+)"), "get_order"),
        ("GET", re.compile(r"/users/([\w-]+)"), "get_user"),
        ("GET", re.compile(r"/shipments/([\w-]+)"), "get_shipment"),
        ("GET", re.compile(r"/payments/([\w-]+)"), "get_payment"),
        ("GET", re.compile(r"/policies/([\w-]+)"), "get_policy"),
        ("POST", re.compile(r"/orders/([\w-]+)/cancel"), "cancel_order"),
        ("POST", re.compile(r"/orders/([\w-]+)/refund"), "refund_order"),
    ]

    def __init__(self, store: dict[str, Any], scale: float = 1.0):
        self.initial = store
        self.scale = scale
        self.lock = threading.Lock()
        self.data: dict[str, Any] = {}
        self.requests: Counter = Counter()
        self.reset()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="shop-service", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self) -> None:
        with self.lock:
            self.data = copy.deepcopy(self.initial)
            self.requests = Counter()

    def state(self) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---- the handlers (called in the server's threads) ----
    def handle(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        for m, pattern, name in self._ROUTES:
            match = pattern.fullmatch(path)
            if m == method and match:
                time.sleep(LATENCY_S[name] * self.scale)
                with self.lock:
                    self.requests[f"{method} {name}"] += 1
                    return getattr(self, "_" + name)(match.group(1), body)
        return 404, {"error": f"no route {method} {path}"}

    def _get(self, table: str, key: str) -> tuple[int, Any]:
        row = self.data[table].get(key)
        if row is None:
            return 404, {"error": f"{table[:-1]} {key} not found"}
        return 200, row

    def _get_order(self, key: str, body: dict) -> tuple[int, Any]:
        return self._get("orders", key)

    def _get_user(self, key: str, body: dict) -> tuple[int, Any]:
        return self._get("users", key)

    def _get_shipment(self, key: str, body: dict) -> tuple[int, Any]:
        return self._get("shipments", key)

    def _get_payment(self, key: str, body: dict) -> tuple[int, Any]:
        return self._get("payments", key)

    def _get_policy(self, key: str, body: dict) -> tuple[int, Any]:
        return self._get("policies", key)

    def _cancel_order(self, key: str, body: dict) -> tuple[int, Any]:
        order = self.data["orders"].get(key)
        if order is None:
            return 404, {"error": f"order {key} not found"}
        if order["status"] != "pending":
            return 409, {"error": f"order {key} is {order['status']}; only pending orders can be cancelled"}
        order["status"] = "cancelled"
        order["cancel_reason"] = str(body.get("reason", ""))
        payment = self.data["payments"][order["payment_id"]]
        payment["refunded"] = payment["amount"]
        return 200, {"order_id": key, "status": "cancelled", "refunded": payment["amount"]}

    def _refund_order(self, key: str, body: dict) -> tuple[int, Any]:
        order = self.data["orders"].get(key)
        if order is None:
            return 404, {"error": f"order {key} not found"}
        amount = body.get("amount")
        payment = self.data["payments"][order["payment_id"]]
        left = payment["amount"] - payment["refunded"]
        if not isinstance(amount, int | float) or isinstance(amount, bool) or not 0 < amount <= left:
            return 409, {"error": f"cannot refund {amount!r}: paid {payment['amount']}, "
                                  f"already refunded {payment['refunded']}"}
        payment["refunded"] += amount
        order["status"] = "refunded"
        return 200, {"order_id": key, "status": "refunded", "refunded": amount,
                     "payment_id": payment["payment_id"]}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, method: str) -> None:
                body: dict[str, Any] = {}
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    try:
                        body = json.loads(self.rfile.read(length))
                    except ValueError:
                        body = {"_invalid": True}
                status, payload = (400, {"error": "body is not JSON"}) if body.get("_invalid") \
                    else service.handle(method, self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._answer("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._answer("POST")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's signature
                log.debug("shop: " + format, *args)

        return Handler


# ---- the workspace ---------------------------------------------------------------------------------


class Workspace:
    """The agent's folder: every ticket of the store as `tickets/<id>/ticket.json`, and `closed/`."""

    def __init__(self, root: Path, store: dict[str, Any]):
        self.root = root
        self.store = store
        self.reset()

    def reset(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)
        (self.root / "closed").mkdir(parents=True)
        for tid, ticket in self.store["tickets"].items():
            folder = self.root / "tickets" / tid
            folder.mkdir(parents=True)
            (folder / "ticket.json").write_text(json.dumps(ticket, indent=2, ensure_ascii=False) + "\n")

    def resolve(self, path: str) -> Path:
        p = (self.root / path).resolve()
        if p != self.root.resolve() and self.root.resolve() not in p.parents:
            raise ToolError(f"{path}: outside the workspace")
        return p

    def snapshot(self) -> dict[str, str]:
        """Every file and its text: what the safety check compares between runs."""
        files = sorted(p for p in self.root.rglob("*") if p.is_file())
        return {str(p.relative_to(self.root)): p.read_text() for p in files}

    # ---- the file tools ----
    def list_dir(self, path: str) -> dict[str, Any]:
        d = self.resolve(path)
        if not d.is_dir():
            raise ToolError(f"{path}: no such directory")
        entries = [{"name": p.name, "path": f"{path.rstrip('/')}/{p.name}",
                    "type": "dir" if p.is_dir() else "file",
                    "size": p.stat().st_size if p.is_file() else None} for p in sorted(d.iterdir())]
        return {"path": path, "entries": entries}

    def read_file(self, path: str) -> str:
        f = self.resolve(path)
        if not f.is_file():
            raise ToolError(f"{path}: no such file")
        return f.read_text()

    def stat(self, path: str) -> dict[str, Any]:
        p = self.resolve(path)
        if not p.exists():
            raise ToolError(f"{path}: no such file or directory")
        return {"path": path, "type": "dir" if p.is_dir() else "file", "size": p.stat().st_size}

    def grep(self, pattern: str, path: str) -> dict[str, Any]:
        try:
            rx = re.compile(pattern)
        except re.error as e:
            raise ToolError(f"bad pattern {pattern!r}: {e}") from None
        base = self.resolve(path)
        files = [base] if base.is_file() else sorted(f for f in base.rglob("*") if f.is_file())
        hits = [{"path": str(f.relative_to(self.root)), "line": i, "text": line}
                for f in files for i, line in enumerate(f.read_text().splitlines(), 1) if rx.search(line)]
        return {"pattern": pattern, "matches": hits}

    def write_file(self, path: str, content: str) -> dict[str, Any]:
        f = self.resolve(path)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(content)
        return {"path": path, "bytes": len(content.encode())}

    def move_file(self, src: str, dst: str) -> dict[str, Any]:
        s, d = self.resolve(src), self.resolve(dst)
        if not s.exists():
            raise ToolError(f"{src}: no such file or directory")
        if d.exists():
            raise ToolError(f"{dst}: already exists")
        d.parent.mkdir(parents=True, exist_ok=True)
        s.rename(d)
        return {"src": src, "dst": dst}


# ---- tools with their contracts --------------------------------------------------------------------


def _http(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        try:
            detail = json.loads(e.read()).get("error", "")
        except ValueError:
            detail = e.reason
        raise ToolError(f"{method} {path}: {e.code} {detail}") from None


def _schema(**props: str) -> dict[str, Any]:
    return {"type": "object", "properties": {k: {"type": t} for k, t in props.items()},
            "required": list(props), "additionalProperties": False}


def _files_reads(*templates: str, stable_for: float = 10.0) -> ToolContract:
    return read_only(stable_for, reads=templates)


def make_tools(ws: Workspace, base_url: str) -> list[Tool]:
    """The agent's tools. Reads may run ahead (and name what they read); writes never do."""

    def api(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return _http(base_url, method, path, body)

    def get_order(order_id: str) -> Any:
        return api("GET", f"/orders/{order_id}")

    def get_user(user_id: str) -> Any:
        return api("GET", f"/users/{user_id}")

    def get_shipment(shipment_id: str) -> Any:
        return api("GET", f"/shipments/{shipment_id}")

    def get_payment(payment_id: str) -> Any:
        return api("GET", f"/payments/{payment_id}")

    def get_policy(topic: str) -> Any:
        return api("GET", f"/policies/{topic}")

    def cancel_order(order_id: str, reason: str) -> Any:
        return api("POST", f"/orders/{order_id}/cancel", {"reason": reason})

    def refund_order(order_id: str, amount: float, reason: str) -> Any:
        return api("POST", f"/orders/{order_id}/refund", {"amount": amount, "reason": reason})

    moves = ToolContract(mutates=("file:{src}", "file:{src}/*", "file:{dst}", "file:{dst}/*"))
    money = ToolContract(mutates=("order:{order_id}", "payment:*"))
    return [
        Tool("list_dir", ws.list_dir, _schema(path="string"), "List a folder of the workspace.",
             _files_reads("file:{path}", "file:{path}/*")),
        Tool("read_file", ws.read_file, _schema(path="string"), "Read a text file of the workspace.",
             _files_reads("file:{path}")),
        Tool("stat", ws.stat, _schema(path="string"), "Type and size of a file or folder.",
             _files_reads("file:{path}")),
        Tool("grep", ws.grep, _schema(pattern="string", path="string"),
             "Lines matching a regular expression in a file or under a folder.",
             _files_reads("file:{path}", "file:{path}/*")),
        Tool("write_file", ws.write_file, _schema(path="string", content="string"),
             "Write (create or replace) a text file.", ToolContract(mutates=("file:{path}",))),
        Tool("move_file", ws.move_file, _schema(src="string", dst="string"),
             "Move a file or folder.", moves),
        Tool("get_order", get_order, _schema(order_id="string"), "An order: items, status, user, payment.",
             read_only(30.0, reads=["order:{order_id}"])),
        Tool("get_user", get_user, _schema(user_id="string"), "A customer's profile.",
             read_only(60.0, reads=["user:{user_id}"])),
        Tool("get_shipment", get_shipment, _schema(shipment_id="string"), "A shipment's status and tracking.",
             read_only(30.0, reads=["shipment:{shipment_id}"])),
        Tool("get_payment", get_payment, _schema(payment_id="string"), "A payment and what was refunded.",
             read_only(30.0, reads=["payment:{payment_id}"])),
        Tool("get_policy", get_policy, _schema(topic="string"), "The support policy on a topic.",
             read_only(300.0, reads=["policy:{topic}"])),
        Tool("cancel_order", cancel_order, _schema(order_id="string", reason="string"),
             "Cancel a pending order and refund it in full.", money),
        Tool("refund_order", refund_order, _schema(order_id="string", amount="number", reason="string"),
             "Refund (part of) an order to its payment method.", money),
    ]


def load_store(path: Path = STORE) -> dict[str, Any]:
    return json.loads(path.read_text())
