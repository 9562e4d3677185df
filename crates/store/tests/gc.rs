//! Reference counts: an image's layers and blobs are shared with every image whose stack holds
//! them, and deleting an image removes (rows and files, in one transaction) exactly what no
//! remaining image references. Runs without root: the store lives in a temp directory.

use berth_oci::Digest;
use berth_store::{BlobCommit, ImageCommit, LayerCommit, Store, StoreError};
use std::collections::BTreeSet;

/// Commits an image made of `layers` (names) with a config blob named after `name`; layers and
/// blobs the store already has are not staged again.
fn commit(store: &mut Store, name: &str, layers: &[&str]) -> Digest {
    let mut op = store.begin_op().unwrap();
    let mut commit_layers = Vec::new();
    let mut blobs = Vec::new();
    for l in layers {
        let chain_id = Digest::of(format!("chain {l}").as_bytes());
        let staged = if store.has_layer(&chain_id).unwrap() {
            None
        } else {
            let dir = op.layer_dir().unwrap();
            std::fs::write(dir.path.join(l), l).unwrap();
            Some(dir)
        };
        commit_layers.push(LayerCommit {
            chain_id,
            diff_id: Digest::of(format!("diff {l}").as_bytes()),
            parent: None,
            size: 10,
            blob: None,
            staged,
        });
        let bytes = format!("layer blob {l}");
        let digest = Digest::of(bytes.as_bytes());
        let staged = if store.has_blob(&digest).unwrap() {
            None
        } else {
            Some(op.stage_bytes(bytes.as_bytes()).unwrap())
        };
        blobs.push(BlobCommit {
            digest,
            size: bytes.len() as u64,
            media_type: None,
            staged,
        });
    }
    let config = format!("{{\"name\":\"{name}\"}}");
    let id = Digest::of(config.as_bytes());
    blobs.push(BlobCommit {
        digest: id.clone(),
        size: config.len() as u64,
        media_type: None,
        staged: Some(op.stage_bytes(config.as_bytes()).unwrap()),
    });
    store
        .commit_image(
            &mut op,
            &ImageCommit {
                id: id.clone(),
                config_json: config,
                created: "2024-01-01T00:00:00Z".into(),
                manifest: None,
                blobs,
                layers: commit_layers,
                tags: vec![format!("{name}:latest")],
                repo_digests: Vec::new(),
                parent: None,
            },
        )
        .unwrap();
    op.finish();
    id
}

fn chain(l: &str) -> Digest {
    Digest::of(format!("chain {l}").as_bytes())
}

fn layer_blob(l: &str) -> Digest {
    Digest::of(format!("layer blob {l}").as_bytes())
}

fn names(v: &[(String, u64)]) -> BTreeSet<String> {
    v.iter().map(|(n, _)| n.clone()).collect()
}

#[test]
fn deleting_an_image_keeps_what_another_image_shares() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("root"), &dir.path().join("run")).unwrap();
    let a = commit(&mut store, "a", &["base", "a1"]);
    let b = commit(&mut store, "b", &["base", "b1"]);
    assert_eq!(store.images().unwrap().len(), 2);

    let removed = store.delete_image(&a.to_string()).unwrap();
    assert_eq!(
        names(&removed.layers),
        BTreeSet::from([chain("a1").to_string()])
    );
    assert_eq!(
        names(&removed.blobs),
        BTreeSet::from([layer_blob("a1").to_string(), a.to_string()])
    );
    assert_eq!(removed.layers[0].1, 10, "the layer's recorded size");
    assert!(store.has_layer(&chain("base")).unwrap());
    assert!(store.layer_path(&chain("base")).join("base").is_file());
    assert!(!store.has_layer(&chain("a1")).unwrap());
    assert!(
        !store.layer_path(&chain("a1")).exists(),
        "the files go with the row"
    );
    assert!(!store.blob_path(&a).exists());
    assert!(store.has_blob(&layer_blob("base")).unwrap());
    assert_eq!(store.resolve_name("a:latest").unwrap(), None);
    assert_eq!(store.resolve_name("b:latest").unwrap(), Some(b.to_string()));

    // The last user of the base goes: nothing is left.
    let removed = store.delete_image(&b.to_string()).unwrap();
    assert_eq!(
        names(&removed.layers),
        BTreeSet::from([chain("base").to_string(), chain("b1").to_string()])
    );
    assert_eq!(removed.blobs.len(), 3);
    assert!(!store.layer_path(&chain("base")).exists());
    let (images, layers, blobs, _) = store.counts().unwrap();
    assert_eq!((images, layers, blobs), (0, 0, 0));
    let layers_left = std::fs::read_dir(dir.path().join("root/layers"))
        .unwrap()
        .count();
    assert_eq!(layers_left, 0);
}

#[test]
fn a_layer_committed_again_is_shared_not_copied() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("root"), &dir.path().join("run")).unwrap();
    let a = commit(&mut store, "a", &["base"]);
    let b = commit(&mut store, "b", &["base"]);
    assert_eq!(store.image_layers(&a.to_string()).unwrap().len(), 1);
    assert_eq!(store.image_layers(&b.to_string()).unwrap().len(), 1);
    let removed = store.delete_image(&b.to_string()).unwrap();
    assert!(removed.layers.is_empty(), "{removed:?}");
    assert_eq!(names(&removed.blobs), BTreeSet::from([b.to_string()]));
    assert!(matches!(
        store.delete_image(&b.to_string()),
        Err(StoreError::ImageNotFound(_))
    ));
}
