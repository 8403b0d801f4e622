#!/bin/sh
# nymgate: configure Postfix for nym domains, idempotently.
#
#   sh /usr/share/doc/nymgate/examples/postfix/setup.sh [-o OPERATOR] DOMAIN...
#   postfix check && postfix reload
#
# Every line below is a `postconf -e` (main.cf) or `postconf -M` (master.cf)
# that sets one parameter or service to a complete value, so running this
# again with the same arguments changes nothing. A main.cf parameter that
# already has a different value on this host (another relay domain, your
# own transport map) is NOT replaced: the script says what to add and exits
# 1 after doing the rest. Run it again with every nym domain when you add
# one. OPERATOR (default root, that is root's alias in /etc/aliases) gets
# the mail for postmaster@ and abuse@ of the nym domains.
#
# The same lines by hand, for one domain, are in operators.md.
set -eu

NYMGATE=/usr/sbin/nymgate
CONFIG=/etc/nymgate/nymgate.toml
TABLE=/var/lib/nymgate-mta/recipients # [mta] recipient_table in nymgate.toml

usage() {
    echo "usage: $0 [-o OPERATOR] DOMAIN..." >&2
    exit 2
}
operator=root
while getopts o: opt; do
    case $opt in
    o) operator=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage

conflicts=0
# set_param NAME VALUE: set NAME in main.cf unless it holds another value.
set_param() {
    cur=$(postconf -nh "$1" 2>/dev/null || true)
    if [ -z "$cur" ] || [ "$cur" = "$2" ]; then
        postconf -e "$1 = $2"
    else
        echo "setup.sh: $1 is already set here to: $cur" >&2
        echo "setup.sh:   not replaced; add this to it: $2" >&2
        conflicts=1
    fi
}

domains=$(echo "$*" | sed 's/ /, /g')
transports=
aliases=
cookie_domains=
for d in "$@"; do
    transports="$transports${transports:+, }$d=nymgate:"
    aliases="$aliases${aliases:+, }postmaster@$d=$operator, abuse@$d=$operator"
    cookie_domains="$cookie_domains${cookie_domains:+|}$(echo "$d" | sed 's/\./\\./g')"
done

# Accept mail for the nym domains from anywhere: relay_domains is the
# address class for "domains this host accepts and hands to another
# delivery system" (Mailman uses it the same way).
set_param relay_domains "$domains"

# Refuse unknown nyms at RCPT time, before the message is accepted
# ("550 5.1.1 <x@...>: Recipient address rejected: User unknown in relay
# recipient table"), instead of accepting it and bouncing it afterwards to
# a sender that is usually forged (backscatter). nymgate rewrites the table
# on every nym creation, deletion and expiry; it lists every nym, config@,
# send@, url@, postmaster@ and abuse@. texthash: needs no postmap. Postfix
# reads it when a process starts (as root, before dropping privileges) and
# never again, so nymgate-recipients.path runs `postfix reload` whenever
# nymgate replaces it.
#
# confirm+COOKIE@ (a holder confirming a reply block; the cookie is 32 hex
# digits): with recipient_delimiter = + the table's confirm@ line covers it.
# The regexp map after the table lets it through where the delimiter is
# another character or empty, since a texthash table holds no patterns and
# nymgate keeps the cookies only as hashes. Inline regexp needs Postfix 3.7.
set_param relay_recipient_maps "texthash:$TABLE, regexp:{ {/^confirm\+[0-9a-f]{32}@($cookie_domains)\$\$/ OK} }"

# "alice+tag@" is looked up, and delivered, as alice@. Debian's main.cf
# already sets "+".
cur=$(postconf -nh recipient_delimiter 2>/dev/null || true)
case $cur in
'') postconf -e 'recipient_delimiter = +' ;;
*+*) ;;
*)
    echo "setup.sh: recipient_delimiter is '$cur' here; add + to it for alice+tag@ addresses" >&2
    conflicts=1
    ;;
esac

# The whole nym domain goes to the nymgate pipe service below.
set_param transport_maps "inline:{ $transports }"

# postmaster@ (RFC 5321 requires it) and abuse@ (every article names it in
# mail-complaints-to) reach a person directly. They are in the recipient
# table too, and nymgate forwards them to its [operator] address should
# mail for them ever reach it.
set_param virtual_alias_maps "inline:{ $aliases }"

# One recipient per nymgate run: nymgate takes exactly one --recipient, and
# each recipient then gets its own exit status (a deferral retries only that
# recipient). With this limit the per-destination concurrency limit counts
# per recipient, so master.cf's maxproc (2, below) is what caps parallel
# nymgate runs.
postconf -e 'nymgate_destination_recipient_limit = 1'
# Not set on purpose: nymgate_time_limit. Its default (command_time_limit,
# 1000s) is far above what one run may take: [limits] busy_timeout waiting
# for the database plus [delivery] transport_timeout for an immediate
# hand-off. Do not lower it below their sum: a run killed after it
# committed would be delivered a second time.

# The pipe(8) service. Columns: service type private unpriv chroot wakeup
# maxproc command.
#  - unpriv n: pipe(8) must start as root to switch to user=; it never runs
#    the command as root. chroot n: nymgate needs /var/lib/nymgate,
#    /etc/nymgate, inews and sendmail.
#  - maxproc 2: at most two nymgate processes for all nym domains. Every
#    delivery writes to one SQLite file and writers take turns; a process
#    that waits longer than [limits] busy_timeout exits 75 and Postfix
#    retries. The OpenPGP work is CPU-bound: keep it near the core count.
#  - flags=RX: R adds Return-Path: so that a nym sees the envelope sender
#    (nymgate removes it from what nyms send); X marks nymgate as the final
#    delivery agent (DSNs say "delivered"). Not F (a "From " line is no
#    header), not . or > (they alter the body; armored OpenPGP must arrive
#    byte for byte), not q (no shell), not h/u (nymgate folds case itself),
#    not D/O (nymgate never re-injects mail).
#  - size=700000: the article carrying a mail is signed, encrypted and
#    armored (about 4/3 of the input) and INN refuses local posts above
#    localmaxartsize (1000000 by default); Postfix bounces bigger mail with
#    a clear reason before nymgate starts. Keep [limits] max_message_size
#    at least this.
#  - user=nymgate: owns /var/lib/nymgate and nothing else.
#  - argv=: no shell; every word is one argument; "--opt=value" keeps an
#    address starting with "-" from being read as an option. A null sender
#    arrives as MAILER-DAEMON.
# Exit codes (sysexits.h): 0 delivered or deliberately dropped; 65 and 67
# bounce; 75 defers. nymgate's first line on stderr starts with an RFC 3463
# enhanced status code ("5.1.1 no such nym; check the address"), which
# pipe(8) uses for the DSN and the dsn= field of its log line.
postconf -M nymgate/unix="nymgate unix - n n - 2 pipe flags=RX size=700000 user=nymgate argv=$NYMGATE --config $CONFIG deliver --recipient=\${recipient} --sender=\${sender}"

if [ "$conflicts" != 0 ]; then
    echo "setup.sh: done, except for the parameters above; then: postfix check && postfix reload" >&2
    exit 1
fi
echo "setup.sh: done; now: postfix check && postfix reload"
