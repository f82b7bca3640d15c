"""A thin synchronous wrapper over the real stomp.py 9.0.0 client.

stomp.py is callback based (a receiver thread per connection). `Client` collects what the
listener sees and offers bounded waits: every wait has a timeout and fails with what *did*
arrive (ERROR frames included), so a misbehaving gateway fails a test instead of hanging it.

Version differences handled here (read from stomp.py 9.0.0's protocol.py):
- 1.0: `ack(message_id)`; CONNECT command; no heart-beats; no NACK.
- 1.1: `ack(message_id, subscription)`, `nack(message_id, subscription)`; STOMP command.
- 1.2: `ack(ack_header)`, `nack(ack_header)` where ack_header is the MESSAGE's `ack` header.
"""

from __future__ import annotations

import threading
import time
import uuid

import stomp

CONNECTIONS = {"1.0": stomp.Connection10, "1.1": stomp.Connection11, "1.2": stomp.Connection12}
DEFAULT_TIMEOUT = 5.0


def new_id(prefix: str = "r") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Collector(stomp.ConnectionListener):
    def __init__(self):
        self.cond = threading.Condition()
        self.connected_frame = None
        self.messages: list = []
        self.errors: list = []
        self.receipts: set[str] = set()
        self.disconnected = False
        self.heartbeats = 0

    def _add(self, fn):
        with self.cond:
            fn()
            self.cond.notify_all()

    def on_connected(self, frame):
        self._add(lambda: setattr(self, "connected_frame", frame))

    def on_message(self, frame):
        self._add(lambda: self.messages.append(frame))

    def on_error(self, frame):
        self._add(lambda: self.errors.append(frame))

    def on_receipt(self, frame):
        self._add(lambda: self.receipts.add(frame.headers.get("receipt-id")))

    def on_disconnected(self):
        self._add(lambda: setattr(self, "disconnected", True))

    def on_heartbeat(self):
        self._add(lambda: setattr(self, "heartbeats", self.heartbeats + 1))

    def wait(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {what}; "
                        f"errors={[_fmt(e) for e in self.errors]} "
                        f"messages={[_fmt(m) for m in self.messages]} "
                        f"disconnected={self.disconnected}"
                    )
                self.cond.wait(remaining)


def _fmt(frame) -> str:
    return f"{frame.cmd} {frame.headers} {frame.body!r}"


class Client:
    """One STOMP connection made with stomp.py.

    `connect_headers` go on the CONNECT frame (e.g. {"client-id": "c1"}).
    """

    def __init__(
        self,
        gateway,
        version: str = "1.2",
        heartbeats=(0, 0),
        connect_headers: dict | None = None,
        with_connect_command: bool = False,
        auto_decode: bool = True,
        login: str | None = None,
        passcode: str | None = None,
    ):
        self.version = version
        kwargs = dict(reconnect_attempts_max=1, auto_decode=auto_decode)
        if version != "1.0":
            kwargs["heartbeats"] = heartbeats
        self.conn = CONNECTIONS[version]([(gateway.host, gateway.stomp_port)], **kwargs)
        self.listener = Collector()
        self.conn.set_listener("collector", self.listener)
        self._sub_seq = 0
        connect_kwargs = dict(headers=dict(connect_headers or {}), wait=False)
        if version != "1.0":
            connect_kwargs["with_connect_command"] = with_connect_command
        self.conn.connect(login, passcode, **connect_kwargs)
        self.listener.wait(
            lambda: self.listener.connected_frame is not None or self.listener.errors,
            DEFAULT_TIMEOUT,
            "CONNECTED",
        )
        if self.listener.connected_frame is None:
            raise AssertionError(f"CONNECT refused: {[_fmt(e) for e in self.listener.errors]}")

    @property
    def connected_frame(self):
        return self.listener.connected_frame

    # -- receipts --

    def wait_receipt(self, rid: str, timeout: float = DEFAULT_TIMEOUT):
        def done():
            if self.listener.errors:
                raise AssertionError(
                    f"ERROR while waiting for receipt {rid}: {[_fmt(e) for e in self.listener.errors]}"
                )
            return rid in self.listener.receipts

        self.listener.wait(done, timeout, f"RECEIPT {rid}")

    def _receipt_headers(self, headers, receipt):
        headers = dict(headers or {})
        rid = None
        if receipt:
            rid = new_id()
            headers["receipt"] = rid
        return headers, rid

    # -- commands --

    def subscribe(self, destination: str, ack: str = "auto", id: str | None = None, headers=None, receipt=True) -> str:
        """SUBSCRIBE (waiting for its RECEIPT unless receipt=False); returns the subscription id."""
        if id is None:
            self._sub_seq += 1
            id = f"sub-{self._sub_seq}"
        headers, rid = self._receipt_headers(headers, receipt)
        self.conn.subscribe(destination=destination, id=id, ack=ack, headers=headers)
        if rid:
            self.wait_receipt(rid)
        return id

    def unsubscribe(self, id: str, headers=None, receipt=True):
        headers, rid = self._receipt_headers(headers, receipt)
        if self.version == "1.0":
            self.conn.unsubscribe(id=id, headers=headers)
        else:
            self.conn.unsubscribe(id, headers=headers)
        if rid:
            self.wait_receipt(rid)

    def send(self, destination: str, body="", headers=None, receipt=True, content_type=None, transaction=None):
        headers, rid = self._receipt_headers(headers, receipt)
        if transaction:
            headers["transaction"] = transaction
        self.conn.send(destination=destination, body=body, content_type=content_type, headers=headers)
        if rid:
            self.wait_receipt(rid)

    def ack(self, frame, transaction=None, receipt=True):
        rid = new_id() if receipt else None
        h = frame.headers
        if self.version == "1.0":
            self.conn.ack(h["message-id"], transaction=transaction, receipt=rid)
        elif self.version == "1.1":
            self.conn.ack(h["message-id"], h["subscription"], transaction=transaction, receipt=rid)
        else:
            self.conn.ack(h["ack"], transaction=transaction, receipt=rid)
        if rid:
            self.wait_receipt(rid)

    def nack(self, frame, transaction=None, receipt=True):
        rid = new_id() if receipt else None
        h = frame.headers
        if self.version == "1.1":
            self.conn.nack(h["message-id"], h["subscription"], transaction=transaction, receipt=rid)
        elif self.version == "1.2":
            self.conn.nack(h["ack"], transaction=transaction, receipt=rid)
        else:
            raise ValueError("STOMP 1.0 has no NACK")
        if rid:
            self.wait_receipt(rid)

    def begin(self, transaction: str | None = None, receipt=True) -> str:
        transaction = transaction or new_id("tx")
        headers, rid = self._receipt_headers(None, receipt)
        self.conn.begin(transaction=transaction, headers=headers)
        if rid:
            self.wait_receipt(rid)
        return transaction

    def commit(self, transaction: str, receipt=True):
        headers, rid = self._receipt_headers(None, receipt)
        self.conn.commit(transaction=transaction, headers=headers)
        if rid:
            self.wait_receipt(rid)

    def abort(self, transaction: str, receipt=True):
        headers, rid = self._receipt_headers(None, receipt)
        self.conn.abort(transaction, headers=headers)
        if rid:
            self.wait_receipt(rid)

    # -- receiving --

    def get(self, timeout: float = DEFAULT_TIMEOUT):
        """The next MESSAGE frame (stomp.py Frame: .cmd, .headers, .body)."""
        self.listener.wait(lambda: self.listener.messages, timeout, "a MESSAGE")
        with self.listener.cond:
            return self.listener.messages.pop(0)

    def get_n(self, n: int, timeout: float = DEFAULT_TIMEOUT) -> list:
        self.listener.wait(lambda: len(self.listener.messages) >= n, timeout, f"{n} MESSAGEs")
        with self.listener.cond:
            out, self.listener.messages[:n] = self.listener.messages[:n], []
            return out

    def expect_no_message(self, wait: float = 0.5):
        time.sleep(wait)
        with self.listener.cond:
            if self.listener.messages:
                raise AssertionError(f"unexpected MESSAGE: {[_fmt(m) for m in self.listener.messages]}")

    def expect_error(self, timeout: float = DEFAULT_TIMEOUT):
        self.listener.wait(lambda: self.listener.errors, timeout, "an ERROR frame")
        return self.listener.errors[0]

    @property
    def errors(self):
        return list(self.listener.errors)

    # -- leaving --

    def disconnect(self, timeout: float = DEFAULT_TIMEOUT):
        """DISCONNECT with a receipt; returns once the receipt came and the socket is closed."""
        if self.listener.disconnected or not self.conn.is_connected():
            self.close_abruptly()
            return
        # Without an explicit receipt stomp.py sends its own and closes the socket when that
        # RECEIPT arrives (instead of blocking in transport.stop()).
        self.conn.disconnect()
        self.listener.wait(lambda: self.listener.disconnected, timeout, "the RECEIPT to DISCONNECT")

    def close_abruptly(self):
        """Drop the TCP connection without DISCONNECT (a crashed client)."""
        try:
            self.conn.transport.disconnect_socket()
        except Exception:
            pass
        self.listener.wait(lambda: self.listener.disconnected, DEFAULT_TIMEOUT, "socket close")


def collect(clients: list, total: int, timeout: float = DEFAULT_TIMEOUT) -> list[list]:
    """Wait until `total` MESSAGEs arrived across `clients`; returns each client's frames."""
    deadline = time.monotonic() + timeout
    while True:
        counts = [len(c.listener.messages) for c in clients]
        if sum(counts) >= total:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {total} MESSAGEs across clients; got {counts}")
        time.sleep(0.02)
    out = []
    for c in clients:
        with c.listener.cond:
            out.append(list(c.listener.messages))
            c.listener.messages.clear()
    return out
