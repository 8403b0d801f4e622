#!/usr/bin/env python3
"""Small protocol helpers for tests/e2e/run (SMTP, NNTP, SQLite, TOML, syslog,
a stand-in for a systemd path unit).

Each subcommand does one thing and reports by exit status, so the bash
script stays readable. Only the standard library is used: the e2e suite runs
on a fresh Debian 12 host with python3 and nothing else.
"""
import argparse
import hashlib
import os
import signal
import socket
import sqlite3
import sys
import time
import tomllib
import warnings

with warnings.catch_warnings():
    # nntplib is deprecated (removed in 3.13) but present in Debian 12's 3.11.
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib


def die(msg):
    print(f"helper: {msg}", file=sys.stderr)
    sys.exit(1)


# --- SMTP ---------------------------------------------------------------

class SMTPDialogue:
    """A plain SMTP client that keeps a transcript ("C: ..." / "S: ...")."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=60)
        self.rfile = self.sock.makefile("rb")
        self.log = []

    def reply(self):
        lines = []
        while True:
            raw = self.rfile.readline()
            if not raw:
                die("connection closed by the server")
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.log.append("S: " + text)
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                break
        return int(lines[-1][:3]), "\n".join(l[4:] for l in lines)

    def cmd(self, line, shown=None):
        self.log.append("C: " + (shown or line))
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def data(self, message):
        body = message.replace(b"\r\n", b"\n").split(b"\n")
        if body and body[-1] == b"":
            body.pop()
        out = b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in body)
        self.log.append(f"C: ({len(message)} bytes of message)")
        self.log.append("C: .")
        self.sock.sendall(out + b".\r\n")
        return self.reply()


def cmd_smtp(a):
    """Send the message file to every --to; print the server's reply to DATA.

    The reply carries the queue id ("250 2.0.0 Ok: queued as 4XyZ..."),
    which the caller uses to find this message in the MTA's log. A refused
    RCPT fails the command unless --allow-refused; with it, the refused
    recipients are skipped (and DATA is not sent when none is left).
    --transcript FILE writes the whole dialogue.
    """
    with open(a.message, "rb") as f:
        data = f.read()
    s = SMTPDialogue(a.host, a.port)
    failed = None
    try:
        code, _ = s.reply()
        if code != 220:
            failed = f"greeting: {code}"
            return
        code, _ = s.cmd("EHLO client.e2e.test")
        code, msg = s.cmd(f"MAIL FROM:<{a.sender}>")
        if code != 250:
            failed = f"MAIL FROM refused: {code} {msg}"
            return
        accepted = 0
        for r in a.rcpt:
            code, msg = s.cmd(f"RCPT TO:<{r}>")
            if code in (250, 251):
                accepted += 1
            elif not a.allow_refused:
                failed = f"RCPT TO:<{r}> refused: {code} {msg}"
                return
        if accepted == 0:
            return
        code, msg = s.cmd("DATA")
        if code != 354:
            failed = f"DATA refused: {code} {msg}"
            return
        code, msg = s.data(data)
        if code != 250:
            failed = f"message refused: {code} {msg}"
            return
        print(msg)
    finally:
        try:
            s.cmd("QUIT")
        except (OSError, SystemExit):
            pass
        if a.transcript:
            with open(a.transcript, "w") as f:
                f.write("\n".join(s.log) + "\n")
        if failed:
            die(failed)


# --- NNTP ---------------------------------------------------------------

def hsub_matches(subject, passphrase):
    """PROTOCOL section 4: iv = first 16 hex chars; recompute and compare."""
    subject = subject.strip().lower()
    if len(subject) < 48 or len(subject) % 2:
        return False
    try:
        iv = bytes.fromhex(subject[:16])
        bytes.fromhex(subject)
    except ValueError:
        return False
    digest = hashlib.sha256(iv + passphrase.encode()).digest()
    return (iv + digest).hex()[: len(subject)] == subject


def cmd_nntp_high(a):
    """Print the group's current high article number (0 if empty)."""
    with nntplib.NNTP(a.host, a.port, timeout=30, readermode=True) as n:
        _, count, first, last, _ = n.group(a.group)
        print(last if count else 0)


def cmd_nntp_find(a):
    """Poll the group for articles after --after whose Subject is an hSub of
    --hsub; write each one's body to DIR/<number>.asc and print the numbers.
    Waits until at least --min match or --timeout seconds pass."""
    deadline = time.time() + a.timeout
    os.makedirs(a.outdir, exist_ok=True)
    found = []
    while True:
        found = []
        with nntplib.NNTP(a.host, a.port, timeout=30, readermode=True) as n:
            _, count, first, last, _ = n.group(a.group)
            if count and last > a.after:
                _, overviews = n.over((max(a.after + 1, first), last))
                for num, over in overviews:
                    subject = nntplib.decode_header(over.get("subject", ""))
                    if hsub_matches(subject, a.hsub):
                        _, info = n.body(num)
                        body = b"\n".join(info.lines) + b"\n"
                        with open(os.path.join(a.outdir, f"{num}.asc"), "wb") as f:
                            f.write(body)
                        found.append(num)
        if len(found) >= a.min or time.time() >= deadline:
            break
        time.sleep(1)
    for num in found:
        print(num)
    if len(found) < a.min:
        die(f"found {len(found)} article(s) with that hSub after #{a.after}, wanted {a.min}")


# --- SQLite -------------------------------------------------------------

def cmd_holdlock(a):
    """Hold an exclusive lock on the database until stdin reaches EOF.

    Prints "locked" once the lock is held, so the caller can wait for it.
    Must run as the database's owner (the caller uses runuser): opening the
    file as root could create root-owned -wal/-shm files next to it.
    """
    con = sqlite3.connect(a.db, timeout=30, isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    sys.stdin.read()
    con.execute("ROLLBACK")
    con.close()


# --- TOML ---------------------------------------------------------------

def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def toml_dump(doc):
    """Enough TOML for a config file: scalars, arrays, one level of tables."""
    out = []
    for k, v in doc.items():
        if not isinstance(v, dict):
            out.append(f"{k} = {toml_value(v)}")
    for k, v in doc.items():
        if isinstance(v, dict):
            out.append(f"\n[{k}]")
            for k2, v2 in v.items():
                if isinstance(v2, dict):
                    raise TypeError("nested tables are not supported")
                out.append(f"{k2} = {toml_value(v2)}")
    return "\n".join(out) + "\n"


def cmd_toml_set(a):
    """Set keys like news.transport='"inews"' (values are TOML literals) in
    place. Comments are lost; the file is only a test fixture."""
    with open(a.file, "rb") as f:
        doc = tomllib.load(f)
    for item in a.settings:
        key, _, literal = item.partition("=")
        value = tomllib.loads(f"v = {literal}")["v"]
        *tables, last = key.strip().split(".")
        node = doc
        for t in tables:
            node = node.setdefault(t, {})
        node[last] = value
    text = toml_dump(doc)
    tomllib.loads(text)  # what we write must read back
    with open(a.file, "w") as f:
        f.write(text)


# --- syslog -------------------------------------------------------------

def cmd_syslog(a):
    """A minimal syslog daemon on /dev/log, for hosts without one (CI
    containers): Postfix logs to its own file here, but INN's news.notice
    and nymgate log through syslog, and their lines are what explain a
    failure. Writes one line per message to --out until killed."""
    path = a.socket
    if os.path.exists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            probe.connect(path)
            die(f"{path} already has a listener; not replacing it")
        except OSError:
            os.unlink(path)  # stale socket left by a killed run
        finally:
            probe.close()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o666)

    def stop(*_):
        try:
            os.unlink(path)
        finally:
            sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with open(a.out, "ab", buffering=0) as out:
        print("ready", flush=True)
        while True:
            data = s.recv(65536)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S ").encode()
            out.write(stamp + data.rstrip(b"\0\n") + b"\n")


# --- path unit --------------------------------------------------------------

def cmd_watch(a):
    """What a systemd .path unit with PathChanged= does, for hosts without
    systemd: whenever FILE is replaced or rewritten, run the command (the
    triggered service's ExecCondition= and ExecStart=, given as one shell
    line). Prints "ready" at start and one line per run."""

    def state():
        try:
            st = os.stat(a.file)
            return (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            return None

    last = state()
    print("ready", flush=True)
    while True:
        time.sleep(a.interval)
        now = state()
        if now != last:
            last = now
            rc = os.system(a.command + " >/dev/null 2>&1")
            print(f"{time.strftime('%H:%M:%S')} changed; ran: {a.command}: exit {rc >> 8}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("smtp")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=25)
    s.add_argument("--from", dest="sender", required=True)
    s.add_argument("--to", dest="rcpt", action="append", required=True)
    s.add_argument("--transcript")
    s.add_argument("--allow-refused", action="store_true")
    s.add_argument("message")
    s.set_defaults(fn=cmd_smtp)

    s = sub.add_parser("nntp-high")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=119)
    s.add_argument("--group", default="alt.anonymous.messages")
    s.set_defaults(fn=cmd_nntp_high)

    s = sub.add_parser("nntp-find")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=119)
    s.add_argument("--group", default="alt.anonymous.messages")
    s.add_argument("--after", type=int, default=0)
    s.add_argument("--hsub", required=True)
    s.add_argument("--min", type=int, default=1)
    s.add_argument("--timeout", type=float, default=60)
    s.add_argument("outdir")
    s.set_defaults(fn=cmd_nntp_find)

    s = sub.add_parser("watch")
    s.add_argument("--interval", type=float, default=0.2)
    s.add_argument("file")
    s.add_argument("command")
    s.set_defaults(fn=cmd_watch)

    s = sub.add_parser("holdlock")
    s.add_argument("db")
    s.set_defaults(fn=cmd_holdlock)

    s = sub.add_parser("toml-set")
    s.add_argument("file")
    s.add_argument("settings", nargs="+")
    s.set_defaults(fn=cmd_toml_set)

    s = sub.add_parser("syslog")
    s.add_argument("--socket", default="/dev/log")
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_syslog)

    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
