# The nym.alias.net half through real Postfix and Exim (REPLY-BLOCKS.md
# sections 1, 4-6, 11, 12 and 13 "Real Postfix"). Sourced by tests/e2e/run,
# which defines the helpers used here (step, ok, fail, wait_for, count, ng,
# helper, make_nym, nym_gpg, mail_file, smtp, transcript, rand, the paths and
# users). Kept apart so that the run stays readable and the parts of issue 13
# can be merged one by one.
#
# What is checked: a reply-block nym whose block runs through two Type I hops
# (remailer@r1, remailer@r2, both hosted by the same nymgate, one key) to a
# local mailbox, each hop a Postfix pipe delivery and a sendmail
# re-injection; the cookie read from the peeled notice and confirmed through
# Postfix, and later (a new block) through Exim; a Latent-Time item waiting
# in the outbox until the flush unit hands it off once; confirm+COOKIE@ with
# and without recipient_delimiter; the autoresponders and their loop guards;
# the nym.alias.net exit codes as Postfix and Exim bounces; refusals at RCPT
# time.

R1=r1.example.org
R2=r2.example.org
# Every domain this nymgate hosts from step 4e on (setup.sh takes them all).
NYMALIAS_DOMAINS="$DOMAIN $R1 $R2"
BOX=$RCPT_USER@mx.e2e.test # the end of the chain: a local mailbox

# mbox_with FILE MARKER: every message of an mbox that contains MARKER.
mbox_with() {
    awk -v m="$2" '/^From / { if (msg ~ m) printf "%s", msg; msg = "" } { msg = msg $0 "\n" }
                   END { if (msg ~ m) printf "%s", msg }' "$1"
}
# mbox_count FILE MARKER: how many messages of an mbox contain MARKER.
mbox_count() {
    awk -v m="$2" '/^From / { if (msg ~ m) n++; msg = "" } { msg = msg $0 "\n" }
                   END { if (msg ~ m) n++; print n + 0 }' "$1"
}

# mbox_nth FILE MARKER N: the Nth message of an mbox that contains MARKER.
mbox_nth() {
    awk -v m="$2" -v want="$3" 'function out() { if (msg ~ m && ++n == want) printf "%s", msg }
                   /^From / { out(); msg = "" } { msg = msg $0 "\n" } END { out() }' "$1"
}

# first_armor: the first armored PGP MESSAGE on stdin.
first_armor() {
    awk '/^-----BEGIN PGP MESSAGE-----/ { p = 1 } p { print } /^-----END PGP MESSAGE-----/ && p { exit }'
}

# chain_onion TAG: the reply block of REPLY-BLOCKS.md section 13, built
# inside out with quill's gpg: nymgate's local run sends it to remailer@R1,
# R1 opens its layer and sends to remailer@R2 under Encrypt-Key K1, R2 opens
# its layer and sends to the mailbox under Encrypt-Key K2 with Subject TAG.
chain_onion() {
    local p2 p1
    p2=$(printf '::\nAnon-To: %s\nEncrypt-Key: %s\n\n##\nSubject: %s\n\n' "$BOX" "$K2" "$1" |
        nym_gpg quill --armor --encrypt --recipient "remailer@$R2")
    p1=$(printf '::\nAnon-To: remailer@%s\nEncrypt-Key: %s\n\n::\nEncrypted: PGP\n\n%s\n**\n' "$R2" "$K1" "$p2" |
        nym_gpg quill --armor --encrypt --recipient "remailer@$R1")
    printf '::\nAnon-To: remailer@%s\n\n::\nEncrypted: PGP\n\n%s\n**\n' "$R1" "$p1"
}

# chain_open MBOX-MESSAGE-FILE OUT: what the holder does with a copy that
# reached the mailbox: peel K2, then K1 (gpg --passphrase), then decrypt with
# the nym key into OUT; the server's signature must be good.
chain_open() {
    local k layer=$1
    for k in "$K2" "$K1"; do
        first_armor <"$layer" | nym_gpg quill --pinentry-mode loopback --passphrase "$k" --decrypt \
            >"$layer.$k" 2>"$layer.err" || fail "Encrypt-Key layer $k does not open: $(tail -n 3 "$layer.err")"
        layer=$layer.$k
    done
    first_armor <"$layer" | nym_gpg quill --status-fd 3 --decrypt 3>"$2.status" >"$2" 2>"$2.err" ||
        fail "quill cannot decrypt the peeled copy: $(tail -n 3 "$2.err")"
    grep -Eq "^\[GNUPG:\] VALIDSIG .* $SERVER_FPR\$" "$2.status" || fail "the peeled copy is not signed by the server"
}

# wait_copies TAG N: wait until N messages with Subject TAG are in the
# mailbox at the end of the chain; fail if there are more.
wait_copies() {
    local _
    for _ in $(seq 120); do
        [ "$(mbox_count "/var/mail/$RCPT_USER" "Subject: $1")" -ge "$2" ] && break
        sleep 0.5
    done
    [ "$(mbox_count "/var/mail/$RCPT_USER" "Subject: $1")" = "$2" ] ||
        fail "$(mbox_count "/var/mail/$RCPT_USER" "Subject: $1") copies with Subject $1 in the mailbox, wanted $2"
}

# quill_has REGEX: a line of `nymgate nym show quill@` matches. The output
# is read whole first: a `grep -q` on the pipe may exit before nymgate has
# written its last line, and nymgate's broken pipe would fail the pipeline
# (pipefail).
quill_has() {
    ng nym show "quill@$DOMAIN" >"$STATE/quill.now" || fail "nymgate nym show quill@$DOMAIN failed"
    grep -q -- "$1" "$STATE/quill.now"
}

# log_since N: the Postfix log from line N on.
log_since() { tail -n "+$1" "$POSTFIX_LOG"; }

# chain_hops N: from Postfix log line N on, show one message's way through
# the chain (config@ or the nym first): each hop a nymgate pipe delivery
# (status=sent) of a message that sendmail had re-injected (pickup), then one
# local delivery to the mailbox.
chain_hops() {
    local from=$1 hop qid line n
    for hop in "remailer@$R1" "remailer@$R2" "$BOX"; do
        n=$(log_since "$from" | grep -cE ": to=<$hop>, .*status=sent" || true)
        [ "$n" = 1 ] || fail "$n deliveries to <$hop> in the Postfix log, wanted 1"
        line=$(log_since "$from" | grep -E ": to=<$hop>, .*status=sent")
        qid=$(sed -E 's/.*: ([0-9A-Za-z]+): to=.*/\1/' <<<"$line")
        log_since "$from" | grep -Eq "postfix/pickup\[[0-9]+\]: $qid: uid=[0-9]+ from=<nobody@($DOMAIN|$R1|$R2)>" ||
            fail "<$hop> ($qid) was not re-injected by a hop's sendmail: $(log_since "$from" | grep -E " $qid: " | head -n 3)"
        case $hop in
        remailer@*) grep -q 'relay=nymgate, .*status=sent' <<<"$line" || fail "<$hop> not piped to nymgate: $line" ;;
        *) grep -q 'relay=local, .*status=sent (delivered to mailbox)' <<<"$line" || fail "<$hop> not a local delivery: $line" ;;
        esac
        log_since "$from" | grep -E "postfix/pickup\[[0-9]+\]: $qid: " | sed -E 's/^.*(postfix\/)/\1/' | indent
        sed -E 's/^.*(postfix\/)/\1/' <<<"$line" | indent
    done
}

# signed_config NAME TEXT-FILE MAIL-FILE: the Config: request in TEXT-FILE,
# signed by the nym's key and encrypted to config@, as a mail from the
# outsider (REPLY-BLOCKS.md section 4; docs/reply-blocks.md gives the same
# gpg command to holders).
signed_config() {
    nym_gpg "$1" --armor --sign --encrypt --recipient "config@$DOMAIN" --local-user "$1@$DOMAIN" \
        --output "$3.asc" "$2"
    mail_file "$3" "$OUTSIDER@localhost" "config@$DOMAIN" "nym request" "$3.asc"
}

# postfix_log_of QID RCPT: the Postfix log line of QID's delivery to RCPT,
# from relay= on.
postfix_log_of() {
    grep -E "$1: to=<$2>, " "$POSTFIX_LOG" | tail -n 1 | sed -E 's/.*(relay=.*)/\1/'
}

# postfix_reload: reload and wait until master logged it, so that the next
# SMTP connection gets an smtpd with the new main.cf.
postfix_reload() {
    local n
    n=$(count "$POSTFIX_LOG" 'postfix/master.*reload')
    postfix reload >/dev/null 2>&1 || fail "postfix reload"
    for _ in $(seq 40); do
        [ "$(count "$POSTFIX_LOG" 'postfix/master.*reload')" -gt "$n" ] && { sleep 1; return 0; }
        sleep 0.5
    done
    fail "Postfix did not log the reload"
}

# confirm_unknown LABEL: mail to confirm+<random cookie>@ through Postfix is
# accepted at RCPT, piped to nymgate (status=sent: exit 0, REPLY-BLOCKS.md
# 6.3, an unknown cookie is a silent 0) and changes nothing.
confirm_unknown() {
    local cookie rcpt qid before
    before=$(ng nym show "quill@$DOMAIN" | grep '^blocks:')
    cookie=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    rcpt="confirm+$cookie@$DOMAIN"
    mail_file "$STATE/confirm-$1.eml" "$OUTSIDER@localhost" "$rcpt" "ok" "$STATE/unknown.txt"
    qid=$(smtp 25 "$OUTSIDER@localhost" "$rcpt" "$STATE/confirm-$1.eml" --transcript "$STATE/confirm-$1.smtp")
    [ -n "$qid" ] || fail "Postfix refused $rcpt ($1): $(cat "$STATE/confirm-$1.smtp")"
    wait_for "$POSTFIX_LOG" "$qid: to=<confirm\+$cookie@$DOMAIN>, relay=nymgate,.* status=sent" 60
    [ "$(ng nym show "quill@$DOMAIN" | grep '^blocks:')" = "$before" ] ||
        fail "an unknown cookie changed quill's blocks: $before, now $(ng nym show "quill@$DOMAIN" | grep '^blocks:')"
    ok "confirm+<unknown cookie> $1: $(postfix_log_of "$qid" "confirm\+$cookie@$DOMAIN")"
}

nymalias_postfix() {
    step "4e. one nymgate for $DOMAIN, $R1 and $R2 (one key); the remailer on, max_latency = 120"
    # The hops of quill's reply block are Type I remailers hosted by this
    # same nymgate (REPLY-BLOCKS.md section 13 "Real Postfix"): their layers
    # are encrypted to remailer@R1 and remailer@R2, User IDs of the one
    # server key. Not a middleman: the last hop exits to a local mailbox.
    local reloads qid mark x p
    helper toml-set "$NYMGATE_CONFIG" "domains=[\"$DOMAIN\", \"$R1\", \"$R2\"]" \
        'remailer.enabled=true' 'remailer.middleman=false' 'remailer.max_latency=120'
    ng key add-domain "$R1" | indent
    ng key add-domain "$R2" | indent
    ng key export >"$STATE/server3.asc"
    gpg --batch --with-colons --show-keys "$STATE/server3.asc" 2>/dev/null | grep -q "^uid:.*<remailer@$R2>" ||
        fail "the server key has no User ID remailer@$R2"
    # The flush rewrites the stale recipient table (remailer@ of each domain).
    reloads=$(count "$STATE/recipients-path.log" 'exit 0$')
    ng flush >/dev/null
    for x in "remailer@$DOMAIN" "remailer@$R1" "remailer@$R2" "confirm@$R2"; do
        grep -qx "$x $x" "$TABLE" || fail "$x is not in $TABLE"
    done
    wait_reload $((reloads + 1))
    for p in relay_domains relay_recipient_maps transport_maps virtual_alias_maps; do postconf -X "$p"; done
    # shellcheck disable=SC2086 # one word per domain
    sh "$EXAMPLES/postfix/setup.sh" -o "$OPERATOR@localhost" $NYMALIAS_DOMAINS >/dev/null 2>&1 || fail "setup.sh with three domains"
    postfix_reload
    postconf -h relay_domains | sed 's/^/relay_domains = /' | indent
    ok "key User IDs for $R1 and $R2; remailer@ of the three domains in the table; setup.sh with the three"

    step "4e.1 a Latent-Time: +0:01 message to remailer@$R2 waits in nymgate's outbox (handed off in 4e.4)"
    # Sent first so that its minute of waiting overlaps the chain below.
    make_nym quill
    nym_gpg quill --import "$STATE/server3.asc"
    K1=k1-$(rand)
    K2=k2-$(rand)
    LATENT=latent-$(rand)
    printf '::\nAnon-To: %s\nLatent-Time: +0:01\n\n##\nSubject: %s\n\nHeld for a minute: %s\n' "$BOX" "$LATENT" "$LATENT" |
        nym_gpg quill --armor --encrypt --recipient "remailer@$R2" --output "$STATE/latent.asc"
    printf '::\nEncrypted: PGP\n\n' | cat - "$STATE/latent.asc" >"$STATE/latent.txt"
    mail_file "$STATE/latent.eml" "$OUTSIDER@localhost" "remailer@$R2" "anything" "$STATE/latent.txt"
    qid=$(smtp 25 "$OUTSIDER@localhost" "remailer@$R2" "$STATE/latent.eml")
    LATENT_T0=$(date +%s)
    wait_for "$POSTFIX_LOG" "$qid: to=<remailer@$R2>, relay=nymgate,.* status=sent" 60
    ng queue list >"$STATE/latent.queue"
    LATENT_ID=$(awk -F'\t' '$2 == "mail" && $4 + 0 > 0 { print $1 }' "$STATE/latent.queue")
    [ "$(wc -w <<<"$LATENT_ID")" = 1 ] || fail "not one mail item waiting in the outbox: $(cat "$STATE/latent.queue")"
    ok "remailer@$R2: $(postfix_log_of "$qid" "remailer@$R2"); waiting in nymgate queue list:"
    indent <"$STATE/latent.queue"

    step "4e.2 quill creates a reply-block nym (Config:, Reply-Block: via $R1 and $R2) through Postfix; the notice travels the chain"
    TAG1=tag-$(rand)
    chain_onion "$TAG1" >"$STATE/quill.block"
    {
        cat <<EOF
Config:
From: quill
Nym-Commands: create? +acksend +nobcc name="Quill Pen"
Public-Key:
$(nym_gpg quill --armor --export "quill@$DOMAIN")
Reply-Block:
EOF
        cat "$STATE/quill.block"
    } >"$STATE/quill-create.txt"
    signed_config quill "$STATE/quill-create.txt" "$STATE/quill-create.eml"
    reloads=$(count "$STATE/recipients-path.log" 'exit 0$')
    mark=$(($(wc -l <"$POSTFIX_LOG") + 1))
    qid=$(smtp 25 "$OUTSIDER@localhost" "config@$DOMAIN" "$STATE/quill-create.eml")
    wait_for "$POSTFIX_LOG" "$qid: to=<config@$DOMAIN>, relay=nymgate,.* status=sent" 60
    ng nym show "quill@$DOMAIN" >"$STATE/quill.show" || fail "no nym quill after the Config: request"
    grep -q '^blocks: *0 active, 1 pending$' "$STATE/quill.show" || fail "quill has no pending set: $(cat "$STATE/quill.show")"
    grep -q '^flags: .*+acksend .*+nobcc' "$STATE/quill.show" || fail "quill's flags: $(cat "$STATE/quill.show")"
    grep -qx "quill@$DOMAIN quill@$DOMAIN" "$TABLE" || fail "quill is not in $TABLE"
    wait_reload $((reloads + 1))
    ok "config@: $(postfix_log_of "$qid" "config@$DOMAIN")"
    grep -E '^(flags|blocks):' "$STATE/quill.show" | indent
    wait_for "/var/mail/$RCPT_USER" "^Subject: $TAG1" 60
    ok "the notice's way, in Postfix's log:"
    chain_hops "$mark"
    mbox_nth "/var/mail/$RCPT_USER" "Subject: $TAG1" 1 >"$STATE/quill-notice.mbox"
    chain_open "$STATE/quill-notice.mbox" "$STATE/quill-notice.txt"
    COOKIE=$(grep -m1 -oE "confirm\+[0-9a-f]{32}@$DOMAIN" "$STATE/quill-notice.txt" | sed -E 's/^confirm\+([0-9a-f]+)@.*/\1/')
    [ -n "$COOKIE" ] || fail "no confirm+COOKIE@ in the notice: $(head -n 20 "$STATE/quill-notice.txt")"
    ok "the mailbox copy peels with $K2, $K1 and quill's key (signed by the server): $(grep -m1 -E '^Reply-To:' "$STATE/quill-notice.txt")"

    step "4e.3 quill confirms by mail to confirm+COOKIE@ through Postfix; mail to quill then arrives through the chain"
    mail_file "$STATE/confirm-quill.eml" "$OUTSIDER@localhost" "confirm+$COOKIE@$DOMAIN" "ok" "$STATE/unknown.txt"
    qid=$(smtp 25 "$OUTSIDER@localhost" "confirm+$COOKIE@$DOMAIN" "$STATE/confirm-quill.eml")
    wait_for "$POSTFIX_LOG" "$qid: to=<confirm\+$COOKIE@$DOMAIN>, relay=nymgate,.* status=sent" 60
    quill_has '^blocks: *1 active, 0 pending$' ||
        fail "the cookie did not activate the set: $(ng nym show "quill@$DOMAIN" | grep '^blocks:')"
    ok "confirm+<cookie>: $(postfix_log_of "$qid" "confirm\+$COOKIE@$DOMAIN"); nym show: $(ng nym show "quill@$DOMAIN" | grep '^blocks:')"
    # "reply block confirmed" comes back through the block: the second copy.
    wait_copies "$TAG1" 2
    M=marker-$(rand)
    printf 'Hello quill, this is %s.\n' "$M" >"$STATE/quill-in.txt"
    mail_file "$STATE/quill-in.eml" "$OUTSIDER@localhost" "Quill <quill@$DOMAIN>" "to the nym" "$STATE/quill-in.txt"
    mark=$(($(wc -l <"$POSTFIX_LOG") + 1))
    qid=$(smtp 25 "$OUTSIDER@localhost" "quill@$DOMAIN" "$STATE/quill-in.eml")
    wait_for "$POSTFIX_LOG" "$qid: to=<quill@$DOMAIN>, relay=nymgate,.* status=sent" 60
    ok "quill@: $(postfix_log_of "$qid" "quill@$DOMAIN")"
    wait_copies "$TAG1" 3
    chain_hops "$mark"
    mbox_nth "/var/mail/$RCPT_USER" "Subject: $TAG1" 3 >"$STATE/quill-in.mbox"
    chain_open "$STATE/quill-in.mbox" "$STATE/quill-in.plain"
    grep -q "$M" "$STATE/quill-in.plain" || fail "the peeled copy is not the mail to quill"
    for x in "quill@" "$DOMAIN" "$R1" "$OUTSIDER"; do
        ! grep -qi -- "$x" "$STATE/quill-in.mbox" || fail "the mailbox copy names $x"
    done
    ok "the mail peels with $K2, $K1 and quill's key, signed by the server; the copy as delivered ($(grep -m1 '^From:' "$STATE/quill-in.mbox")) names neither quill, $DOMAIN, $R1 nor the sender"

    step "4e.4 the Latent-Time item: still waiting; the flush unit hands it off exactly once"
    ng queue list | awk -F'\t' -v id="$LATENT_ID" '$1 == id' | grep -q . ||
        fail "the Latent-Time item left the outbox before its time"
    [ "$(mbox_count "/var/mail/$RCPT_USER" "Subject: $LATENT")" = 0 ] || fail "the Latent-Time mail arrived early"
    ok "after $(($(date +%s) - LATENT_T0)) s: item $LATENT_ID still queued, nothing in the mailbox: $(ng queue list | awk -F'\t' -v id="$LATENT_ID" '$1 == id')"
    local left=$((LATENT_T0 + 62 - $(date +%s)))
    if [ "$left" -gt 0 ]; then sleep "$left"; fi
    mark=$(($(wc -l <"$POSTFIX_LOG") + 1))
    "$HERE/unit-exec" --explain "$UNITS/nymgate-flush.service" >"$STATE/flush-latent.log" 2>&1 ||
        fail "the flush unit failed: $(tail -n 3 "$STATE/flush-latent.log")"
    grep -E '^sent' "$STATE/flush-latent.log" | indent
    ! ng queue list | awk -F'\t' -v id="$LATENT_ID" '$1 == id' | grep -q . || fail "the flush unit left item $LATENT_ID queued"
    wait_for "/var/mail/$RCPT_USER" "^Subject: $LATENT" 60
    ng flush >/dev/null # a second flush must not send it again
    sleep 2
    [ "$(mbox_count "/var/mail/$RCPT_USER" "Subject: $LATENT")" = 1 ] ||
        fail "the Latent-Time mail arrived $(mbox_count "/var/mail/$RCPT_USER" "Subject: $LATENT") times"
    log_since "$mark" | grep -E "postfix/pickup|to=<$BOX>, relay=local" | sed -E 's/^.*(postfix\/)/\1/' | indent
    ok "the flush unit handed it to Postfix; exactly one copy in the mailbox ($(mbox_with "/var/mail/$RCPT_USER" "Subject: $LATENT" | grep -m1 '^From:'))"
    # Off again (4g and 4h check the remailer off, and remailer@ refused).
    helper toml-set "$NYMGATE_CONFIG" 'remailer.enabled=false'
    reloads=$(count "$STATE/recipients-path.log" 'exit 0$')
    ng flush >/dev/null
    ! grep -q "^remailer@" "$TABLE" || fail "remailer@ still in the table with the remailer off"
    wait_reload $((reloads + 1))

    step "4f. confirm+COOKIE@ through Postfix, with and without recipient_delimiter = +"
    confirm_unknown "with recipient_delimiter = $(postconf -h recipient_delimiter)"
    postconf -e 'recipient_delimiter ='
    postfix_reload
    confirm_unknown "with recipient_delimiter empty"
    # A cookie that is not 32 hex digits is no cookie: refused at RCPT.
    mail_file "$STATE/confirm-bad.eml" "$OUTSIDER@localhost" "confirm+nothex@$DOMAIN" "ok" "$STATE/unknown.txt"
    qid=$(smtp 25 "$OUTSIDER@localhost" "confirm+nothex@$DOMAIN" "$STATE/confirm-bad.eml" \
        --allow-refused --transcript "$STATE/confirm-bad.smtp")
    [ -z "$qid" ] || fail "Postfix accepted confirm+nothex@ without recipient_delimiter"
    grep -Eq '^S: 550 5\.1\.1 ' "$STATE/confirm-bad.smtp" || fail "confirm+nothex@: $(cat "$STATE/confirm-bad.smtp")"
    ok "confirm+nothex@ refused at RCPT: $(grep -E '^S: 550' "$STATE/confirm-bad.smtp" | sed 's/^S: //')"
    postconf -e 'recipient_delimiter = +'
    postfix_reload

    step "4g. the autoresponders through Postfix: help@ once, not to a null sender nor X-Loop; remailer-key@"
    local m1 m2 m3 m4 x
    # Answers go only to addresses with a dotted domain: the outsider's
    # mailbox by the host name Postfix delivers locally for.
    local asker=$OUTSIDER@mx.e2e.test
    m1=help-$(rand)
    mail_file "$STATE/help1.eml" "$asker" "help@$DOMAIN" "$m1" "$STATE/unknown.txt"
    qid=$(smtp 25 "$asker" "help@$DOMAIN" "$STATE/help1.eml")
    wait_for "$POSTFIX_LOG" "$qid: to=<help@$DOMAIN>, relay=nymgate,.* status=sent" 60
    ok "help@: $(postfix_log_of "$qid" "help@$DOMAIN")"
    # Would be answered to the From: address, were it not for the null
    # envelope sender (a bounce) ...
    m2=help-$(rand)
    mail_file "$STATE/help2.eml" "$asker" "help@$DOMAIN" "$m2" "$STATE/unknown.txt"
    qid=$(smtp 25 "" "help@$DOMAIN" "$STATE/help2.eml")
    wait_for "$POSTFIX_LOG" "$qid: to=<help@$DOMAIN>, relay=nymgate,.* status=sent" 60
    # ... or the X-Loop naming the hosted domain (our own answer come back).
    m3=help-$(rand)
    mail_file "$STATE/help3.eml" "$asker" "help@$DOMAIN" "$m3" "$STATE/unknown.txt"
    sed -i "1i X-Loop: $DOMAIN" "$STATE/help3.eml"
    qid=$(smtp 25 "$asker" "help@$DOMAIN" "$STATE/help3.eml")
    wait_for "$POSTFIX_LOG" "$qid: to=<help@$DOMAIN>, relay=nymgate,.* status=sent" 60
    # A last ordinary request: once its answer is in, any answer to the two
    # before it would be too (each was handed to Postfix before nymgate exited).
    m4=help-$(rand)
    mail_file "$STATE/help4.eml" "$asker" "help@$DOMAIN" "$m4" "$STATE/unknown.txt"
    qid=$(smtp 25 "$asker" "help@$DOMAIN" "$STATE/help4.eml")
    wait_for "$POSTFIX_LOG" "$qid: to=<help@$DOMAIN>, relay=nymgate,.* status=sent" 60
    wait_for "/var/mail/$OUTSIDER" "^> Subject: $m4" 60
    for x in "$m1:1" "$m2:0" "$m3:0" "$m4:1"; do
        [ "$(mbox_count "/var/mail/$OUTSIDER" "Subject: ${x%%:*}")" = "${x##*:}" ] ||
            fail "help@ answers quoting ${x%%:*}: $(mbox_count "/var/mail/$OUTSIDER" "Subject: ${x%%:*}"), wanted ${x##*:}"
    done
    mbox_with "/var/mail/$OUTSIDER" "Subject: $m1" >"$STATE/help1.reply"
    grep -q "^From: .*<nobody@$DOMAIN>" "$STATE/help1.reply" || fail "help@ answer From: $(grep -m1 '^From:' "$STATE/help1.reply")"
    grep -q "^X-Loop: $DOMAIN" "$STATE/help1.reply" && grep -q '^Auto-Submitted: auto-replied' "$STATE/help1.reply" ||
        fail "help@ answer lacks X-Loop/Auto-Submitted"
    grep -q 'Config:' "$STATE/help1.reply" || fail "the help text does not explain the Config: format"
    ok "help@: one answer each to the two ordinary requests ($(grep -m1 '^From:' "$STATE/help1.reply"), X-Loop, Auto-Submitted); none to the null sender nor to X-Loop: $DOMAIN"
    # remailer-key@ from another address (the per-address daily cap is 3),
    # with the remailer off, then on.
    local k
    for k in off on; do
        [ "$k" = on ] && helper toml-set "$NYMGATE_CONFIG" 'remailer.enabled=true'
        x=key-$(rand)
        mail_file "$STATE/key-$k.eml" "$RCPT_USER@mx.e2e.test" "remailer-key@$DOMAIN" "$x" "$STATE/unknown.txt"
        qid=$(smtp 25 "$RCPT_USER@mx.e2e.test" "remailer-key@$DOMAIN" "$STATE/key-$k.eml")
        wait_for "$POSTFIX_LOG" "$qid: to=<remailer-key@$DOMAIN>, relay=nymgate,.* status=sent" 60
        wait_for "/var/mail/$RCPT_USER" "^> Subject: $x" 60
        mbox_with "/var/mail/$RCPT_USER" "Subject: $x" >"$STATE/key-$k.reply"
        grep -q 'BEGIN PGP PUBLIC KEY BLOCK' "$STATE/key-$k.reply" || fail "remailer-key@ answer without the key"
        if [ "$k" = on ]; then
            grep -q "^\$remailer{\"nym\"} = \"<remailer@$DOMAIN> cpunk " "$STATE/key-$k.reply" ||
                fail "remailer-key@ answer without the capability line"
            ok "remailer-key@ with [remailer] enabled: the key and $(grep '^\$remailer' "$STATE/key-$k.reply")"
        else
            ! grep -q '^\$remailer{' "$STATE/key-$k.reply" || fail "capability line although the remailer is off"
            ok "remailer-key@ with the remailer off: the key, no capability line"
        fi
    done
    helper toml-set "$NYMGATE_CONFIG" 'remailer.enabled=false'

    step "4h. nym.alias.net refusals as Postfix bounces: 5.7.0 nobcc, 5.3.0 disable, 5.1.1 list@ and postmaster@"
    # nobcc (quill has it): mail that does not name quill in To/Cc.
    mail_file "$STATE/bcc.eml" "$OUTSIDER@localhost" "list@lists.e2e.test" "bcc" "$STATE/unknown.txt"
    qid=$(smtp 25 "$OUTSIDER@localhost" "quill@$DOMAIN" "$STATE/bcc.eml")
    wait_for "$POSTFIX_LOG" "$qid: to=<quill@$DOMAIN>, relay=nymgate,.* dsn=5\.7\.0, status=bounced" 60
    ok "nobcc: $(postfix_log_of "$qid" "quill@$DOMAIN")"
    mail_file "$STATE/named.eml" "$OUTSIDER@localhost" "Quill <quill@$DOMAIN>" "named" "$STATE/unknown.txt"
    qid=$(smtp 25 "$OUTSIDER@localhost" "quill@$DOMAIN" "$STATE/named.eml")
    wait_for "$POSTFIX_LOG" "$qid: to=<quill@$DOMAIN>, relay=nymgate,.* status=sent" 60
    ok "nobcc, quill named in To: status=sent"
    # disable, set by the holder in a signed Config: modification.
    printf 'Config:\nFrom: quill\nNym-Commands: +disable\n' >"$STATE/quill-disable.txt"
    signed_config quill "$STATE/quill-disable.txt" "$STATE/quill-disable.eml"
    qid=$(smtp 25 "$OUTSIDER@localhost" "config@$DOMAIN" "$STATE/quill-disable.eml")
    wait_for "$POSTFIX_LOG" "$qid: to=<config@$DOMAIN>, relay=nymgate,.* status=sent" 60
    quill_has '^flags: .*+disable' || fail "+disable not applied: $(ng nym show "quill@$DOMAIN")"
    qid=$(smtp 25 "$OUTSIDER@localhost" "quill@$DOMAIN" "$STATE/named.eml")
    wait_for "$POSTFIX_LOG" "$qid: to=<quill@$DOMAIN>, relay=nymgate,.* dsn=5\.3\.0, status=bounced" 60
    ok "disable: $(postfix_log_of "$qid" "quill@$DOMAIN")"
    # list@ is off, so it is not in the table and Postfix refuses it at RCPT,
    # like remailer@ (the remailer is off) and an unknown nym.
    for x in list used remailer; do
        mail_file "$STATE/$x-off.eml" "$OUTSIDER@localhost" "$x@$DOMAIN" "names" "$STATE/unknown.txt"
        qid=$(smtp 25 "$OUTSIDER@localhost" "$x@$DOMAIN" "$STATE/$x-off.eml" --allow-refused --transcript "$STATE/$x-off.smtp")
        [ -z "$qid" ] || fail "Postfix accepted $x@ although it is off"
        grep -Eq "^S: 550 5\.1\.1 <$x@$DOMAIN>: Recipient address rejected" "$STATE/$x-off.smtp" ||
            fail "$x@: $(cat "$STATE/$x-off.smtp")"
    done
    ok "list@, used@, remailer@ (off) refused at RCPT time, as an unknown nym:"
    grep -E '^[CS]: (RCPT|550)' "$STATE/list-off.smtp" | indent
    # Where the table still lists list@ (switched off since the last
    # rewrite, until the next flush repairs it), nymgate's 67 bounces.
    helper toml-set "$NYMGATE_CONFIG" 'autoresponders.list=true'
    reloads=$(count "$STATE/recipients-path.log" 'exit 0$')
    ng flush >/dev/null
    grep -qx "list@$DOMAIN list@$DOMAIN" "$TABLE" || fail "the flush did not add list@ to the table"
    wait_reload $((reloads + 1))
    helper toml-set "$NYMGATE_CONFIG" 'autoresponders.list=false'
    qid=$(smtp 25 "$OUTSIDER@localhost" "list@$DOMAIN" "$STATE/list-off.eml")
    wait_for "$POSTFIX_LOG" "$qid: to=<list@$DOMAIN>, relay=nymgate,.* dsn=5\.1\.1, status=bounced" 60
    ok "list@ off but still in the table: $(postfix_log_of "$qid" "list@$DOMAIN")"
    # confirm@ without a cookie.
    qid=$(smtp 25 "$OUTSIDER@localhost" "confirm@$DOMAIN" "$STATE/list-off.eml")
    wait_for "$POSTFIX_LOG" "$qid: to=<confirm@$DOMAIN>, relay=nymgate,.* dsn=5\.1\.1, status=bounced" 60
    ok "confirm@ without a cookie: $(postfix_log_of "$qid" "confirm@$DOMAIN")"
    # postmaster@ reaches nymgate only where Postfix does not alias it to
    # the operator (setup.sh does); with no operator address it bounces.
    postconf -X virtual_alias_maps
    postfix_reload
    helper toml-set "$NYMGATE_CONFIG" 'operator.address=""'
    mail_file "$STATE/pm-none.eml" "$OUTSIDER@localhost" "postmaster@$DOMAIN" "to nobody" "$STATE/unknown.txt"
    qid=$(smtp 25 "$OUTSIDER@localhost" "postmaster@$DOMAIN" "$STATE/pm-none.eml")
    wait_for "$POSTFIX_LOG" "$qid: to=<postmaster@$DOMAIN>, relay=nymgate,.* dsn=5\.1\.1, status=bounced" 60
    ok "postmaster@ without an operator address: $(postfix_log_of "$qid" "postmaster@$DOMAIN")"
    helper toml-set "$NYMGATE_CONFIG" "operator.address=\"$OPERATOR@localhost\""
    # shellcheck disable=SC2086 # one word per domain
    sh "$EXAMPLES/postfix/setup.sh" -o "$OPERATOR@localhost" $NYMALIAS_DOMAINS >/dev/null 2>&1 || fail "setup.sh again"
    postfix_reload
    # The nym-side bounces went to the envelope sender (the outsider).
    wait_for "/var/mail/$OUTSIDER" 'This nym does not accept blind copies' 30
    wait_for "/var/mail/$OUTSIDER" 'This nym is disabled' 30
    ok "the bounces reached the sender with nymgate's reasons"
}

nymalias_exim() {
    step "6e. the same three refusals bounced by Exim (temp_errors = 75: 77, 69 and 67 bounce); confirm+COOKIE@ and quill+ext@ through Exim"
    local id
    # quill is still disabled (4h): 69.
    id=$(smtp "$EXIM_PORT" "$OUTSIDER@localhost" "quill@$DOMAIN" "$STATE/named.eml")
    wait_for "$STATE/exim/log/mainlog" "$id \*\* .*quill@$DOMAIN.*T=nymgate_pipe.*returned 69" 60
    ok "disable: $(grep -E "$id \*\* " "$STATE/exim/log/mainlog" | sed -E 's/^[0-9-]+ [0-9:]+ //; s/ from command:.*//')"
    printf 'Config:\nFrom: quill\nNym-Commands: -disable\n' >"$STATE/quill-enable.txt"
    signed_config quill "$STATE/quill-enable.txt" "$STATE/quill-enable.eml"
    id=$(smtp "$EXIM_PORT" "$OUTSIDER@localhost" "config@$DOMAIN" "$STATE/quill-enable.eml")
    wait_for "$STATE/exim/log/mainlog" "$id => .*config@$DOMAIN.* R=nymgate T=nymgate_pipe" 60
    quill_has '^flags: .*-disable' || fail "-disable not applied"
    # nobcc: 77.
    id=$(smtp "$EXIM_PORT" "$OUTSIDER@localhost" "quill@$DOMAIN" "$STATE/bcc.eml")
    wait_for "$STATE/exim/log/mainlog" "$id \*\* .*quill@$DOMAIN.*T=nymgate_pipe.*returned 77" 60
    ok "nobcc: $(grep -E "$id \*\* " "$STATE/exim/log/mainlog" | sed -E 's/^[0-9-]+ [0-9:]+ //; s/ from command:.*//')"
    # list@ off but listed (the table is read per connection): 67.
    helper toml-set "$NYMGATE_CONFIG" 'autoresponders.list=true'
    ng flush >/dev/null
    helper toml-set "$NYMGATE_CONFIG" 'autoresponders.list=false'
    id=$(smtp "$EXIM_PORT" "$OUTSIDER@localhost" "list@$DOMAIN" "$STATE/list-off.eml")
    wait_for "$STATE/exim/log/mainlog" "$id \*\* .*list@$DOMAIN.*T=nymgate_pipe.*returned 67" 60
    ok "list@ off but still in the table: $(grep -E "$id \*\* " "$STATE/exim/log/mainlog" | sed -E 's/^[0-9-]+ [0-9:]+ //; s/ from command:.*//')"
    ng flush >/dev/null
    grep -q "^list@$DOMAIN " "$TABLE" && fail "the flush did not take list@ out of the table again"
    # confirm+COOKIE@ through Exim: quill replaces its block (a new set,
    # pending), the notice travels the chain (nymgate's sendmail is
    # Postfix's), and the cookie it carries is mailed to through Exim. The
    # router hands nymgate the whole address (RECIPIENT), so it arrives as
    # confirm+COOKIE@, not confirm@.
    helper toml-set "$NYMGATE_CONFIG" 'remailer.enabled=true'
    local tag2 cookie
    tag2=tag-$(rand)
    {
        printf 'Config:\nFrom: quill\nReply-Block:\n'
        chain_onion "$tag2"
    } >"$STATE/quill-block2.txt"
    signed_config quill "$STATE/quill-block2.txt" "$STATE/quill-block2.eml"
    id=$(smtp "$EXIM_PORT" "$OUTSIDER@localhost" "config@$DOMAIN" "$STATE/quill-block2.eml")
    wait_for "$STATE/exim/log/mainlog" "$id => .*config@$DOMAIN.* R=nymgate T=nymgate_pipe" 60
    quill_has '^blocks: *1 active, 1 pending$' ||
        fail "the new block is not pending: $(ng nym show "quill@$DOMAIN" | grep '^blocks:')"
    wait_copies "$tag2" 1
    mbox_nth "/var/mail/$RCPT_USER" "Subject: $tag2" 1 >"$STATE/quill-notice2.mbox"
    chain_open "$STATE/quill-notice2.mbox" "$STATE/quill-notice2.txt"
    cookie=$(grep -m1 -oE "confirm\+[0-9a-f]{32}@$DOMAIN" "$STATE/quill-notice2.txt" | sed -E 's/^confirm\+([0-9a-f]+)@.*/\1/')
    [ -n "$cookie" ] || fail "no confirm+COOKIE@ in the second notice"
    # A confirm+ suffix that is no cookie is refused at RCPT by the router.
    id=$(smtp "$EXIM_PORT" "$OUTSIDER@localhost" "confirm+nothex@$DOMAIN" "$STATE/list-off.eml" \
        --allow-refused --transcript "$STATE/confirm-bad-exim.smtp")
    [ -z "$id" ] || fail "Exim accepted confirm+nothex@ ($id)"
    grep -Eq '^S: 550 no such nym' "$STATE/confirm-bad-exim.smtp" || fail "confirm+nothex@ via Exim: $(cat "$STATE/confirm-bad-exim.smtp")"
    ok "confirm+nothex@ refused at RCPT by Exim: $(grep -E '^S: 550' "$STATE/confirm-bad-exim.smtp" | sed 's/^S: //')"
    mail_file "$STATE/confirm-exim.eml" "$OUTSIDER@localhost" "confirm+$cookie@$DOMAIN" "ok" "$STATE/unknown.txt"
    id=$(smtp "$EXIM_PORT" "$OUTSIDER@localhost" "confirm+$cookie@$DOMAIN" "$STATE/confirm-exim.eml")
    wait_for "$STATE/exim/log/mainlog" "$id (\*\*|=>) " 60
    grep -Eq "$id => confirm <confirm\+$cookie@$DOMAIN> R=nymgate T=nymgate_pipe" "$STATE/exim/log/mainlog" ||
        fail "Exim did not pipe confirm+COOKIE@: $(grep -E "$id " "$STATE/exim/log/mainlog" | tail -n 2)"
    quill_has '^blocks: *1 active, 0 pending$' ||
        fail "confirm+COOKIE@ through Exim did not activate the set: $(ng nym show "quill@$DOMAIN" | grep '^blocks:')"
    ok "confirm+COOKIE@ through Exim: $(grep -E "$id => " "$STATE/exim/log/mainlog" | sed -E 's/^[0-9-]+ [0-9:]+ //'); nym show: $(ng nym show "quill@$DOMAIN" | grep '^blocks:')"
    wait_copies "$tag2" 2 # "reply block confirmed", through the new block
    # nobcc with +ext: quill+ext@ need not be named in To/Cc (REPLY-BLOCKS.md
    # 7.5); through Exim it now reaches nymgate as quill+ext@.
    id=$(smtp "$EXIM_PORT" "$OUTSIDER@localhost" "quill+ext@$DOMAIN" "$STATE/bcc.eml")
    wait_for "$STATE/exim/log/mainlog" "$id (\*\*|=>) " 60
    grep -Eq "$id => quill <quill\+ext@$DOMAIN> R=nymgate T=nymgate_pipe" "$STATE/exim/log/mainlog" ||
        fail "quill+ext@ through Exim: $(grep -E "$id (\*\*|=>) " "$STATE/exim/log/mainlog")"
    wait_copies "$tag2" 3
    ok "nobcc, quill+ext@ not named in To: $(grep -E "$id => " "$STATE/exim/log/mainlog" | sed -E 's/^[0-9-]+ [0-9:]+ //'), through the block to the mailbox"
    helper toml-set "$NYMGATE_CONFIG" 'remailer.enabled=false'

    step "6f. quill deletes itself (signed Nym-Commands: delete) through Postfix"
    printf 'Config:\nFrom: quill\nNym-Commands: delete\n' >"$STATE/quill-delete.txt"
    signed_config quill "$STATE/quill-delete.txt" "$STATE/quill-delete.eml"
    local reloads qid
    reloads=$(count "$STATE/recipients-path.log" 'exit 0$')
    qid=$(smtp 25 "$OUTSIDER@localhost" "config@$DOMAIN" "$STATE/quill-delete.eml")
    wait_for "$POSTFIX_LOG" "$qid: to=<config@$DOMAIN>, relay=nymgate,.* status=sent" 60
    ! ng nym list | grep -c "quill@$DOMAIN" >/dev/null || fail "quill still in nym list after delete"
    for _ in $(seq 20); do grep -q "^quill@$DOMAIN " "$TABLE" || break; sleep 0.5; done
    ! grep -q "^quill@$DOMAIN " "$TABLE" || fail "quill still in $TABLE after delete"
    wait_reload $((reloads + 1))
    ok "quill gone from nym list and from the table"
}
