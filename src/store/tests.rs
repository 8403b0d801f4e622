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
