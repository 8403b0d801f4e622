//! The store's own rules, on a real SQLite file in a temporary directory.

use super::*;
use std::time::Duration;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("t.db"), Duration::from_secs(1)).unwrap();
    (dir, s)
}

fn item(id: &str) -> OutItem {
    OutItem {
        kind: Kind::News,
        env_from: String::new(),
        env_to: vec![],
        msgid: id.into(),
        body: b"x".to_vec(),
        nym: None,
    }
}

#[test]
fn migrations_run_once_and_reopen_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let mut s = Store::open(&path, Duration::from_secs(1)).unwrap();
        let tx = s.write().unwrap();
        enqueue(&tx, &item("<a@b>"), 0, 0).unwrap();
        tx.commit().unwrap();
    }
    let s = Store::open(&path, Duration::from_secs(1)).unwrap();
    assert_eq!(outbox_counts(&s, 10).unwrap(), (1, 1));
}

#[test]
fn rolled_back_transaction_leaves_nothing() {
    let (_d, mut s) = open();
    {
        let tx = s.write().unwrap();
        enqueue(&tx, &item("<a@b>"), 0, 0).unwrap();
        // dropped without commit
    }
    assert_eq!(outbox_counts(&s, 10).unwrap(), (0, 0));
}

#[test]
fn claimed_items_are_not_claimed_twice_until_the_lease_ends() {
    let (_d, mut s) = open();
    let tx = s.write().unwrap();
    enqueue(&tx, &item("<a@b>"), 100, 0).unwrap();
    enqueue(&tx, &item("<later@b>"), 500, 0).unwrap();
    tx.commit().unwrap();
    let tx = s.write().unwrap();
    let got = claim_due(&tx, 200, 60, 10, false).unwrap();
    tx.commit().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.msgid, "<a@b>");
    let tx = s.write().unwrap();
    assert!(claim_due(&tx, 250, 60, 10, false).unwrap().is_empty());
    assert_eq!(claim_due(&tx, 261, 60, 10, false).unwrap().len(), 1);
}

#[test]
fn reserved_item_is_left_to_its_process() {
    let (_d, mut s) = open();
    let tx = s.write().unwrap();
    enqueue(&tx, &item("<mine@b>"), 100, 400).unwrap();
    assert!(claim_due(&tx, 200, 60, 10, false).unwrap().is_empty());
    assert_eq!(claim_due(&tx, 400, 60, 10, false).unwrap().len(), 1);
}

#[test]
fn failed_hand_off_counts_attempts_and_done_forgets() {
    let (_d, mut s) = open();
    let tx = s.write().unwrap();
    let id = enqueue(&tx, &item("<a@b>"), 0, 0).unwrap();
    tx.commit().unwrap();
    failed(&s, id, "refused", 1000, false).unwrap();
    failed(&s, id, "refused", 2000, true).unwrap();
    assert_eq!(attempts(&s, id).unwrap(), 2);
    assert_eq!(age_and_refusals(&s, id).unwrap().1, 1);
    assert_eq!(outbox_counts(&s, 1500).unwrap(), (1, 0));
    done(&s, id).unwrap();
    assert_eq!(outbox_counts(&s, 5000).unwrap(), (0, 0));
}

#[test]
fn bodies_round_trip_through_the_blob_api() {
    let (_d, mut s) = open();
    let mut it = item("<big@b>");
    it.kind = Kind::Mail;
    it.env_from = "a@b".into();
    it.env_to = vec!["x@y".into(), "z@w".into()];
    it.body = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let tx = s.write().unwrap();
    enqueue(&tx, &it, 0, 0).unwrap();
    let got = claim_due(&tx, 1, 60, 1, false).unwrap();
    assert_eq!(got[0].1, it);
}

#[test]
fn replay_cache_refuses_a_second_insert_and_prunes_by_age() {
    let (_d, s) = open();
    let tx = s.unchecked().unwrap();
    assert!(replay_insert(&tx, b"sig", 100).unwrap());
    assert!(!replay_insert(&tx, b"sig", 101).unwrap());
    assert!(replay_seen(&tx, b"sig").unwrap());
    assert_eq!(replay_prune(&tx, 100).unwrap(), 0);
    assert_eq!(replay_prune(&tx, 101).unwrap(), 1);
    assert!(!replay_seen(&tx, b"sig").unwrap());
}

#[test]
fn delivery_mark_refuses_a_retried_delivery() {
    let (_d, s) = open();
    let tx = s.unchecked().unwrap();
    assert!(received_insert(&tx, b"d", 1).unwrap());
    assert!(!received_insert(&tx, b"d", 2).unwrap());
    assert_eq!(received_prune(&tx, 5).unwrap(), 1);
}

#[test]
fn held_messages_are_found_by_key_id_until_they_expire() {
    let (_d, s) = open();
    let tx = s.unchecked().unwrap();
    let keys = vec!["K1".to_string(), "K2".to_string()];
    let id = hold(&tx, "send@d", b"msg", &keys, 10, 100).unwrap();
    let found = held_for(&tx, &["K2".into(), "K1".into()], 50).unwrap();
    assert_eq!(found, vec![(id, "send@d".to_string(), b"msg".to_vec())]);
    assert!(held_for(&tx, &["K3".into()], 50).unwrap().is_empty());
    assert!(held_for(&tx, &keys, 100).unwrap().is_empty());
    assert_eq!(expire_holds(&tx, 100).unwrap(), 1);
}

#[test]
fn busy_database_is_transient() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let mut a = Store::open(&path, Duration::from_millis(50)).unwrap();
    let mut b = Store::open(&path, Duration::from_millis(50)).unwrap();
    let _held = a.write().unwrap();
    let e = b.write().err().expect("second writer must wait and fail");
    assert!(is_transient(&e));
    assert!(!is_transient(&anyhow::anyhow!("some other problem")));
}

#[test]
fn held_counts_per_key_and_in_all() {
    let (_d, s) = open();
    let tx = s.unchecked().unwrap();
    hold(&tx, "send@d", b"12345", &["K1".into()], 0, 100).unwrap();
    hold(&tx, "send@d", b"123", &["K1".into(), "K2".into()], 0, 100).unwrap();
    assert_eq!(held_counts(&tx, &["K1".into()]).unwrap(), (2, 2, 8));
    assert_eq!(held_counts(&tx, &["K2".into(), "K3".into()]).unwrap(), (1, 2, 8));
}

#[test]
fn give_up_leaves_a_content_free_row() {
    let (_d, mut s) = open();
    let tx = s.write().unwrap();
    let id = enqueue(&tx, &item("<a@b>"), 0, 0).unwrap();
    give_up(&tx, id, Kind::News, "too_old", 5).unwrap();
    tx.commit().unwrap();
    assert_eq!(outbox_counts(&s, 10).unwrap(), (0, 0));
    assert_eq!(given_up_counts(&s).unwrap(), vec![("news".to_string(), "too_old".to_string(), 1)]);
}

#[test]
fn queue_retry_and_drop_find_items_by_id() {
    let (_d, mut s) = open();
    let tx = s.write().unwrap();
    let id = enqueue(&tx, &item("<a@b>"), 1000, 0).unwrap();
    tx.commit().unwrap();
    assert!(queue_retry(&s, id, 10).unwrap());
    assert_eq!(outbox_counts(&s, 10).unwrap(), (1, 1));
    assert!(!queue_retry(&s, id + 1, 10).unwrap());
    assert!(queue_drop(&s, id).unwrap());
    assert!(!queue_drop(&s, id).unwrap());
}

#[test]
fn the_pool_holds_untried_items_and_claims_only_what_was_chosen() {
    let (_d, mut s) = open();
    let tx = s.write().unwrap();
    let a = enqueue(&tx, &item("<a@b>"), 100, 0).unwrap();
    let b = enqueue(&tx, &item("<b@b>"), 100, 0).unwrap();
    let later = enqueue(&tx, &item("<later@b>"), 900, 0).unwrap();
    tx.commit().unwrap();
    failed(&s, b, "refused", 150, false).unwrap();
    let tx = s.write().unwrap();
    // b was tried: a retry, not part of the pool; `later` is not due.
    let waiting: Vec<i64> = pool_waiting(&tx, 200).unwrap().into_iter().map(|(id, _)| id).collect();
    assert_eq!(waiting, vec![a]);
    let retries = claim_due(&tx, 200, 60, 10, true).unwrap();
    assert_eq!(retries.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![b]);
    let got = claim_ids(&tx, &[a, later], 200, 60).unwrap();
    assert_eq!(got.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![a, later]);
    // Claimed now: neither claimed again nor in the pool.
    assert!(claim_ids(&tx, &[a], 210, 60).unwrap().is_empty());
    assert!(pool_waiting(&tx, 210).unwrap().is_empty());
}

fn test_cert() -> crate::openpgp::PgpCert {
    crate::openpgp::parse_certs(include_bytes!("../../fuzz/seeds/openpgp/nym-key.asc")).unwrap().remove(0)
}

fn new_nym<'a>(local: &'a str, cert: &'a crate::openpgp::PgpCert, flags: u32) -> NewNym<'a> {
    NewNym {
        local,
        domain: "nym.example",
        cert,
        expires: None,
        hsub: None,
        subject: None,
        symmetric: None,
        flags,
        name: Some("Quill Pen"),
        had_active: false,
    }
}

#[test]
fn migration_4_moves_acksend_into_flag_bit_0x100() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let cert = test_cert();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        for step in &MIGRATIONS[..3] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        let bytes = crate::openpgp::cert_bytes(&cert).unwrap();
        for (local, fpr, ack) in [("on", "F1", 1), ("off", "F2", 0)] {
            conn.execute(
                "INSERT INTO nyms(local, domain, fingerprint, cert, created, acksend) VALUES (?1, 'nym.example', ?2, ?3, 0, ?4)",
                rusqlite::params![local, fpr, bytes, ack],
            )
            .unwrap();
        }
    }
    let s = Store::open(&path, Duration::from_secs(1)).unwrap();
    let on = nym_by_address(&s, "on", "nym.example").unwrap().unwrap();
    let off = nym_by_address(&s, "off", "nym.example").unwrap().unwrap();
    assert_eq!((on.flags, off.flags), (0x1fd, 0xfd));
    assert!(on.acksend() && !off.acksend());
    assert!(on.had_active && on.name.is_none() && on.active_blocks == 0);
}

#[test]
fn flags_name_and_units_round_trip_with_unknown_bits() {
    let (_d, mut s) = open();
    let cert = test_cert();
    let tx = s.write().unwrap();
    let id = insert_nym(&tx, &new_nym("quill", &cert, 0x8000_00fd)).unwrap();
    let mut n = nym_by_id(&tx, id).unwrap().unwrap();
    assert_eq!(n.flags, 0x8000_00fd);
    assert_eq!(n.name.as_deref(), Some("Quill Pen"));
    assert!(!n.had_active);
    n.flags |= 0x1000;
    n.name = None;
    update_options(&tx, &n).unwrap();
    set_units(&tx, id, 20000, 17).unwrap();
    tx.commit().unwrap();
    let n = nym_by_id(&s, id).unwrap().unwrap();
    assert_eq!((n.flags, n.name, n.unit_day, n.unit_count), (0x8000_10fd, None, 20000, 17));
}

#[test]
fn pending_set_replaces_the_older_one_and_activation_replaces_active_blocks() {
    let (_d, mut s) = open();
    let cert = test_cert();
    let b = |t: &str, set: Option<(char, u32)>| StoredBlock { set, text: t.into() };
    let tx = s.write().unwrap();
    let id = insert_nym(&tx, &new_nym("quill", &cert, 0xfd)).unwrap();
    replace_pending(&tx, id, &[b("one\n\n", None)], &[1u8; 32], 100).unwrap();
    replace_pending(
        &tx,
        id,
        &[b("a\n\n", Some(('a', 700_000_000))), b("b\n\n", Some(('a', 300_000_000)))],
        &[2u8; 32],
        200,
    )
    .unwrap();
    assert_eq!(pending_by_cookie(&tx, &[1u8; 32]).unwrap(), None, "the older cookie is gone");
    assert_eq!(pending_by_cookie(&tx, &[2u8; 32]).unwrap(), Some(PendingSet { nym_id: id, created: 200 }));
    assert_eq!(pending_blocks(&tx, id).unwrap().len(), 2);
    let n = nym_by_id(&tx, id).unwrap().unwrap();
    assert_eq!((n.active_blocks, n.pending_blocks), (0, 2));
    activate_pending(&tx, id).unwrap();
    assert_eq!(pending_by_cookie(&tx, &[2u8; 32]).unwrap(), None, "single use");
    let active = active_blocks(&tx, id).unwrap();
    assert_eq!(active, vec![b("a\n\n", Some(('a', 700_000_000))), b("b\n\n", Some(('a', 300_000_000)))]);
    let n = nym_by_id(&tx, id).unwrap().unwrap();
    assert!(n.had_active && n.via_blocks());
    // A new set waits; the active blocks stay in force until it is confirmed.
    replace_pending(&tx, id, &[b("new\n\n", None)], &[3u8; 32], 300).unwrap();
    assert_eq!(active_blocks(&tx, id).unwrap().len(), 2);
    assert_eq!(expired_pending(&tx, 299).unwrap(), Vec::<i64>::new());
    assert_eq!(expired_pending(&tx, 300).unwrap(), vec![id]);
    activate_pending(&tx, id).unwrap();
    assert_eq!(active_blocks(&tx, id).unwrap(), vec![b("new\n\n", None)]);
    drop_reply_blocks(&tx, id).unwrap();
    assert!(!nym_by_id(&tx, id).unwrap().unwrap().via_blocks());
}

#[test]
fn deleting_a_nym_erases_its_blocks_and_cookie() {
    let (_d, mut s) = open();
    let cert = test_cert();
    let tx = s.write().unwrap();
    let id = insert_nym(&tx, &new_nym("quill", &cert, 0xfd)).unwrap();
    let blk = StoredBlock { set: None, text: "secret-route\n\n".into() };
    replace_pending(&tx, id, std::slice::from_ref(&blk), &[4u8; 32], 1).unwrap();
    activate_pending(&tx, id).unwrap();
    replace_pending(&tx, id, &[blk], &[5u8; 32], 2).unwrap();
    delete_nym(&tx, id).unwrap();
    tx.commit().unwrap();
    let rows: i64 = s.conn.query_row("SELECT COUNT(*) FROM reply_blocks", [], |r| r.get(0)).unwrap();
    let sets: i64 = s.conn.query_row("SELECT COUNT(*) FROM pending_sets", [], |r| r.get(0)).unwrap();
    assert_eq!((rows, sets), (0, 0));
    assert_eq!(pending_by_cookie(&s, &[5u8; 32]).unwrap(), None);
}

#[test]
fn key_rollover_changes_fingerprint_and_key_index() {
    let (_d, mut s) = open();
    let cert = test_cert();
    let tx = s.write().unwrap();
    let id = insert_nym(&tx, &new_nym("quill", &cert, 0xfd)).unwrap();
    sealed::HasConn::conn(&tx).execute("UPDATE nyms SET fingerprint = 'OLD' WHERE id = ?1", [id]).unwrap();
    replace_key(&tx, id, &cert, Some(99)).unwrap();
    let n = nym_by_id(&tx, id).unwrap().unwrap();
    assert_eq!((n.fingerprint, n.expires), (cert.fingerprint().to_hex(), Some(99)));
    assert!(!certs_by_keyids(&tx, &crate::openpgp::key_ids(&cert)).unwrap().is_empty());
}
