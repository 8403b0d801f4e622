//! The long text of `nym --help` (and of the nym.1 man page).

pub const LONG_ABOUT: &str = "\
nym manages pseudonyms (\"nyms\") on Zax-type nym servers such as nymgate, \
mixnym.net or is-not-my.name. It replaces the manual steps of the classic \
guide (gpg key generation, hand-made option files, encryption to config@, \
send@ and url@, aam2mail, gpg --decrypt) with one command each.

A nym lives like this:

  nym new alice@nym.example --server-key key.asc --hsub PASS
  nym fetch                      # read alt.anonymous.messages, keep ours
  nym read                       # decrypt, verify the server, show
  nym send alice@nym.example --to bob@example.org --subject hi < body.txt
  nym config alice@nym.example --hsub NEWPASS
  nym delete alice@nym.example --yes

A nym.alias.net-style nym receives through a reply block, a chain of Type \
I remailers that you choose:

  nym new quill@nym.example --server-key key.asc --reply-block \\
      --hop remailer@r1.example=r1.asc --hop remailer@r2.example=r2.asc \\
      --deliver-to me@mailbox.example
  nym read --mail FILE           # what the last remailer delivered
  nym confirm quill@nym.example  # activate the block (through the chain)

Requests are built exactly as every Zax-type server expects them, so they \
work with any such server, not only nymgate.

HOW REQUESTS LEAVE YOUR MACHINE (--via)

Every request is an ordinary mail to config@, send@ or url@ the server's \
domain, whose body is an OpenPGP message only the server can read. The \
server cannot see who you are, but the mail system can: if you mail the \
server straight from your own address or through your provider's SMTP \
server, the envelope, the Received: lines and the provider's logs link \
your real identity to the nym. Anybody who can watch the server's mail \
(its operator, its provider, a court order) then knows who the nym is.

Do not do that for a nym that matters. Instead hand the request to an \
anonymous path:

  * an SMTP server reached over Tor, with Tor's SOCKS port as the proxy:
      nym --proxy socks5h://127.0.0.1:9050 send ... \\
          --via smtp+starttls://USER:PASS@mail.example:587
    or `proxy = \"socks5h://127.0.0.1:9050\"` once in config.toml. Each \
nym then uses its own Tor circuits, .onion servers work, and when the \
proxy is down the command fails: nothing is ever sent around it. (torsocks \
works too, but a single run without it goes out straight.)
  * a remailer: write the request with --via file:DIR (one file per \
request) or --via mbox:FILE and give the files \
to your remailer client (Mixmaster, Mixmaster-compatible or Yamn), or to \
a remailer's web or onion interface;
  * send create requests twice through different paths (--copies 2 or two \
runs): the server ignores extra copies of a create, and drops a repeated \
send@ request (the same signature) through its replay cache; a new nym send \
of the same text is a new message and is delivered again.

Fetching is safer but not free: read alt.anonymous.messages over Tor too \
(the same proxy setting covers nym fetch), so that your news server does \
not learn when you look.

FILES

  $NYM_HOME (default ~/.nym, mode 0700) holds everything: config.toml \
(defaults for --via, --from, the news servers, the proxy and the SMTP \
login), nyms/ADDRESS/ (the nym's \
secret key, the server key and the options, all mode 0600), Maildir/ (the \
articles fetch kept for you) and state/ (high-water marks).";
