//! Reading a key block from a request within bounds, and keeping of a nym
//! key only what the nym itself made.
//!
//! A key in a request is anyone's input. Built as it comes, a key with
//! thousands of User IDs or certifications costs time that grows faster
//! than its size, and merged into the stored key on every "refresh" it
//! makes every later delivery to that nym slow. So the block is filtered
//! packet by packet (linear) before a certificate is built from it, and
//! what is stored is stripped to the nym's own self-signatures.

use anyhow::{anyhow, Result};
use sequoia_openpgp as openpgp;

use openpgp::packet::{Signature, UserID};
use openpgp::parse::{PacketParser, PacketParserResult, Parse};
use openpgp::serialize::SerializeInto;
use openpgp::{Cert, Packet};

use super::guard::guarded;

/// Signatures kept per component (key, User ID, subkey) while reading.
const SIGS_READ: usize = 32;
/// User IDs kept while reading: in hosted domains, and others (which the
/// nym rules ignore, but a key without any is no key at all).
const UIDS_HOSTED: usize = 16;
const UIDS_OTHER: usize = 4;
/// Self-signatures and self-revocations kept per component when stored.
const SIGS_KEPT: usize = 4;
/// Subkeys a nym key may have.
pub const MAX_SUBKEYS: usize = 16;
/// Largest stored nym key, in bytes.
pub const MAX_STORED: usize = 64 * 1024;

/// Does this User ID name an address in a hosted domain?
fn hosted_uid(u: &UserID, hosts: &dyn Fn(&str) -> bool) -> bool {
    match u.email() {
        Ok(Some(e)) => e.rsplit_once('@').is_some_and(|(_, d)| hosts(d)),
        _ => false,
    }
}

/// Read at most two certificates from `block`, keeping of each only the
/// packets the nym rules can use: keys (at most one subkey more than a nym
/// key may have, so that such a key can be told it has too many), User IDs
/// (those in hosted domains, and a few others), and up to a few signatures
/// on each. The cost is linear in the block's size.
pub fn read_key_block(block: &[u8], hosts: &dyn Fn(&str) -> bool) -> Result<Vec<Cert>> {
    guarded(|| read_inner(block, hosts)).unwrap_or_else(|| Err(anyhow!("key parser panicked")))
}

fn read_inner(block: &[u8], hosts: &dyn Fn(&str) -> bool) -> Result<Vec<Cert>> {
    let mut certs: Vec<Vec<Packet>> = Vec::new();
    // Whether the component being read is kept, and its signatures so far.
    let mut keep = false;
    let mut sigs = 0usize;
    let mut subkeys = 0usize;
    let (mut hosted, mut other) = (0usize, 0usize);
    let mut ppr = PacketParser::from_bytes(block)?;
    while let PacketParserResult::Some(pp) = ppr {
        let (packet, next) = pp.next()?;
        ppr = next;
        match packet {
            Packet::PublicKey(_) | Packet::SecretKey(_) => {
                if certs.len() == 2 {
                    break; // two are already too many
                }
                certs.push(vec![packet]);
                (keep, sigs, subkeys, hosted, other) = (true, 0, 0, 0, 0);
            }
            Packet::PublicSubkey(_) | Packet::SecretSubkey(_) => {
                subkeys += 1;
                keep = subkeys <= MAX_SUBKEYS + 1;
                sigs = 0;
                if keep {
                    if let Some(c) = certs.last_mut() {
                        c.push(packet)
                    }
                }
            }
            Packet::UserID(ref u) => {
                keep = if hosted_uid(u, hosts) {
                    hosted += 1;
                    hosted <= UIDS_HOSTED
                } else {
                    other += 1;
                    other <= UIDS_OTHER
                };
                sigs = 0;
                if keep {
                    if let Some(c) = certs.last_mut() {
                        c.push(packet)
                    }
                }
            }
            Packet::UserAttribute(_) => keep = false,
            Packet::Signature(_) => {
                sigs += 1;
                if keep && sigs <= SIGS_READ {
                    if let Some(c) = certs.last_mut() {
                        c.push(packet)
                    }
                }
            }
            _ => {}
        }
    }
    certs.into_iter().map(|p| Cert::from_packets(p.into_iter())).collect()
}

/// The nym key as it is stored: the primary key with its own newest
/// self-signatures and revocations, the one User ID `address` with its
/// own, and each subkey with its bindings and revocations. Third-party
/// certifications, other User IDs and user attributes are dropped.
pub fn strip_to_nym(cert: &Cert, address: &str) -> Result<Cert> {
    guarded(|| strip_inner(cert, address)).unwrap_or_else(|| Err(anyhow!("key strip panicked")))
}

fn newest<'a>(sigs: impl Iterator<Item = &'a Signature>) -> Vec<Packet> {
    let mut v: Vec<&Signature> = sigs.collect();
    v.sort_by_key(|s| std::cmp::Reverse(s.signature_creation_time()));
    v.into_iter().take(SIGS_KEPT).map(|s| Packet::from(s.clone())).collect()
}

fn strip_inner(cert: &Cert, address: &str) -> Result<Cert> {
    let pk = cert.primary_key();
    let mut p: Vec<Packet> = vec![Packet::from(pk.key().clone())];
    p.extend(newest(pk.self_signatures()));
    p.extend(newest(pk.self_revocations()));
    for ua in cert.userids() {
        let ours = ua.userid().email().ok().flatten().is_some_and(|e| e.eq_ignore_ascii_case(address));
        if ours {
            p.push(Packet::from(ua.userid().clone()));
            p.extend(newest(ua.self_signatures()));
            p.extend(newest(ua.self_revocations()));
        }
    }
    for ka in cert.keys().subkeys().take(MAX_SUBKEYS) {
        p.push(Packet::from(ka.key().clone()));
        p.extend(newest(ka.self_signatures()));
        p.extend(newest(ka.self_revocations()));
    }
    Cert::from_packets(p.into_iter())
}

/// Whether a stored key stays within the bounds: subkeys and size.
pub fn within_bounds(cert: &Cert) -> bool {
    cert.keys().subkeys().count() <= MAX_SUBKEYS
        && cert.to_vec().map(|b| b.len() <= MAX_STORED).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::nym;
    use super::*;
    use openpgp::cert::prelude::*;
    use openpgp::serialize::Serialize;

    fn hosted(d: &str) -> bool {
        d == "nym.example"
    }

    fn armor(c: &Cert) -> Vec<u8> {
        let mut w = openpgp::armor::Writer::new(Vec::new(), openpgp::armor::Kind::PublicKey).unwrap();
        c.serialize(&mut w).unwrap();
        w.finalize().unwrap()
    }

    /// `n` User IDs outside our domains and `n` third-party certifications.
    fn flooded(base: &Cert, n: usize) -> Cert {
        let (other, _) = CertBuilder::general_purpose(Some("mallory@evil.example")).generate().unwrap();
        let mut signer =
            other.primary_key().key().clone().parts_into_secret().unwrap().into_keypair().unwrap();
        let uid = base.userids().next().unwrap().userid().clone();
        let mut packets: Vec<Packet> = Vec::new();
        for i in 0..n {
            packets.push(UserID::from(format!("junk {i} <junk{i}@elsewhere.example>")).into());
            let c = uid.certify(
                &mut signer,
                base,
                openpgp::types::SignatureType::GenericCertification,
                None,
                None,
            );
            packets.push(c.unwrap().into());
        }
        base.clone().insert_packets(packets).unwrap().0
    }

    #[test]
    fn user_ids_outside_our_domains_and_excess_signatures_are_not_read() {
        let base = nym("alice@nym.example");
        let big = flooded(&base, 300);
        assert!(big.userids().count() > 300);
        let read = read_key_block(&armor(&big), &hosted).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].userids().count(), 1 + UIDS_OTHER);
        // At most SIGS_READ are read per component. sequoia may move a
        // signature to the component it verifies against when it builds the
        // certificate, so the bound is on the whole, which is what keeps
        // the 300 certifications of the flood out.
        let sigs: usize = read[0].userids().map(|u| u.signatures().count()).sum();
        assert!(sigs <= SIGS_READ * (1 + UIDS_OTHER), "{sigs}");
        assert!(sigs < 300 / 4, "{sigs}");
    }

    #[test]
    fn stored_key_keeps_only_the_nyms_own_signatures() {
        let base = nym("alice@nym.example");
        let big = flooded(&base, 50);
        let stripped = strip_to_nym(&big, "alice@nym.example").unwrap();
        assert_eq!(stripped.userids().count(), 1);
        assert_eq!(stripped.userids().next().unwrap().certifications().count(), 0);
        assert_eq!(stripped.fingerprint(), base.fingerprint());
        assert!(within_bounds(&stripped));
        assert!(stripped.to_vec().unwrap().len() <= base.to_vec().unwrap().len() + 64);
    }

    #[test]
    fn repeated_flooded_refreshes_do_not_grow_the_stored_key() {
        let base = nym("alice@nym.example");
        let mut stored = strip_to_nym(&base, "alice@nym.example").unwrap();
        let size0 = stored.to_vec().unwrap().len();
        for _ in 0..4 {
            let upload = flooded(&base, 100);
            let merged =
                stored.clone().merge_public(strip_to_nym(&upload, "alice@nym.example").unwrap()).unwrap();
            stored = strip_to_nym(&merged, "alice@nym.example").unwrap();
        }
        assert_eq!(stored.to_vec().unwrap().len(), size0);
    }

    #[test]
    fn more_than_two_keys_stop_reading() {
        let a = nym("a1@nym.example");
        let b = nym("b1@nym.example");
        let c = nym("c1@nym.example");
        let mut w = openpgp::armor::Writer::new(Vec::new(), openpgp::armor::Kind::PublicKey).unwrap();
        for k in [&a, &b, &c] {
            k.serialize(&mut w).unwrap();
        }
        let block = w.finalize().unwrap();
        assert_eq!(read_key_block(&block, &hosted).unwrap().len(), 2);
    }
}
