//! Every OpenPGP operation of the server and of the holder's client. This
//! is the only module that touches sequoia-openpgp, so that policy (what
//! we accept, what we emit) and the guard against hostile input are decided
//! in one place.
//!
//! - `guard`: sequoia on untrusted bytes, with panics turned into errors.
//! - `server_key`: the server's key (generation, loading); `key_file`
//!   splits its file so that only the secret an operation uses is parsed.
//! - `backend`: the crypto backend built in, and the RSA server keys a
//!   variable-time one refuses.
//! - `decrypt`: the server's decryption and signature check of requests.
//! - `encrypt`: what the server sends (sign+encrypt, symmetric layer).
//! - `cert`: nym keys (parsing, the rules of PROTOCOL.md section 2, merge).
//! - `armor`: finding an armored block in text.
//! - `cover`: the throwaway key of a dummy article.
//! - `holder`: the nym holder's side (key generation, requests, articles).
//! - `rotation`: server key rotation (certification, revocation, the holder's check).
//! - `holder_key`: the holder's key: passphrase, renewal, subkey rotation.
//! - `type1`: the Type I remailer's layers and its `Encrypt-Key` cipher.

mod armor;
pub mod backend;
mod cert;
mod cover;
mod decrypt;
mod encrypt;
mod guard;
pub mod holder;
mod holder_key;
mod key_file;
mod keyblock;
mod rotation;
mod server_key;
#[cfg(test)]
mod testkit;
mod type1;

use sequoia_openpgp::policy::StandardPolicy;

pub use armor::find_armor;
pub use cert::{
    cert_bytes, cert_from_bytes, check_nym_cert, key_ids, merge, parse_certs, KeyProblem, NymKey,
};
pub use cover::throwaway_cert;
pub use decrypt::{decrypt, decrypt_at, DecryptError, Decrypted, SigInfo};
pub use encrypt::{
    armored_size, encrypt_only, encrypt_symmetric, encrypt_symmetric_into, sign_armored_into, sign_encrypt,
    sign_encrypt_into, sign_encrypt_padded_into, NOTICE_NOTATION,
};
pub use keyblock::{read_key_block, strip_to_nym, within_bounds, MAX_STORED, MAX_SUBKEYS};
pub use rotation::{
    certify_user_ids, current_server_key, fingerprint_of, public_keyring, revoke_superseded,
    rotated_server_key, rotation_candidate, verify_rotation, RotationProblem, ROTATION_SUBJECT,
};
pub use server_key::{add_user_ids, generate_server_key, tsk_armored, user_ids, ServerKey};
pub use type1::{decrypt_layer, encrypt_key, EK_S2K_BYTES};

/// An OpenPGP certificate (a public key, possibly with secrets).
pub use sequoia_openpgp::Cert as PgpCert;

/// The policy every check uses: sequoia's standard policy (no SHA-1
/// signatures, no weak keys).
pub fn policy() -> &'static StandardPolicy<'static> {
    static P: StandardPolicy<'static> = StandardPolicy::new();
    &P
}
