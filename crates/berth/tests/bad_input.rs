//! Bad input and interruptions: one clear line on stderr, exit code 1, and the store exactly as
//! before.

mod common;

use common::{busybox_tar, scratch_dir, sh, Berth};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// What a store looks like from outside: images, layer dirs, blobs, leftovers.
fn snapshot(b: &Berth) -> (String, Vec<PathBuf>, Vec<PathBuf>) {
    let images = b.ok(&["images", "-a", "-q", "--no-trunc"]);
    assert!(
        b.staged_leftovers().is_empty(),
        "staging leftovers: {:?}",
        b.staged_leftovers()
    );
    (images, b.layer_dirs(), b.blobs())
}

fn one_line_error(err: &str) {
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "expected one line on stderr, got:\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

fn write_file(name: &str, bytes: &[u8]) -> PathBuf {
    let p = scratch_dir().join(format!("{}-{name}", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A docker-archive tar built from parts.
fn archive(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn small_layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    b.append_data(&mut h, "hello.txt", &b"hello"[..]).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn import_errors_leave_the_store_unchanged() {
    let b = Berth::new();
    b.import_busybox("busybox");
    let before = snapshot(&b);

    let (code, err) = b.fails(&["import", "/nonexistent/rootfs.tar"]);
    assert_eq!(code, 1);
    one_line_error(&err);
    assert!(
        err.contains("open /nonexistent/rootfs.tar") && err.contains("No such file"),
        "{err}"
    );

    let mut garbage = vec![0u8; 10_000];
    for (i, b) in garbage.iter_mut().enumerate() {
        *b = (i * 7 + 13) as u8;
    }
    let junk = write_file("junk.tar", &garbage);
    let (code, err) = b.fails(&["import", junk.to_str().unwrap(), "junk"]);
    assert_eq!(code, 1);
    one_line_error(&err);
    assert!(err.contains("importing"), "{err}");

    // A gzip stream cut in half.
    let gz = scratch_dir().join(format!("{}-cut.tar.gz", std::process::id()));
    sh(&format!(
        "gzip -c {} | head -c 300000 > {}",
        busybox_tar().display(),
        gz.display()
    ));
    let (code, err) = b.fails(&["import", gz.to_str().unwrap(), "cut"]);
    assert_eq!(code, 1);
    one_line_error(&err);

    let empty = write_file("empty.tar", b"");
    let (code, err) = b.fails(&["import", empty.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("empty"), "{err}");

    let (code, err) = b.fails(&[
        "import",
        busybox_tar().to_str().unwrap(),
        "Not/Valid:Name:x",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid reference format"), "{err}");

    assert_eq!(snapshot(&b), before);
}

#[test]
fn load_rejects_mismatched_and_unknown_content() {
    let b = Berth::new();
    let before = snapshot(&b);
    let layer = small_layer();
    let layer_hex = sha256_hex(&layer);

    // A diff_id that does not match the layer's content.
    let wrong = "0".repeat(64);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["sha256:{wrong}"]}}}}"#
    );
    let manifest = r#"[{"Config":"config.json","RepoTags":["bad:diffid"],"Layers":["layer.tar"]}]"#;
    let tar = write_file(
        "diffid.tar",
        &archive(&[
            ("config.json", config.into_bytes()),
            ("layer.tar", layer.clone()),
            ("manifest.json", manifest.into()),
        ]),
    );
    let (code, err) = b.fails(&["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(code, 1);
    one_line_error(&err);
    assert!(err.contains("does not match the diff_id"), "{err}");

    // The right diff_id loads.
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["sha256:{layer_hex}"]}}}}"#
    );
    let good_manifest =
        r#"[{"Config":"config.json","RepoTags":["good:1"],"Layers":["layer.tar"]}]"#;
    let good = write_file(
        "good.tar",
        &archive(&[
            ("manifest.json", good_manifest.into()),
            ("layer.tar", layer.clone()),
            ("config.json", config.clone().into_bytes()),
        ]),
    );
    let c = Berth::new();
    assert_eq!(
        c.ok(&["load", "-i", good.to_str().unwrap()]).trim(),
        "Loaded image: good:1"
    );

    // OCI layout: a manifest whose digest does not match its content, and an unknown layer type.
    let config_hex = sha256_hex(config.as_bytes());
    let oci_manifest = |layer_type: &str| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{config_hex}","size":{}}},"layers":[{{"mediaType":"{layer_type}","digest":"sha256:{layer_hex}","size":{}}}]}}"#,
            config.len(),
            layer.len()
        )
    };
    let layout = |manifest: &str, manifest_name_hex: &str| {
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{manifest_name_hex}","size":{},"annotations":{{"io.containerd.image.name":"docker.io/library/oci:1"}}}}]}}"#,
            manifest.len()
        );
        archive(&[
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            ("index.json", index.into_bytes()),
            (
                &format!("blobs/sha256/{manifest_name_hex}"),
                manifest.as_bytes().to_vec(),
            ),
            (
                &format!("blobs/sha256/{config_hex}"),
                config.as_bytes().to_vec(),
            ),
            (&format!("blobs/sha256/{layer_hex}"), layer.clone()),
        ])
    };
    let good_m = oci_manifest("application/vnd.oci.image.layer.v1.tar");
    let ok_tar = write_file(
        "oci-ok.tar",
        &layout(&good_m, &sha256_hex(good_m.as_bytes())),
    );
    let d = Berth::new();
    assert_eq!(
        d.ok(&["load", "-i", ok_tar.to_str().unwrap()]).trim(),
        "Loaded image: oci:1"
    );

    let lying = write_file("oci-lying.tar", &layout(&good_m, &"a".repeat(64)));
    let (code, err) = b.fails(&["load", "-i", lying.to_str().unwrap()]);
    assert_eq!(code, 1);
    one_line_error(&err);
    assert!(
        err.contains("missing") || err.contains("does not match"),
        "{err}"
    );

    let odd_m = oci_manifest("application/vnd.example.unknown");
    let odd = write_file(
        "oci-odd.tar",
        &layout(&odd_m, &sha256_hex(odd_m.as_bytes())),
    );
    let (code, err) = b.fails(&["load", "-i", odd.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("unsupported media type application/vnd.example.unknown"),
        "{err}"
    );

    let not_image = write_file("notimage.tar", &archive(&[("hello.txt", b"hi".to_vec())]));
    let (code, err) = b.fails(&["load", "-i", not_image.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("neither manifest.json"), "{err}");

    let truncated = write_file("truncated.tar", &std::fs::read(&good).unwrap()[..1536]);
    let (code, err) = b.fails(&["load", "-i", truncated.to_str().unwrap()]);
    assert_eq!(code, 1);
    one_line_error(&err);

    assert_eq!(snapshot(&b), before);
}

/// Writes a tar holding one file of `size` pseudo-random bytes.
fn big_tar(path: &Path, size: u64) {
    if path.exists() {
        return;
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_path("data.bin").unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    file.write_all(h.as_bytes()).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        file.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    let pad = (512 - (size % 512) as usize) % 512;
    file.write_all(&vec![0u8; pad + 1024]).unwrap();
}

#[test]
fn kill_9_mid_import_loses_nothing_and_leaves_nothing() {
    let b = Berth::new();
    b.import_busybox("busybox");
    let before = snapshot(&b);
    let big = scratch_dir().join("big-64m-v2.tar");
    big_tar(&big, 64 << 20);

    let mut child = b
        .command()
        .args(["import", "-", "big"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let data = std::fs::read(&big).unwrap();
    let stdin = child.stdin.as_mut().unwrap();
    stdin.write_all(&data[..40 << 20]).unwrap();
    stdin.flush().unwrap();
    // Give it time to stage what it has read, then kill it without warning.
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let staged_by_dead_import = b.staged_leftovers();
    assert_eq!(
        staged_by_dead_import.len(),
        1,
        "the killed import left its staging area"
    );

    // The next command recovers: the store is exactly as before.
    assert_eq!(snapshot(&b), before);
    // And the whole import works afterwards.
    b.ok(&["import", big.to_str().unwrap(), "big"]);
    assert_eq!(
        b.ok(&["images", "--format", "{{.Repository}}", "big"])
            .trim(),
        "big"
    );
}

#[test]
fn concurrent_imports_of_one_layer_share_it() {
    let b = Berth::new();
    let tar = busybox_tar();
    let children: Vec<_> = (0..6)
        .map(|i| {
            b.command()
                .args(["import", tar.to_str().unwrap(), &format!("same:{i}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(b.ok(&["images", "-q"]).lines().count(), 6);
    assert_eq!(b.layer_dirs().len(), 1, "one layer directory for one layer");
    assert!(b.staged_leftovers().is_empty());
}

#[test]
fn a_full_disk_is_a_clear_error() {
    let b = Berth::new();
    // A 1 MiB tmpfs as the store: the 2 MB busybox layer cannot fit.
    let root = b.root();
    std::fs::create_dir_all(&root).unwrap();
    sh(&format!(
        "mount -t tmpfs -o size=1m berth-test-full {}",
        root.display()
    ));
    let out = b.run(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let images = b.run(&["images", "-q"]);
    let leftovers = b.staged_leftovers();
    sh(&format!("umount {}", root.display()));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("no space left on device") || err.contains("No space left on device"),
        "{err}"
    );
    one_line_error(&err);
    assert!(images.status.success());
    assert_eq!(String::from_utf8_lossy(&images.stdout), "");
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
