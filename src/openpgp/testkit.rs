//! Shared by the unit tests of this module: keys, hostile messages built
//! with sequoia directly, and an allocation meter.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::packet::key::{PublicParts, SubordinateRole};
use openpgp::packet::signature::SignatureBuilder;
use openpgp::packet::{Key, Packet};
use openpgp::serialize::stream::{Armorer, Compressor, Encryptor, LiteralWriter, Message, Recipient, Signer};
use openpgp::types::{CompressionAlgorithm, Features, KeyFlags, SignatureType};
use openpgp::Cert;

use super::{holder, policy, ServerKey};

pub fn server() -> ServerKey {
    ServerKey::from_tsk(include_bytes!("../../fuzz/keys/server.key")).unwrap()
}

/// A nym key as the client makes it (with its secrets).
pub fn nym(addr: &str) -> Cert {
    holder::generate(addr, None, false, None).unwrap()
}

/// Write a message to `to` (every encryption key, recipient hidden):
/// `inner` writes what goes inside the encryption.
pub fn encrypt_raw(to: &Cert, inner: impl FnOnce(Message) -> openpgp::Result<()>) -> Vec<u8> {
    let vc = to.with_policy(policy(), None).unwrap();
    let recipients: Vec<Recipient> = vc
        .keys()
        .for_transport_encryption()
        .map(|ka| Recipient::new(Features::empty().set_seipdv1(), None, ka.key()))
        .collect();
    let mut out = Vec::new();
    let m = Message::new(&mut out);
    let m = Armorer::new(m).build().unwrap();
    let m = Encryptor::for_recipients(m, recipients).build().unwrap();
    inner(m).unwrap();
    out
}

/// `n` bytes of zeros, compressed inside the encryption to `to`.
pub fn bomb(to: &Cert, n: usize) -> Vec<u8> {
    encrypt_raw(to, |m| {
        let m = Compressor::new(m).algo(CompressionAlgorithm::Zlib).build()?;
        let mut w = LiteralWriter::new(m).build()?;
        let zeros = vec![0u8; 1 << 16];
        for _ in 0..n / zeros.len() {
            w.write_all(&zeros)?;
        }
        w.finalize()
    })
}

/// `plaintext` signed by the server key and not encrypted at all: what a
/// nym finds inside its own article, and could post again in clear.
pub fn signed_only(server: &ServerKey, plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let m = Message::new(&mut out);
    let m = Armorer::new(m).build().unwrap();
    let m = Signer::new(m, server.signer().unwrap()).unwrap().build().unwrap();
    let mut w = LiteralWriter::new(m).build().unwrap();
    w.write_all(plaintext).unwrap();
    w.finalize().unwrap();
    out
}

/// A key for `addr` with a signing subkey, and `subkey` bound to it with
/// the encryption flags, whatever it really is.
pub fn with_encryption_subkey(addr: &str, subkey: Key<PublicParts, SubordinateRole>) -> Cert {
    let (cert, _) = CertBuilder::new().add_userid(addr).add_signing_subkey().generate().unwrap();
    let mut primary = cert.primary_key().key().clone().parts_into_secret().unwrap().into_keypair().unwrap();
    let flags = KeyFlags::empty().set_transport_encryption().set_storage_encryption();
    let builder = SignatureBuilder::new(SignatureType::SubkeyBinding).set_key_flags(flags).unwrap();
    let binding = subkey.bind(&mut primary, &cert, builder).unwrap();
    cert.insert_packets(vec![Packet::from(subkey), binding.into()]).unwrap().0
}

/// Counts the bytes allocated by the current thread while [`peak_alloc`]
/// runs, so that parallel tests do not disturb each other.
struct Meter;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static NOW: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = ON.try_with(|on| {
        if on.get() {
            let now = NOW.get() + delta;
            NOW.set(now);
            PEAK.set(PEAK.get().max(now));
        }
    });
}

// SAFETY: every call is passed on to the system allocator unchanged; the
// bookkeeping touches only const-initialised thread-locals, which never
// allocate.
unsafe impl GlobalAlloc for Meter {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            count(l.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            count(l.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        count(-(l.size() as isize));
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            count(new as isize - l.size() as isize);
        }
        q
    }
}

#[global_allocator]
static METER: Meter = Meter;

/// Run `f`; also return the most memory this thread held at once meanwhile
/// (bytes above what it held when `f` started).
pub fn peak_alloc<T>(f: impl FnOnce() -> T) -> (T, usize) {
    NOW.set(0);
    PEAK.set(0);
    ON.set(true);
    let r = f();
    ON.set(false);
    (r, PEAK.get().max(0) as usize)
}
