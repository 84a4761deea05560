#!/usr/bin/env python3
"""A minimal fincore client, written from docs/PROTOCOL.md alone (Python 3, standard
library only).

It logs in, loads the reference data (assets and instruments), then either sends one
limit order (`order`, the default) or pays another account (`pay`: a `Transfer`, sent
twice with the same client payment id to show the idempotent retry, then the payment
queried back), each followed by a fence; it asks for the account's balances and logs
out, printing every frame the server sends, decoded.

    python3 docs/examples/fincore_client.py --port 7100 --user alice --account 2 \\
        --symbol BTC-USD --side buy --price 60000.00 --qty 0.01
    python3 docs/examples/fincore_client.py pay --port 7100 --user alice --account 2 \\
        --to 3 --asset USD --amount 250.00 --payment-id 1

Section numbers in the comments refer to docs/PROTOCOL.md.
"""

import argparse
import socket
import struct
import sys
import time
from decimal import Decimal

# --- Section 7: framing ------------------------------------------------------------

HEADER = struct.Struct("<IHBBQ")  # len u32, type u16, version u8, flags u8, seq u64
VERSION = 1
BODY_LEN_MAX = 1024

# --- Section 9: message types ------------------------------------------------------

LOGIN, HEARTBEAT, LOGOUT = 1, 2, 3
NEW_ORDER, QUERY = 10, 30
TRANSFER = 50
LOGIN_ACCEPTED, LOGIN_REJECTED, LOGOUT_NOTICE, SESSION_REJECT = 101, 102, 104, 105
EXEC_REPORT, SNAPSHOT_TAKEN = 110, 111
MD_SNAPSHOT_LEVEL, MD_SNAPSHOT_END, MD_TRADE, MD_LEVEL, MD_UNSUBSCRIBED = 120, 121, 122, 123, 124

# --- Section 1: enums --------------------------------------------------------------

SIDE = ["Buy", "Sell"]
ROLE = ["Trader", "Admin", "Operator"]
ACCOUNT_STATUS = ["Active", "Frozen", "Closed"]
INSTRUMENT_STATUS = ["Trading", "Halted"]
CANCEL_REASON = ["User", "IocRemainder", "FokUnfilled", "SelfTrade", "MassCancel", "Halt"]
COMMAND_KIND = [
    "CreateUser", "CreateAsset", "CreateInstrument", "CreateAccount", "Deposit", "Withdraw",
    "SetAccountStatus", "SetInstrumentStatus", "NewOrder", "Cancel", "Amend", "MassCancel",
    "Query", "Transfer", "Authorize", "Capture", "Void", "SetPaymentLimits",
    "SetAccountLimits", "SetAccountBlocked", "Tick",
]
PAYMENT_KIND = ["Transfer", "Authorization", "Deposit", "Withdrawal"]
PAYMENT_STATUS = ["Pending", "Completed", "Voided", "Expired"]
PAYMENT_ACTION = ["Created", "Captured", "Voided", "Expired", "Duplicate"]
EXTERNAL_ACCOUNT = 0xFFFF_FFFF  # the asset's external account in deposits and withdrawals

# --- Sections 5 and 10: reason codes -----------------------------------------------

REASONS = {
    100: "UnknownUser", 101: "NotAdmin", 200: "UnknownAccount", 201: "AccountClosed",
    202: "AccountNotOwned", 203: "AccountFrozen", 204: "AccountBlocked",
    300: "UnknownInstrument",
    301: "InstrumentHalted", 400: "InvalidOrderType", 401: "PriceNotPositive",
    402: "PriceOffTick", 403: "QtyNotPositive", 404: "QtyOffLot", 405: "QtyAboveMax",
    406: "PriceOutsideBand", 407: "NotionalAboveMax", 408: "ArithmeticOverflow",
    500: "DuplicateClientOrderId", 501: "TooManyOpenOrders", 502: "InsufficientBalance",
    600: "PostOnlyWouldCross", 601: "BookFull", 700: "UnknownOrder", 701: "AmendNoChange",
    800: "AlreadyExists", 801: "UnknownAsset", 802: "InvalidDefinition",
    803: "AmountNotPositive", 804: "IdOutOfRange", 805: "StatusUnchanged",
    806: "AccountNotEmpty", 807: "AccountInUse",
    1000: "PaymentIdZero", 1001: "SameAccount", 1002: "UnknownCreditAccount",
    1003: "CreditAccountClosed", 1004: "CreditAccountBlocked", 1005: "AboveTransferMax",
    1006: "VelocityLimitExceeded", 1007: "PaymentIdConflict", 1008: "UnknownPayment",
    1009: "PaymentNotPending", 1010: "CaptureAboveAuthorized", 1011: "PaymentsFull",
    1012: "CreditLimitBelowUsage",
    0: "ClientLogout", 900: "MalformedFrame", 901: "FrameTooLong",
    902: "UnknownMessageType", 903: "UnsupportedVersion", 904: "NotLoggedIn",
    905: "AlreadyLoggedIn", 906: "LoginFailed", 907: "InvalidHeartbeat", 908: "RateLimited",
    909: "TooManyConnections", 911: "SlowConsumer", 912: "HeartbeatTimeout",
    913: "LoginTimeout", 914: "TooManyErrors", 915: "ServerShutdown", 916: "JournalFailure",
    917: "SnapshotFailed",
    918: "LoginThrottled",
}


def reason(code):
    return f"{REASONS.get(code, 'unknown')} ({code})"


class ProtocolError(Exception):
    pass


class Reader:
    """Reads a body field by field (section 1); `end` insists nothing is left."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ProtocolError("truncated body")
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return value

    def u8(self): return self.take("<B")
    def u16(self): return self.take("<H")
    def u32(self): return self.take("<I")
    def u64(self): return self.take("<Q")
    def i32(self): return self.take("<i")
    def i64(self): return self.take("<q")

    def bool(self):
        value = self.u8()
        if value > 1:
            raise ProtocolError(f"bool {value}")
        return bool(value)

    def enum(self, names):
        tag = self.u32()
        if tag >= len(names):
            raise ProtocolError(f"unknown tag {tag}")
        return names[tag]

    def symbol(self):
        raw = self.take("<16s")
        return raw.rstrip(b"\0").decode("ascii")

    def dec(self):  # Dec: i64 mantissa, u8 scale
        mantissa, scale = self.i64(), self.u8()
        return Decimal(mantissa).scaleb(-scale)

    def opt_i64(self):  # Option<i64>: 00, or 01 and the i64
        return self.i64() if self.bool() else None

    def end(self):
        if self.pos != len(self.data):
            raise ProtocolError(f"{len(self.data) - self.pos} trailing bytes")


# --- Section 4: events -------------------------------------------------------------

# Field kinds: a Reader method name, or an enum name list.
U8, U16, U32, U64, I32, I64, BOOL, SYM = "u8", "u16", "u32", "u64", "i32", "i64", "bool", "symbol"
OPT_I64 = "opt_i64"
BALANCE = [("account", U32), ("asset", U16), ("available", I64), ("held", I64),
           ("pending", I64)]
# PaymentInfo, 74 bytes (section 4): times are engine time, ns since the Unix epoch.
PAYMENT_INFO = [("payment_id", U64), ("client_payment_id", U64), ("kind", PAYMENT_KIND),
                ("debit", U32), ("credit", U32), ("asset", U16), ("amount", I64),
                ("captured", I64), ("status", PAYMENT_STATUS), ("created_ns", U64),
                ("deadline_ns", U64), ("resolved_ns", U64)]
LEVEL = [("instrument", U16), ("side", SIDE), ("price", I64), ("qty", I64), ("orders", U32)]
EVENTS = {
    # client_id: the client order id or client payment id the command named, else 0.
    0: ("Rejected", [("kind", COMMAND_KIND), ("account", U32), ("client_id", U64),
                     ("reason", "reason")]),
    1: ("Accepted", [("order_id", U64), ("account", U32), ("instrument", U16),
                     ("client_order_id", U64), ("side", SIDE), ("price", I64), ("qty", I64),
                     ("hold", I64)]),
    2: ("Fill", [("instrument", U16), ("trade_id", U64), ("price", I64), ("qty", I64),
                 ("taker_side", SIDE), ("maker_order", U64), ("taker_order", U64),
                 ("maker_account", U32), ("taker_account", U32), ("maker_client_id", U64),
                 ("taker_client_id", U64), ("maker_fee", I64), ("taker_fee", I64),
                 ("maker_remaining", I64), ("taker_remaining", I64)]),
    3: ("Cancelled", [("order_id", U64), ("account", U32), ("instrument", U16),
                      ("client_order_id", U64), ("qty_cancelled", I64),
                      ("reason", CANCEL_REASON)]),
    4: ("Amended", [("order_id", U64), ("account", U32), ("instrument", U16),
                    ("client_order_id", U64), ("price", I64), ("qty", I64),
                    ("priority_kept", BOOL)]),
    5: ("Balance", BALANCE),
    6: ("Trade", [("instrument", U16), ("trade_id", U64), ("price", I64), ("qty", I64),
                  ("taker_side", SIDE)]),
    7: ("Level", LEVEL),
    8: ("UserCreated", [("user", U32), ("role", ROLE)]),
    9: ("AssetCreated", [("asset", U16), ("scale", U8)]),
    10: ("InstrumentCreated", [("instrument", U16)]),
    11: ("AccountCreated", [("account", U32), ("owner", U32)]),
    12: ("Payment", [("action", PAYMENT_ACTION)] + PAYMENT_INFO),
    13: ("AccountStatusChanged", [("account", U32), ("status", ACCOUNT_STATUS)]),
    14: ("InstrumentStatusChanged", [("instrument", U16), ("status", INSTRUMENT_STATUS)]),
    15: ("MassCancelled", [("account", U32), ("count", U32)]),
    16: ("BalanceInfo", BALANCE),
    17: ("OrderInfo", [("order_id", U64), ("account", U32), ("instrument", U16),
                      ("client_order_id", U64), ("side", SIDE), ("price", I64),
                      ("remaining", I64), ("filled", I64), ("hold", I64)]),
    18: ("DepthLevel", LEVEL),
    19: ("QueryDone", [("items", U32)]),
    20: ("AssetInfo", [("asset", U16), ("symbol", SYM), ("scale", U8)]),
    # InstrumentSpec (section 2), then the status.
    21: ("InstrumentInfo", [("instrument", U16), ("symbol", SYM), ("base", U16),
                           ("quote", U16), ("tick_size", "dec"), ("lot_size", "dec"),
                           ("reference_price", I64), ("band_bps", U32), ("qty_max", I64),
                           ("notional_max", I64), ("maker_fee_bps", I32),
                           ("taker_fee_bps", I32), ("fee_account", U32),
                           ("status", INSTRUMENT_STATUS)]),
    22: ("PaymentInfo", PAYMENT_INFO),
    23: ("PaymentLimitsSet", [("asset", U16), ("transfer_max", OPT_I64),
                             ("velocity_24h", OPT_I64)]),
    24: ("AccountLimitsSet", [("account", U32), ("asset", U16), ("credit_limit", I64),
                             ("velocity_24h", OPT_I64)]),
    25: ("AccountBlocked", [("account", U32), ("blocked", BOOL)]),
    26: ("Ticked", [("time_ns", U64)]),
}


def read_fields(reader, fields):
    out = {}
    for name, kind in fields:
        if isinstance(kind, list):
            out[name] = reader.enum(kind)
        elif kind == "reason":
            out[name] = reason(reader.u32())
        else:
            out[name] = getattr(reader, kind)()
    return out


def read_event(reader):
    tag = reader.u32()
    if tag not in EVENTS:
        raise ProtocolError(f"unknown event tag {tag}")
    name, fields = EVENTS[tag]
    return name, read_fields(reader, fields)


# --- Section 9: server messages ----------------------------------------------------

SERVER_MESSAGES = {
    LOGIN_ACCEPTED: ("LoginAccepted", [("session_id", U32), ("user", U32), ("admin", BOOL),
                                       ("heartbeat_ms", U32), ("next_seq", U64)]),
    LOGIN_REJECTED: ("LoginRejected", [("reason", "reason")]),
    HEARTBEAT: ("Heartbeat", []),
    LOGOUT_NOTICE: ("Logout", [("reason", "reason")]),
    SESSION_REJECT: ("SessionReject", [("reason", "reason"), ("ref_type", U16),
                                       ("ref_request_id", U64), ("ref_client_id", U64)]),
    EXEC_REPORT: ("ExecReport", [("journal_seq", U64), ("request_id", U64)]),  # + event
    SNAPSHOT_TAKEN: ("SnapshotTaken", [("seq", U64), ("state_hash", U64)]),
    MD_SNAPSHOT_LEVEL: ("MdSnapshotLevel", LEVEL),
    MD_SNAPSHOT_END: ("MdSnapshotEnd", [("instrument", U16), ("md_seq", U64), ("levels", U32)]),
    MD_TRADE: ("MdTrade", [("instrument", U16), ("md_seq", U64), ("trade_id", U64),
                           ("price", I64), ("qty", I64), ("taker_side", SIDE)]),
    MD_LEVEL: ("MdLevel", [("instrument", U16), ("md_seq", U64), ("side", SIDE),
                           ("price", I64), ("qty", I64), ("orders", U32)]),
    MD_UNSUBSCRIBED: ("MdUnsubscribed", [("instrument", U16)]),
}


def decode_server(msg_type, body):
    """Returns (name, fields); an ExecReport also gets `event` and `event_fields`."""
    if msg_type not in SERVER_MESSAGES:
        return f"unknown type {msg_type}", {"body": body.hex()}
    name, fields = SERVER_MESSAGES[msg_type]
    reader = Reader(body)
    out = read_fields(reader, fields)
    if msg_type == EXEC_REPORT:
        out["event"], out["event_fields"] = read_event(reader)
    reader.end()
    return name, out


# --- Client messages (section 9) ---------------------------------------------------

def padded(text, width):
    raw = text.encode("utf-8")
    if len(raw) > width:
        raise ValueError(f"{text!r} is longer than {width} bytes")
    return raw.ljust(width, b"\0")


def login_body(user, secret, heartbeat_ms, cancel_on_disconnect):
    return padded(user, 32) + padded(secret, 64) + struct.pack("<I?", heartbeat_ms,
                                                               cancel_on_disconnect)


def new_order_body(account, instrument, client_order_id, side, price_ticks, qty_lots):
    # account u32, instrument u16, client_order_id u64, side, order_type (0 limit),
    # time_in_force (0 GTC), price i64, qty i64, stp_mode (1 cancel newest),
    # stp_scope (0 account), post_only bool.
    return struct.pack("<IHQIIIqqII?", account, instrument, client_order_id, side, 0, 0,
                       price_ticks, qty_lots, 1, 0, False)


def transfer_body(debit, credit, asset, amount, client_payment_id):
    # The engine's Transfer (section 2): debit u32, credit u32, asset u16, amount i64
    # (minor units), client_payment_id u64: 26 bytes.
    return struct.pack("<IIHqQ", debit, credit, asset, amount, client_payment_id)


def query_payment_by_client_id(account, client_payment_id):
    # Query tag 5 Payment: account u32, PaymentRef tag 1 (Client), the id u64.
    return struct.pack("<IIIQ", 5, account, 1, client_payment_id)


def query_reference():
    return struct.pack("<I", 4)


def query_balances(account):
    return struct.pack("<II", 0, account)


def query_depth(instrument, levels):
    return struct.pack("<IHH", 3, instrument, levels)


class Session:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.next_request = 1
        self.expected_seq = 1
        self.heartbeat = 5.0
        self.last_send = time.monotonic()

    def send(self, msg_type, body=b""):
        """Sends one frame; returns its request id."""
        request = self.next_request
        self.next_request += 1
        self.sock.sendall(HEADER.pack(len(body), msg_type, VERSION, 0, request) + body)
        self.last_send = time.monotonic()
        return request

    def recv(self):
        """The next frame as (seq, type, name, fields), or None once the server closed.
        Sends heartbeats while it waits (section 8)."""
        while True:
            if len(self.buffer) >= HEADER.size:
                length, msg_type, version, flags, seq = HEADER.unpack_from(self.buffer)
                if version != VERSION or length > BODY_LEN_MAX:
                    raise ProtocolError(f"bad header: version {version}, len {length}")
                if len(self.buffer) >= HEADER.size + length:
                    body = self.buffer[HEADER.size:HEADER.size + length]
                    self.buffer = self.buffer[HEADER.size + length:]
                    if seq != self.expected_seq:
                        print(f"!! expected seq {self.expected_seq}, got {seq}")
                    self.expected_seq = seq + 1
                    name, fields = decode_server(msg_type, body)
                    return seq, msg_type, name, fields
            if time.monotonic() - self.last_send >= self.heartbeat / 2:
                self.send(HEARTBEAT)
            self.sock.settimeout(self.heartbeat / 2)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                return None
            self.buffer += chunk


def show(frame):
    seq, _, name, fields = frame
    if name == "ExecReport":
        event = ", ".join(f"{k}={v}" for k, v in fields["event_fields"].items())
        print(f"<- seq {seq} ExecReport journal_seq={fields['journal_seq']} "
              f"request_id={fields['request_id']} {fields['event']} {{{event}}}")
    else:
        print(f"<- seq {seq} {name} {fields}")


def until_answer(session, request):
    """Prints frames until the QueryDone or Rejected answering `request`; returns the
    events of that answer (section 3)."""
    answer = []
    while True:
        frame = session.recv()
        if frame is None:
            raise ProtocolError("the server closed the connection")
        show(frame)
        _, msg_type, _, fields = frame
        if msg_type == LOGOUT_NOTICE:
            raise ProtocolError(f"logged out: {fields['reason']}")
        if msg_type == EXEC_REPORT and fields["request_id"] == request:
            answer.append((fields["event"], fields["event_fields"]))
            if fields["event"] in ("QueryDone", "Rejected"):
                return answer


def whole(value, step, what):
    units = value / step
    if units != units.to_integral_value():
        raise SystemExit(f"{what} {value} is not a multiple of {step}")
    return int(units)


def place_order(session, args, instruments):
    if args.symbol not in instruments:
        raise SystemExit(f"no instrument {args.symbol}")
    spec = instruments[args.symbol]
    ticks = whole(args.price, spec["tick_size"], "price")
    lots = whole(args.qty, spec["lot_size"], "quantity")

    # The order, then a fence: its answer comes after every report of the order.
    side = 0 if args.side == "buy" else 1
    order = new_order_body(args.account, spec["instrument"], args.client_order_id, side,
                           ticks, lots)
    print(f"-> NewOrder {args.side} {args.qty} {args.symbol} at {args.price} "
          f"({lots} lots at {ticks} ticks), client order id {args.client_order_id}")
    session.send(NEW_ORDER, order)
    fence = session.send(QUERY, query_depth(spec["instrument"], 0))
    until_answer(session, fence)


def pay(session, args, assets):
    """A transfer, sent twice with one client payment id (section 13): the first answer
    is Payment Created (or Rejected), the second Payment Duplicate with no balance
    change. Then the payment is read back by its client id."""
    if args.asset not in assets:
        raise SystemExit(f"no asset {args.asset}")
    asset = assets[args.asset]
    amount = whole(args.amount, Decimal(1).scaleb(-asset["scale"]), "amount")
    body = transfer_body(args.account, args.to, asset["asset"], amount, args.payment_id)
    for attempt in ("", " again (a retry)"):
        print(f"-> Transfer{attempt} of {args.amount} {args.asset} ({amount} minor units) "
              f"from account {args.account} to {args.to}, client payment id "
              f"{args.payment_id}")
        request = session.send(TRANSFER, body)
        fence = session.send(QUERY, query_depth(0, 0))
        for event, fields in until_answer_of(session, request, fence):
            if event == "Payment":
                print(f"   payment {fields['payment_id']}: {fields['action']}, "
                      f"{fields['kind']} {fields['status']}, {fields['captured']} of "
                      f"{fields['amount']} minor units reached account {fields['credit']}")
            elif event == "Rejected":
                print(f"   refused: {fields['reason']}")
    print(f"-> Payment query: account {args.account}, client payment id {args.payment_id}")
    until_answer(session, session.send(QUERY, query_payment_by_client_id(
        args.account, args.payment_id)))


def until_answer_of(session, request, fence):
    """The events reporting `request`, printing every frame up to the fence's answer."""
    events = []
    while True:
        frame = session.recv()
        if frame is None:
            raise ProtocolError("the server closed the connection")
        show(frame)
        _, msg_type, _, fields = frame
        if msg_type == LOGOUT_NOTICE:
            raise ProtocolError(f"logged out: {fields['reason']}")
        if msg_type == EXEC_REPORT and fields["request_id"] == request:
            events.append((fields["event"], fields["event_fields"]))
        if msg_type == EXEC_REPORT and fields["request_id"] == fence:
            return events


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=["order", "pay"], default="order")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7100)
    parser.add_argument("--user", default="alice")
    parser.add_argument("--secret", help="default: USER-secret (the demo's)")
    parser.add_argument("--account", type=int, default=2)
    parser.add_argument("--symbol", default="BTC-USD")
    parser.add_argument("--side", choices=["buy", "sell"], default="buy")
    parser.add_argument("--price", type=Decimal, default=Decimal("60000.00"))
    parser.add_argument("--qty", type=Decimal, default=Decimal("0.01"))
    parser.add_argument("--client-order-id", type=int,
                        default=int(time.time() * 1000) % (1 << 63))
    parser.add_argument("--to", type=int, default=3, help="pay: the credit account")
    parser.add_argument("--asset", default="USD", help="pay: the asset's symbol")
    parser.add_argument("--amount", type=Decimal, default=Decimal("250.00"))
    parser.add_argument("--payment-id", type=int,
                        default=int(time.time() * 1000) % (1 << 63),
                        help="pay: the client payment id (the idempotency key; not 0)")
    parser.add_argument("--heartbeat-ms", type=int, default=5000)
    parser.add_argument("--cancel-on-disconnect", action="store_true")
    args = parser.parse_args()
    secret = args.secret if args.secret is not None else f"{args.user}-secret"

    session = Session(args.host, args.port)
    session.send(LOGIN, login_body(args.user, secret, args.heartbeat_ms,
                                   args.cancel_on_disconnect))
    frame = session.recv()
    if frame is None:
        raise SystemExit("the server closed the connection")
    show(frame)
    if frame[1] != LOGIN_ACCEPTED:
        raise SystemExit(1)
    session.heartbeat = frame[3]["heartbeat_ms"] / 1000

    # Reference data: asset scales, tick and lot sizes (sections 3 and 6).
    request = session.send(QUERY, query_reference())
    assets, instruments = {}, {}
    for event, fields in until_answer(session, request):
        if event == "AssetInfo":
            assets[fields["symbol"]] = fields
        if event == "InstrumentInfo":
            instruments[fields["symbol"]] = fields

    if args.mode == "pay":
        pay(session, args, assets)
    else:
        place_order(session, args, instruments)

    print(f"-> Balances of account {args.account}")
    until_answer(session, session.send(QUERY, query_balances(args.account)))

    print("-> Logout")
    session.send(LOGOUT)
    while (frame := session.recv()) is not None:
        show(frame)
    print("connection closed")


if __name__ == "__main__":
    try:
        main()
    except (ProtocolError, OSError) as error:
        sys.exit(f"error: {error}")
