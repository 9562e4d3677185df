//! Crash recovery: what a process killed at each step of a commit or delete leaves behind is
//! undone or finished by the next open.

use berth_oci::Digest;
use berth_store::Store;
use std::fs;
use std::path::Path;

fn open(dir: &Path) -> Store {
    Store::open(&dir.join("root"), &dir.join("run")).unwrap()
}

/// Fakes the staging area of an operation that died: a journal, no live lock holder.
fn dead_op(root: &Path, journal: &str) {
    let op = root.join("tmp/op-dead");
    fs::create_dir_all(&op).unwrap();
    fs::write(op.join("lock"), "").unwrap();
    fs::write(op.join("journal"), journal).unwrap();
}

#[test]
fn a_layer_placed_without_its_row_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let root = dir.path().join("root");
    let chain = Digest::of(b"layer");
    let placed = root.join("layers").join(chain.hex());
    fs::create_dir_all(placed.join("etc")).unwrap();
    fs::write(placed.join("etc/x"), "x").unwrap();
    let blob = root.join("blobs/sha256").join(Digest::of(b"blob").hex());
    fs::write(&blob, "blob").unwrap();
    dead_op(
        &root,
        &format!("placed\t{}\nplaced\t{}\n", placed.display(), blob.display()),
    );

    let store = open(dir.path());
    assert!(!placed.exists(), "the orphaned layer dir is removed");
    assert!(!blob.exists(), "the orphaned blob is removed");
    assert!(
        !root.join("tmp/op-dead").exists(),
        "the dead staging area is removed"
    );
    assert!(!store.has_layer(&chain).unwrap());
}

#[test]
fn a_torn_journal_line_is_ignored_and_live_operations_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let root = dir.path().join("root");
    let live = store.begin_op().unwrap();
    let staged = live.dir().to_path_buf();
    dead_op(&root, "placed");
    drop(open(dir.path()));
    assert!(
        staged.exists(),
        "a live operation's staging area survives another process's open"
    );
    assert!(!root.join("tmp/op-dead").exists());
    live.finish();
    assert!(!staged.exists());
}

#[test]
fn a_trashed_path_whose_row_survived_is_restored() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    // A real image with one layer, committed normally.
    let mut store = open(dir.path());
    let mut op = store.begin_op().unwrap();
    let layer_dir = op.layer_dir().unwrap();
    fs::write(layer_dir.path.join("f"), "content").unwrap();
    let blob = op.stage_bytes(b"layer-bytes").unwrap();
    let config = op.stage_bytes(b"{}").unwrap();
    let diff = blob.digest.clone();
    let commit = berth_store::ImageCommit {
        id: config.digest.clone(),
        config_json: "{}".into(),
        created: "2026-01-01T00:00:00Z".into(),
        manifest: None,
        blobs: vec![
            berth_store::BlobCommit {
                digest: config.digest.clone(),
                size: config.size,
                media_type: None,
                staged: Some(config.clone()),
            },
            berth_store::BlobCommit {
                digest: blob.digest.clone(),
                size: blob.size,
                media_type: None,
                staged: Some(blob.clone()),
            },
        ],
        layers: vec![berth_store::LayerCommit {
            chain_id: diff.clone(),
            diff_id: diff.clone(),
            parent: None,
            size: 7,
            blob: None,
            staged: Some(layer_dir),
        }],
        tags: vec!["docker.io/library/x:latest".into()],
        repo_digests: vec![],
        parent: None,
    };
    store.commit_image(&mut op, &commit).unwrap();
    op.finish();
    let placed = root.join("layers").join(diff.hex());
    assert!(placed.join("f").exists());

    // A delete that moved the layer to its trash and died before committing.
    let trash = root.join("tmp/op-dead/trash-1");
    fs::create_dir_all(root.join("tmp/op-dead")).unwrap();
    fs::rename(&placed, &trash).unwrap();
    dead_op(
        &root,
        &format!("trashed\t{}\t{}\n", placed.display(), trash.display()),
    );
    drop(store);
    let store = open(dir.path());
    assert!(
        placed.join("f").exists(),
        "the layer is back where its row says it is"
    );
    assert!(store.has_layer(&diff).unwrap());
    assert_eq!(store.images().unwrap().len(), 1);
}

/// An operation between creating its directory and locking it (it holds `tmp/.create.lock`
/// shared meanwhile) is not taken for a dead one by a recovery in another process: recovery
/// waits for the creation, then sees the lock held. Six concurrent imports lost their staging
/// directories to this race.
#[test]
fn an_operation_being_created_is_not_taken_for_dead() {
    use rustix::fs::{flock, FlockOperation};
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let tmp = dir.path().join("root/tmp");
    let creating = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(tmp.join(".create.lock"))
        .unwrap();
    flock(&creating, FlockOperation::LockShared).unwrap();
    let op = tmp.join("op-being-created");
    fs::create_dir(&op).unwrap();

    let path = dir.path().to_path_buf();
    let recovering = std::thread::spawn(move || drop(open(&path)));
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        op.exists(),
        "recovery removed a directory still being created"
    );
    // The operation locks its directory, then lets creations go.
    let lock = fs::File::create(op.join("lock")).unwrap();
    flock(&lock, FlockOperation::LockExclusive).unwrap();
    drop(creating);
    recovering.join().unwrap();
    assert!(op.exists(), "recovery removed a live operation");
}
