//! `nym`: the nym holder's client. Everything lives in `nymgate::client`.

fn main() {
    std::process::exit(nymgate::client::main());
}
