//! Staged blobs: a hashing writer checks content and size; a writer whose source verified the
//! digest (a registry download) takes the digest as given and still checks the size, so a
//! short or long stream is never staged. Runs without root: the store lives in a temp
//! directory.

use berth_oci::Digest;
use berth_store::{Store, StoreError};
use std::io::Write;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("root"), &dir.path().join("run")).unwrap();
    (dir, store)
}

#[test]
fn hashing_writer_rejects_other_content() {
    let (_dir, store) = store();
    let mut op = store.begin_op().unwrap();
    let mut w = op.blob_writer().unwrap();
    w.write_all(b"hello").unwrap();
    let path = w.path().to_path_buf();
    let want = Digest::of(b"hullo");
    match w.finish(Some((&want, Some(5)))) {
        Err(StoreError::DigestMismatch { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(!path.exists(), "a mismatching blob is removed");
}

#[test]
fn verified_writer_keeps_the_digest_and_checks_the_size() {
    let (_dir, store) = store();
    let mut op = store.begin_op().unwrap();
    let want = Digest::of(b"hello world");
    let mut w = op.verified_blob_writer(&want).unwrap();
    w.write_all(b"hello ").unwrap();
    w.write_all(b"world").unwrap();
    let staged = w.finish(Some((&want, Some(11)))).unwrap();
    assert_eq!(staged.digest, want);
    assert_eq!(staged.size, 11);
    assert_eq!(std::fs::read(&staged.path).unwrap(), b"hello world");

    // A stream that ended early is not staged.
    let mut w = op.verified_blob_writer(&want).unwrap();
    w.write_all(b"hello").unwrap();
    let path = w.path().to_path_buf();
    match w.finish(Some((&want, Some(11)))) {
        Err(StoreError::SizeMismatch {
            expected: 11,
            actual: 5,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(!path.exists(), "a short blob is removed");

    // The digest the source verified must be the one the caller expects.
    let w = op.verified_blob_writer(&want).unwrap();
    let other = Digest::of(b"other");
    assert!(matches!(
        w.finish(Some((&other, None))),
        Err(StoreError::DigestMismatch { .. })
    ));
}
