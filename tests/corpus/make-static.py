#!/usr/bin/env python3
"""Writes the static hostile messages of tests/corpus (small files). The big
and the OpenPGP ones are made by tests/server/hostile.rs at test time,
because they are large or must be encrypted to each test's own server key."""
import os

H = b"From: attacker@evil.example\nTo: config@nym.example\nSubject: x\n"
ARM = b"-----BEGIN PGP MESSAGE-----\n\n"
END = b"-----END PGP MESSAGE-----\n"
files = {}

def mime_nest(depth, leaf):
    out = b""
    for i in range(depth):
        out += b"Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n" % (i, i)
    out += b"Content-Type: text/plain\n\n" + leaf + b"\n"
    for i in reversed(range(depth)):
        out += b"--b%d--\n" % i
    return out

files["nul-in-headers.eml"] = b"From: a\x00b@evil.example\nTo: config@nym.example\nSub\x00ject: \x00\x00\n\nbody\n"
files["nul-in-body.eml"] = H + b"\n" + ARM + b"hQ\x00\x00EMA\n" + END
files["nul-only.eml"] = b"\x00" * 4096
files["invalid-utf8-headers.eml"] = b"From: \xff\xfe\xc3\x28@evil.example\nSubject: \xed\xa0\x80\xf8\x88\x80\x80\x80\n\n\xc0\xaf\n"
files["invalid-utf8-header-names.eml"] = b"\xff\xff: x\n\xc3\x28-Header: y\n\n" + ARM + b"\xff\n" + END
files["deep-mime-nesting.eml"] = H + mime_nest(2000, ARM + b"hQEMA\n" + END)
files["deep-rfc822-nesting.eml"] = H + (b"Content-Type: message/rfc822\n\n" + b"Subject: inner\n") * 1000 + b"\nend\n"
files["mime-no-boundary.eml"] = H + b"Content-Type: multipart/mixed\n\n--\n--\n" + ARM + END
files["mime-empty-boundary.eml"] = H + b"Content-Type: multipart/mixed; boundary=\"\"\n\n--\n\n--\n--\n--\n"
files["mime-boundary-everywhere.eml"] = H + b"Content-Type: multipart/mixed; boundary=\"-\"\n\n" + b"---\n" * 20000
files["mime-10k-parameters.eml"] = H + b"Content-Type: text/plain" + b"; a=b" * 10000 + b"\n\nx\n"
files["rfc2231-continuations.eml"] = H + b"Content-Type: text/plain" + b"".join(b";\n name*%d*=utf-8''%%41" % i for i in range(5000)) + b"\n\nx\n"
files["base64-garbage.eml"] = H + b"Content-Transfer-Encoding: base64\n\n" + b"!!!!====----****\n" * 2000
files["base64-armor-garbage.eml"] = H + b"Content-Transfer-Encoding: base64\n\nLS0tLS1CRUdJTiBQR1AgTUVTU0FHRS0tLS0t" + b"=" * 5000 + b"\n"
files["qp-soft-breaks.eml"] = H + b"Content-Transfer-Encoding: quoted-printable\n\n" + b"=\n" * 20000 + b"=ZZ=\n=3"
files["encoded-word-flood.eml"] = b"Subject: " + b"=?utf-8?b?" + b"w6k=" * 5000 + b"?= " + b"=?x-unknown?q?=FF?= " * 2000 + b"\nTo: config@nym.example\n\nx\n"
files["unknown-charset.eml"] = H + b"Content-Type: text/plain; charset=x-klingon-9000\n\n" + ARM + b"hQEMA\n" + END
files["armor-no-end.eml"] = H + b"\n" + ARM + b"hQEMA" * 1000 + b"\n"
files["armor-bad-base64.eml"] = H + b"\n" + ARM + b"!@#$%^&*()_+\n" * 100 + END
files["armor-bad-crc.eml"] = H + b"\n" + ARM + b"hQEMAwAAAAAAAAAAAQf/\n=AAAA\n" + END
files["armor-empty.eml"] = H + b"\n" + ARM + END
files["armor-nested-begins.eml"] = H + b"\n" + ARM * 500 + END * 500
files["armor-long-header.eml"] = H + b"\n-----BEGIN PGP MESSAGE-----\nVersion: " + b"A" * 200000 + b"\n\nhQEMA\n" + END
files["armor-only-crc.eml"] = H + b"\n" + ARM + b"=\n=\n====\n" + END
files["armor-in-html.eml"] = H + b"Content-Type: text/html\n\n<html><pre>" + ARM + b"hQ<b>EMA</b>\n" + END + b"</pre></html>\n"
files["pgp-mime-broken.eml"] = H + b"Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"x\"\n\n--x\nContent-Type: application/pgp-encrypted\n\nVersion: 99\n--x--\n"
files["public-key-block-only.eml"] = H + b"\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ\n-----END PGP PUBLIC KEY BLOCK-----\n"
files["headers-only.eml"] = H
files["no-headers.eml"] = ARM + b"hQEMA\n" + END
files["empty.eml"] = b""
files["whitespace-only.eml"] = b" \n\t\n\r\n"
files["mbox-from-line-only.eml"] = b"From attacker Mon Jan  1 00:00:00 2024"
files["crlf-everywhere.eml"] = H.replace(b"\n", b"\r\n") + b"\r\n" + ARM.replace(b"\n", b"\r\n") + b"hQEMA\r\n" + END.replace(b"\n", b"\r\n")
files["bare-cr.eml"] = H.replace(b"\n", b"\r") + b"\r" + ARM.replace(b"\n", b"\r") + END.replace(b"\n", b"\r")
files["fold-flood.eml"] = b"Subject: a\n" + b" b\n" * 20000 + b"To: config@nym.example\n\nx\n"
files["long-header-name.eml"] = b"X" * 100000 + b": y\n\nx\n"
files["header-without-colon-flood.eml"] = b"no colon here\n" * 20000 + b"\nbody\n"
files["uuencoded.eml"] = H + b"\nbegin 644 key.asc\nM+2TM+2U\"14=)3B!01U`@345\n`\nend\n"
files["send-junk.eml"] = b"To: send@nym.example\nSubject: not encrypted\n\nTo: victim@example.org\n\nspam\n"
files["url-junk.eml"] = b"To: url@nym.example\n\nsource: http://127.0.0.1/\n"
files["control-chars.eml"] = H + bytes(range(0, 32)) * 100 + b"\n\n" + bytes(range(128, 256)) * 10 + b"\n"
files["mail-with-nuls-to-nym.eml"] = b"From: x@y\nSubject: \x00\xff\n\n\x00\x01\x02 body\n"
files["invalid-utf8-to-nym.eml"] = b"From: \xff@y\nSubject: \xc3\x28\n\n\xed\xa0\x80\n"
files["deep-mime-to-nym.eml"] = b"From: x@y\n" + mime_nest(2000, b"hi")

for name, data in files.items():
    with open(name, "wb") as f:
        f.write(data)
