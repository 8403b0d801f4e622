#!/bin/sh
# Make sure a local INN serves alt.anonymous.messages on 127.0.0.1:119, for
# tests/client/inn.rs. Idempotent: installs inn2 only when missing, starts
# innd only when it is not answering, creates the group only when absent.
# Leaves an INN that someone else already runs alone apart from the group.
set -eu

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo -n"
fi
GROUP=alt.anonymous.messages

if ! command -v ctlinnd >/dev/null 2>&1 && [ ! -x /usr/sbin/ctlinnd ]; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q inn2 >/dev/null
fi

answering() {
    # innd answers ctlinnd on its control channel when it runs.
    $SUDO /usr/sbin/ctlinnd -t 5 mode >/dev/null 2>&1
}

if ! answering; then
    $SUDO su news -s /bin/sh -c /usr/lib/news/bin/rc.news >/dev/null 2>&1 || true
    i=0
    while ! answering; do
        i=$((i + 1))
        if [ "$i" -gt 30 ]; then
            echo "client_inn_setup: innd did not start" >&2
            exit 1
        fi
        sleep 1
    done
fi

if ! grep -q "^$GROUP " /var/lib/news/active; then
    $SUDO /usr/sbin/ctlinnd -t 10 newgroup "$GROUP" y >/dev/null
fi
echo "client_inn_setup: INN ready with $GROUP"
