//! Layer extraction and creation, including hostile archives. Runs as root (mknod, chown,
//! trusted.* xattrs).

use berth_oci::layer::{
    apply_layer, create_layer, create_layer_filtered, decompress, detect_compression, ApplyStats,
    Compression, CreateOptions, LayerError,
};
use std::ffi::CString;
use std::fs;
use std::io::{BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// Crafting archives with arbitrary (evil) names.

#[derive(Clone)]
struct E {
    name: Vec<u8>,
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: Vec<u8>,
    data: Vec<u8>,
    dev: (u32, u32),
    pax: Vec<(String, Vec<u8>)>,
}

fn e(name: &str, kind: tar::EntryType) -> E {
    E {
        name: name.as_bytes().to_vec(),
        kind,
        mode: if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        },
        uid: 0,
        gid: 0,
        mtime: 1_600_000_000,
        link: Vec::new(),
        data: Vec::new(),
        dev: (0, 0),
        pax: Vec::new(),
    }
}

fn file(name: &str, data: &[u8]) -> E {
    E {
        data: data.to_vec(),
        ..e(name, tar::EntryType::Regular)
    }
}

fn dir(name: &str) -> E {
    e(name, tar::EntryType::Directory)
}

fn symlink(name: &str, target: &str) -> E {
    E {
        link: target.as_bytes().to_vec(),
        ..e(name, tar::EntryType::Symlink)
    }
}

fn hardlink(name: &str, target: &str) -> E {
    E {
        link: target.as_bytes().to_vec(),
        ..e(name, tar::EntryType::Link)
    }
}

/// Writes `entries` as a tar, names written raw into the header (no validation), with PAX
/// records where asked.
fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for en in entries {
        if !en.pax.is_empty() {
            b.append_pax_extensions(en.pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .unwrap();
        }
        let mut h = tar::Header::new_gnu();
        {
            let g = h.as_gnu_mut().unwrap();
            assert!(en.name.len() <= 100 && en.link.len() <= 100);
            g.name[..en.name.len()].copy_from_slice(&en.name);
            g.linkname[..en.link.len()].copy_from_slice(&en.link);
        }
        h.set_entry_type(en.kind);
        h.set_mode(en.mode);
        h.set_uid(en.uid);
        h.set_gid(en.gid);
        h.set_mtime(en.mtime);
        h.set_size(en.data.len() as u64);
        if matches!(en.kind, tar::EntryType::Char | tar::EntryType::Block) {
            h.set_device_major(en.dev.0).unwrap();
            h.set_device_minor(en.dev.1).unwrap();
        }
        h.set_cksum();
        b.append(&h, en.data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

/// A sentinel directory holding `root/` (the layer root) and `outside/` (with a victim file).
struct Sandbox {
    _tmp: tempfile::TempDir,
    top: PathBuf,
    root: PathBuf,
    outside: PathBuf,
}

fn sandbox() -> Sandbox {
    // BERTH_TEST_TMPDIR picks the filesystem (e.g. a tmpfs to time the extractor alone).
    let tmp = match std::env::var_os("BERTH_TEST_TMPDIR") {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let top = tmp.path().to_path_buf();
    let root = top.join("root");
    let outside = top.join("outside");
    fs::create_dir(&root).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("victim"), b"precious").unwrap();
    Sandbox {
        _tmp: tmp,
        top,
        root,
        outside,
    }
}

impl Sandbox {
    fn apply(&self, entries: &[E]) -> Result<ApplyStats, LayerError> {
        apply_layer(&tar_of(entries)[..], &self.root)
    }

    /// Nothing outside the root changed: the top holds only root/ and outside/, outside/ holds
    /// only the untouched victim.
    fn assert_contained(&self) {
        let mut top: Vec<_> = fs::read_dir(&self.top)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        top.sort();
        assert_eq!(top, ["outside", "root"]);
        let out: Vec<_> = fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(out, ["victim"]);
        let victim = self.outside.join("victim");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        let md = fs::symlink_metadata(&victim).unwrap();
        assert_eq!(md.nlink(), 1);
        assert_eq!(md.mode() & 0o7777, 0o644);
    }
}

fn getxattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let cp = CString::new(p.as_os_str().as_bytes()).unwrap();
    let cn = CString::new(name).unwrap();
    let mut buf = vec![0u8; 4096];
    let n =
        unsafe { libc::lgetxattr(cp.as_ptr(), cn.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

fn setxattr(p: &Path, name: &str, value: &[u8]) {
    let cp = CString::new(p.as_os_str().as_bytes()).unwrap();
    let cn = CString::new(name).unwrap();
    let r = unsafe {
        libc::lsetxattr(
            cp.as_ptr(),
            cn.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(r, 0, "setxattr {name} on {}", p.display());
}

fn mknod(p: &Path, mode: u32, major: u32, minor: u32) {
    let cp = CString::new(p.as_os_str().as_bytes()).unwrap();
    let r = unsafe { libc::mknod(cp.as_ptr(), mode, libc::makedev(major, minor)) };
    assert_eq!(r, 0, "mknod {}", p.display());
}

fn is_whiteout(p: &Path) -> bool {
    let md = fs::symlink_metadata(p).unwrap();
    md.file_type().is_char_device() && md.rdev() == 0
}

// ---------------------------------------------------------------------------------------------
// Hostile archives.

#[test]
fn dotdot_names_are_rejected() {
    for name in [
        "../escape",
        "a/../../escape",
        "./../escape",
        "/../escape",
        "../outside/victim",
    ] {
        let s = sandbox();
        let err = s.apply(&[file(name, b"evil")]).unwrap_err();
        assert!(matches!(err, LayerError::Breakout(_)), "{name}: {err}");
        assert_eq!(
            err.to_string(),
            format!("layer entry {name:?} escapes the layer root")
        );
        s.assert_contained();
    }
    // `..` that stays inside is only lexical.
    let s = sandbox();
    s.apply(&[dir("a/"), file("a/../b", b"ok")]).unwrap();
    assert_eq!(fs::read(s.root.join("b")).unwrap(), b"ok");
}

#[test]
fn absolute_names_are_clamped_into_the_root() {
    let s = sandbox();
    let outside_victim = s.outside.join("victim");
    let abs = outside_victim.to_str().unwrap().to_string();
    s.apply(&[file(&abs, b"evil"), file("/top-level", b"x")])
        .unwrap();
    s.assert_contained();
    let inside = s.root.join(abs.trim_start_matches('/'));
    assert_eq!(fs::read(inside).unwrap(), b"evil");
    assert_eq!(fs::read(s.root.join("top-level")).unwrap(), b"x");
}

#[test]
fn writes_through_symlinks_stay_inside() {
    let s = sandbox();
    let outside = s.outside.to_str().unwrap().to_string();
    // An absolute symlink to the outside directory, then a file and a hardlink "through" it.
    let r = s.apply(&[symlink("link", &outside), file("link/victim", b"evil")]);
    // The link resolves inside the root, where that directory does not exist.
    assert!(r.is_err(), "{r:?}");
    s.assert_contained();

    // Symlink to "/": resolves to the layer root.
    let s = sandbox();
    s.apply(&[symlink("rootlink", "/"), file("rootlink/etc/x", b"in")])
        .unwrap();
    s.assert_contained();
    assert_eq!(fs::read(s.root.join("etc/x")).unwrap(), b"in");

    // Chains of symlinks with `..` are clamped too.
    let s = sandbox();
    let r = s.apply(&[
        dir("d/"),
        symlink("d/up", "/../../../../.."),
        file("d/up/outside/victim", b"evil"),
    ]);
    s.assert_contained();
    if r.is_ok() {
        assert_eq!(fs::read(s.root.join("outside/victim")).unwrap(), b"evil");
    }

    // A symlink entry replacing a directory, then a write through it.
    let s = sandbox();
    let r = s.apply(&[dir("x/"), symlink("x", &outside), file("x/new", b"evil")]);
    assert!(r.is_err(), "{r:?}");
    s.assert_contained();
}

#[test]
fn missing_parents_behind_symlinks_never_change_host_modes() {
    // A symlink to a host file (and one to a host directory), then an entry below it: the
    // directory-creation step must not chmod what the symlink names on the host.
    let s = sandbox();
    let victim = s.outside.join("victim");
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o640)).unwrap();
    fs::set_permissions(&s.outside, fs::Permissions::from_mode(0o700)).unwrap();
    let r = s.apply(&[symlink("e", victim.to_str().unwrap()), file("e/x", b"evil")]);
    assert!(r.is_err(), "{r:?}");
    let r = s.apply(&[
        symlink("d", s.outside.to_str().unwrap()),
        file("d/sub/x", b"evil"),
    ]);
    assert!(r.is_err(), "{r:?}");
    let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&victim), 0o640, "the host file's mode changed");
    assert_eq!(mode(&s.outside), 0o700, "the host directory's mode changed");
    assert!(!s.outside.join("sub").exists());
}

#[test]
fn relative_symlinks_escaping_are_rejected() {
    let s = sandbox();
    let err = s.apply(&[symlink("esc", "../outside")]).unwrap_err();
    assert!(matches!(err, LayerError::LinkBreakout { .. }), "{err}");
    s.assert_contained();
    let s = sandbox();
    let err = s
        .apply(&[dir("a/"), symlink("a/esc", "../../x")])
        .unwrap_err();
    assert!(matches!(err, LayerError::LinkBreakout { .. }), "{err}");
    // Relative links that stay inside are fine, dangling or not.
    let s = sandbox();
    s.apply(&[
        dir("a/b/"),
        symlink("a/b/l", "../../c"),
        symlink("abs", "/etc/passwd"),
    ])
    .unwrap();
    assert_eq!(
        fs::read_link(s.root.join("a/b/l")).unwrap(),
        Path::new("../../c")
    );
    assert_eq!(
        fs::read_link(s.root.join("abs")).unwrap(),
        Path::new("/etc/passwd")
    );
}

#[test]
fn hardlinks_outside_or_forward_are_rejected() {
    let s = sandbox();
    let victim = s.outside.join("victim");
    let err = s.apply(&[hardlink("hl", "../outside/victim")]).unwrap_err();
    assert!(matches!(err, LayerError::LinkBreakout { .. }), "{err}");
    s.assert_contained();

    // Absolute target: taken inside the root, where it does not exist.
    let s = sandbox();
    let err = s
        .apply(&[hardlink("hl", victim.to_str().unwrap())])
        .unwrap_err();
    assert!(matches!(err, LayerError::Invalid { .. }), "{err}");
    s.assert_contained();

    // Through a symlink to the outside directory.
    let s = sandbox();
    let r = s.apply(&[
        symlink("s", s.outside.to_str().unwrap()),
        hardlink("hl", "s/victim"),
    ]);
    assert!(r.is_err());
    s.assert_contained();

    // Through a symlink to /etc: /etc/passwd is never linked.
    let before = fs::metadata("/etc/passwd").unwrap().nlink();
    let s = sandbox();
    let r = s.apply(&[symlink("s", "/etc"), hardlink("hl", "s/passwd")]);
    assert!(r.is_err());
    assert_eq!(fs::metadata("/etc/passwd").unwrap().nlink(), before);

    // Target not yet extracted.
    let s = sandbox();
    let err = s
        .apply(&[hardlink("hl", "later"), file("later", b"x")])
        .unwrap_err();
    assert!(err.to_string().contains("not an earlier entry"), "{err}");

    // Good hardlinks share the inode; a hardlink to a symlink links the symlink itself.
    let s = sandbox();
    s.apply(&[
        file("f", b"data"),
        hardlink("g", "f"),
        symlink("sl", "/etc/passwd"),
        hardlink("sl2", "sl"),
    ])
    .unwrap();
    let f = fs::metadata(s.root.join("f")).unwrap();
    let g = fs::metadata(s.root.join("g")).unwrap();
    assert_eq!(f.ino(), g.ino());
    assert_eq!(f.nlink(), 2);
    assert_eq!(
        fs::read_link(s.root.join("sl2")).unwrap(),
        Path::new("/etc/passwd")
    );
}

#[test]
fn entries_replace_links_instead_of_following_them() {
    // A directory entry over a symlink to the outside: the symlink is replaced, and the
    // outside directory's mode and owner are untouched.
    let s = sandbox();
    let before = fs::symlink_metadata(&s.outside).unwrap();
    let mut d = dir("s/");
    d.mode = 0o777;
    d.uid = 4242;
    s.apply(&[
        symlink("s", s.outside.to_str().unwrap()),
        d,
        file("s/victim", b"evil"),
    ])
    .unwrap();
    s.assert_contained();
    let after = fs::symlink_metadata(&s.outside).unwrap();
    assert_eq!((before.mode(), before.uid()), (after.mode(), after.uid()));
    assert!(fs::symlink_metadata(s.root.join("s")).unwrap().is_dir());
    assert_eq!(fs::read(s.root.join("s/victim")).unwrap(), b"evil");

    // A file entry over a hardlink replaces the name; the other link keeps its content.
    let s = sandbox();
    s.apply(&[
        file("f", b"original"),
        hardlink("h", "f"),
        file("h", b"replaced"),
    ])
    .unwrap();
    assert_eq!(fs::read(s.root.join("f")).unwrap(), b"original");
    assert_eq!(fs::read(s.root.join("h")).unwrap(), b"replaced");

    // A device entry over a symlink to a real file outside does not touch it.
    let s = sandbox();
    let mut null = e("n", tar::EntryType::Char);
    null.dev = (1, 3);
    s.apply(&[
        symlink("n", s.outside.join("victim").to_str().unwrap()),
        null,
    ])
    .unwrap();
    s.assert_contained();
    assert!(fs::symlink_metadata(s.root.join("n"))
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn whiteouts_through_symlinks_stay_inside() {
    let s = sandbox();
    let r = s.apply(&[
        symlink("s", s.outside.to_str().unwrap()),
        file("s/.wh.victim", b""),
    ]);
    assert!(r.is_err(), "{r:?}");
    s.assert_contained();

    let s = sandbox();
    let r = s.apply(&[symlink("s", "/"), file("s/.wh.victim", b"")]);
    r.unwrap();
    s.assert_contained();
    assert!(is_whiteout(&s.root.join("victim")));

    let s = sandbox();
    let err = s.apply(&[file(".wh...", b"")]).unwrap_err();
    assert!(matches!(err, LayerError::Breakout(_)), "{err}");
    let s = sandbox();
    let r = s.apply(&[
        symlink("s", s.outside.to_str().unwrap()),
        file("s/.wh..wh..opq", b""),
    ]);
    assert!(r.is_err());
    assert!(getxattr(&s.outside, "trusted.overlay.opaque").is_none());
    s.assert_contained();
}

#[test]
fn overlay_xattrs_from_the_archive_are_dropped() {
    let s = sandbox();
    let mut d = dir("d/");
    d.pax = vec![
        (
            "SCHILY.xattr.trusted.overlay.redirect".into(),
            b"/etc".to_vec(),
        ),
        ("SCHILY.xattr.trusted.overlay.opaque".into(), b"y".to_vec()),
        ("SCHILY.xattr.user.keep".into(), b"v".to_vec()),
    ];
    s.apply(&[d]).unwrap();
    let p = s.root.join("d");
    assert!(getxattr(&p, "trusted.overlay.redirect").is_none());
    assert!(getxattr(&p, "trusted.overlay.opaque").is_none());
    assert_eq!(getxattr(&p, "user.keep").as_deref(), Some(&b"v"[..]));
}

// ---------------------------------------------------------------------------------------------
// Semantics.

#[test]
fn metadata_devices_and_times() {
    let s = sandbox();
    let mut suid = file("bin/su", b"#!/bin/sh\n");
    suid.mode = 0o4755;
    suid.uid = 0;
    let mut owned = file("home/u/f", b"x");
    owned.uid = 1234;
    owned.gid = 5678;
    owned.mtime = 1_000_000;
    owned.pax = vec![
        ("SCHILY.xattr.user.foo".into(), b"bar".to_vec()),
        (
            "SCHILY.xattr.security.capability".into(),
            vec![
                1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        ),
        ("uid".into(), b"4000000".to_vec()),
        ("mtime".into(), b"1000000.25".to_vec()),
    ];
    let mut home = dir("home/");
    home.mtime = 2_000_000;
    home.mode = 0o1777;
    let mut null = e("dev/null", tar::EntryType::Char);
    null.dev = (1, 3);
    null.mode = 0o666;
    let mut loop0 = e("dev/loop0", tar::EntryType::Block);
    loop0.dev = (7, 0);
    loop0.mode = 0o660;
    loop0.gid = 6;
    let fifo = e("run/fifo", tar::EntryType::Fifo);
    let mut link = symlink("home/l", "u/f");
    link.uid = 77;
    link.mtime = 1_234_567;
    let stats = s
        .apply(&[home, owned, link, suid, null, loop0, fifo])
        .unwrap();
    assert_eq!(stats.entries, 7);
    assert_eq!(stats.size, 11);

    let r = &s.root;
    let su = fs::symlink_metadata(r.join("bin/su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o4755);
    let f = fs::symlink_metadata(r.join("home/u/f")).unwrap();
    assert_eq!((f.uid(), f.gid()), (4_000_000, 5678));
    assert_eq!((f.mtime(), f.mtime_nsec()), (1_000_000, 250_000_000));
    assert_eq!(
        getxattr(&r.join("home/u/f"), "user.foo").as_deref(),
        Some(&b"bar"[..])
    );
    assert!(getxattr(&r.join("home/u/f"), "security.capability").is_some());
    let home = fs::symlink_metadata(r.join("home")).unwrap();
    assert_eq!(
        home.mtime(),
        2_000_000,
        "dir mtime applied after its children"
    );
    assert_eq!(home.mode() & 0o7777, 0o1777);
    // Implicit parents: 0755, root-owned.
    let u = fs::symlink_metadata(r.join("home/u")).unwrap();
    assert_eq!(u.mode() & 0o7777, 0o755);
    let null = fs::symlink_metadata(r.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), libc::makedev(1, 3));
    assert_eq!(null.mode() & 0o777, 0o666);
    let lp = fs::symlink_metadata(r.join("dev/loop0")).unwrap();
    assert!(lp.file_type().is_block_device());
    assert_eq!(lp.rdev(), libc::makedev(7, 0));
    assert_eq!(lp.gid(), 6);
    assert!(fs::symlink_metadata(r.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let l = fs::symlink_metadata(r.join("home/l")).unwrap();
    assert!(l.file_type().is_symlink());
    assert_eq!((l.uid(), l.mtime()), (77, 1_234_567));
}

#[test]
fn whiteouts_become_overlay_form() {
    let s = sandbox();
    let mut wo = file("etc/.wh.motd", b"");
    wo.uid = 5;
    s.apply(&[
        dir("etc/"),
        wo,
        dir("var/cache/"),
        file("var/cache/.wh..wh..opq", b""),
        file("var/cache/kept", b"k"),
        file(".wh.toplevel", b""),
        file(".wh..wh..opq", b""),
        dir(".wh..wh.plnk/"),
        file(".wh..wh.plnk/123", b"aufs"),
    ])
    .unwrap();
    let r = &s.root;
    assert!(is_whiteout(&r.join("etc/motd")));
    assert_eq!(fs::symlink_metadata(r.join("etc/motd")).unwrap().uid(), 5);
    assert!(is_whiteout(&r.join("toplevel")));
    assert!(!r.join("etc/.wh.motd").exists());
    assert_eq!(
        getxattr(&r.join("var/cache"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(
        getxattr(r, "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!r.join("var/cache/.wh..wh..opq").exists());
    assert_eq!(fs::read(r.join("var/cache/kept")).unwrap(), b"k");
    assert!(!r.join(".wh..wh.plnk").exists());
}

#[test]
fn later_entries_replace_earlier_ones() {
    let s = sandbox();
    let mut d2 = dir("merge/");
    d2.mode = 0o700;
    s.apply(&[
        file("a", b"file"),
        dir("a/"),
        file("a/in", b"1"),
        dir("b/"),
        file("b/child", b"c"),
        file("b", b"now a file"),
        dir("merge/"),
        file("merge/keep", b"k"),
        d2,
        file("f", b"old"),
        file("f", b"new"),
        symlink("s", "f"),
        file("s", b"not through the link"),
        file("w", b"whited"),
        file(".wh.w", b""),
    ])
    .unwrap();
    let r = &s.root;
    assert!(r.join("a").is_dir());
    assert_eq!(fs::read(r.join("a/in")).unwrap(), b"1");
    assert_eq!(fs::read(r.join("b")).unwrap(), b"now a file");
    assert_eq!(fs::read(r.join("merge/keep")).unwrap(), b"k");
    assert_eq!(fs::metadata(r.join("merge")).unwrap().mode() & 0o777, 0o700);
    assert_eq!(fs::read(r.join("f")).unwrap(), b"new");
    assert!(!fs::symlink_metadata(r.join("s"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(r.join("s")).unwrap(), b"not through the link");
    assert_eq!(fs::read(r.join("f")).unwrap(), b"new");
    assert!(is_whiteout(&r.join("w")));
}

#[test]
fn old_style_directory_entries() {
    let s = sandbox();
    let mut d = file("v7dir/", b"");
    d.mode = 0o750;
    let mut t = tar_of(&[d, file("v7dir/f", b"x")]);
    // Type flag '\0' (V7), then a fresh checksum.
    let mut h = tar::Header::new_old();
    h.as_mut_bytes().copy_from_slice(&t[..512]);
    h.as_old_mut().linkflag[0] = 0;
    h.set_cksum();
    t[..512].copy_from_slice(h.as_bytes());
    apply_layer(&t[..], &s.root).unwrap();
    let md = fs::symlink_metadata(s.root.join("v7dir")).unwrap();
    assert!(md.is_dir());
    assert_eq!(md.mode() & 0o777, 0o750);
}

// ---------------------------------------------------------------------------------------------
// Compression and corruption.

fn sample() -> Vec<u8> {
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    tar_of(&[
        dir("d/"),
        file("d/big", &big),
        file("d/small", b"s"),
        symlink("d/l", "big"),
    ])
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b).unwrap();
    gz.finish().unwrap()
}

#[test]
fn gzip_zstd_and_plain_layers() {
    let plain = sample();
    let gz = gzip(&plain);
    let zs = zstd::encode_all(&plain[..], 3).unwrap();
    for (blob, c) in [
        (&plain, Compression::None),
        (&gz, Compression::Gzip),
        (&zs, Compression::Zstd),
    ] {
        assert_eq!(detect_compression(blob), c);
        let s = sandbox();
        let stats = apply_layer(decompress(BufReader::new(&blob[..])).unwrap(), &s.root).unwrap();
        assert_eq!(stats.entries, 4);
        assert_eq!(stats.size, 300_001);
        assert_eq!(fs::read(s.root.join("d/big")).unwrap().len(), 300_000);
        assert_eq!(fs::read_link(s.root.join("d/l")).unwrap(), Path::new("big"));
    }
}

#[test]
fn truncated_and_corrupt_archives_fail() {
    let plain = sample();
    // Truncated gzip (in the middle, and only its trailer).
    let gz = gzip(&plain);
    for cut in [gz.len() / 2, gz.len() - 4] {
        let s = sandbox();
        let err = apply_layer(decompress(&gz[..cut]).unwrap(), &s.root).unwrap_err();
        assert!(matches!(err, LayerError::Corrupt(_)), "{err}");
        assert!(
            err.to_string()
                .starts_with("truncated or corrupt layer archive: "),
            "{err}"
        );
    }
    // Truncated zstd.
    let zs = zstd::encode_all(&plain[..], 3).unwrap();
    let s = sandbox();
    assert!(apply_layer(decompress(&zs[..zs.len() / 2]).unwrap(), &s.root).is_err());
    // Truncated plain tar inside a file's data, and inside a header.
    for cut in [512 * 3 + 1000, 512 + 100] {
        let s = sandbox();
        let err = apply_layer(&plain[..cut], &s.root).unwrap_err();
        assert!(matches!(err, LayerError::Corrupt(_)), "{cut}: {err}");
    }
    // A corrupt header checksum.
    let mut bad = plain.clone();
    bad[512 + 20] ^= 0x55; // in the name of the second header
    let s = sandbox();
    let err = apply_layer(&bad[..], &s.root).unwrap_err();
    assert!(matches!(err, LayerError::Corrupt(_)), "{err}");
    // Garbage that is neither compressed nor tar.
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 256) as u8 | 1).collect();
    let s = sandbox();
    assert!(apply_layer(decompress(&garbage[..]).unwrap(), &s.root).is_err());
    // An empty stream is an empty layer.
    let s = sandbox();
    assert_eq!(
        apply_layer(&b""[..], &s.root).unwrap(),
        ApplyStats::default()
    );
}

// ---------------------------------------------------------------------------------------------
// Creation.

fn build_upper(dir: &Path) {
    fs::create_dir_all(dir.join("etc/conf.d")).unwrap();
    fs::write(dir.join("etc/conf.d/a.conf"), b"a=1\n").unwrap();
    fs::write(dir.join("etc/hosts"), b"127.0.0.1 localhost\n").unwrap();
    fs::hard_link(dir.join("etc/hosts"), dir.join("etc/hosts.link")).unwrap();
    std::os::unix::fs::symlink("../etc/hosts", dir.join("etc/conf.d/hosts")).unwrap();
    fs::create_dir_all(dir.join("usr/bin")).unwrap();
    fs::write(dir.join("usr/bin/tool"), vec![0xABu8; 70_000]).unwrap();
    fs::set_permissions(dir.join("usr/bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    std::os::unix::fs::chown(dir.join("usr/bin/tool"), Some(1000), Some(2000)).unwrap();
    setxattr(&dir.join("usr/bin/tool"), "user.note", b"hello");
    let long = dir.join("deep").join("d".repeat(80)).join("e".repeat(80));
    fs::create_dir_all(&long).unwrap();
    fs::write(long.join("f".repeat(120)), b"long name").unwrap();
    // Overlay whiteout and opaque directory.
    // overlayfs creates whiteouts with mode 0.
    mknod(&dir.join("etc/removed"), libc::S_IFCHR, 0, 0);
    fs::create_dir_all(dir.join("var/lib/opaque")).unwrap();
    fs::write(dir.join("var/lib/opaque/new"), b"n").unwrap();
    setxattr(&dir.join("var/lib/opaque"), "trusted.overlay.opaque", b"y");
    setxattr(&dir.join("var/lib"), "trusted.overlay.impure", b"y");
    mknod(&dir.join("null"), libc::S_IFCHR | 0o666, 1, 3);
    mknod(&dir.join("fifo"), libc::S_IFIFO | 0o644, 0, 0);
    fs::write(dir.join("empty"), b"").unwrap();
}

/// (path, type, mode, uid, gid, size, content or link, rdev, user/security xattrs, mtime)
fn snapshot(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, rel: &Path, out: &mut Vec<String>) {
        let mut names: Vec<_> = fs::read_dir(root.join(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for n in names {
            let p = rel.join(&n);
            let full = root.join(&p);
            let md = fs::symlink_metadata(&full).unwrap();
            let ft = md.file_type();
            let content = if ft.is_file() {
                format!("{:x}", md5ish(&fs::read(&full).unwrap()))
            } else if ft.is_symlink() {
                fs::read_link(&full).unwrap().display().to_string()
            } else {
                String::new()
            };
            let xa = ["user.note", "trusted.overlay.opaque"]
                .iter()
                .map(|k| format!("{k}={:?}", getxattr(&full, k)))
                .collect::<Vec<_>>()
                .join(",");
            out.push(format!(
                "{} {:o} {} {} {} {} rdev={} {} mtime={} nlink={}",
                p.display(),
                md.mode(),
                md.uid(),
                md.gid(),
                if ft.is_dir() { 0 } else { md.size() },
                content,
                md.rdev(),
                xa,
                if ft.is_dir() || ft.is_symlink() || ft.is_file() {
                    md.mtime()
                } else {
                    0
                },
                md.nlink(),
            ));
            if ft.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    walk(root, Path::new(""), &mut out);
    out
}

fn md5ish(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x100000001b3)
    })
}

#[test]
fn create_filtered_leaves_out_entries_and_their_contents() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fs::create_dir_all(d.join("etc/sub")).unwrap();
    fs::write(d.join("etc/hosts"), "").unwrap();
    fs::write(d.join("etc/keep"), "k").unwrap();
    fs::write(d.join("etc/sub/x"), "x").unwrap();
    fs::create_dir(d.join("proc")).unwrap();
    let skip = |p: &Path| {
        p == Path::new("etc/hosts") || p == Path::new("etc/sub") || p == Path::new("proc")
    };
    let mut out = Vec::new();
    let stats = create_layer_filtered(d, &mut out, &CreateOptions::default(), &skip).unwrap();
    let mut names = Vec::new();
    for en in tar::Archive::new(&out[..]).entries().unwrap() {
        names.push(String::from_utf8_lossy(&en.unwrap().path_bytes()).into_owned());
    }
    assert_eq!(names, ["etc/", "etc/keep"]);
    assert_eq!(stats.size, 1);
}

#[test]
fn create_then_apply_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let upper = tmp.path().join("upper");
    fs::create_dir(&upper).unwrap();
    build_upper(&upper);

    let mut a = Vec::new();
    let stats = create_layer(&upper, &mut a, &CreateOptions::default()).unwrap();
    let mut b = Vec::new();
    create_layer(&upper, &mut b, &CreateOptions::default()).unwrap();
    assert_eq!(a, b, "identical input gives identical bytes");
    assert_eq!(stats.size, 4 + 20 + 70_000 + 9 + 1);

    // The tar holds OCI whiteouts, not devices 0:0 or overlay xattrs.
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(&a[..]);
    for en in ar.entries().unwrap() {
        let mut en = en.unwrap();
        names.push(String::from_utf8_lossy(&en.path_bytes()).into_owned());
        if let Some(pax) = en.pax_extensions().unwrap() {
            for r in pax {
                assert!(!r.unwrap().key().unwrap().contains("trusted.overlay"));
            }
        }
    }
    assert!(names.contains(&"etc/.wh.removed".to_string()), "{names:?}");
    assert!(
        names.contains(&"var/lib/opaque/.wh..wh..opq".to_string()),
        "{names:?}"
    );
    assert!(!names.contains(&"etc/removed".to_string()));
    let pos = |n: &str| names.iter().position(|x| x == n).unwrap();
    assert!(pos("etc/") < pos("etc/conf.d/") && pos("etc/conf.d/") < pos("etc/conf.d/a.conf"));
    assert!(pos("etc/conf.d/hosts") < pos("etc/hosts") && pos("etc/hosts") < pos("etc/hosts.link"));

    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    let applied = apply_layer(&a[..], &out).unwrap();
    assert_eq!(applied.entries, stats.entries);
    assert_eq!(snapshot(&out), snapshot(&upper));
    // Overlay bookkeeping of the upper dir is not carried over.
    assert!(getxattr(&out.join("var/lib"), "trusted.overlay.impure").is_none());
    let l1 = fs::metadata(out.join("etc/hosts")).unwrap();
    let l2 = fs::metadata(out.join("etc/hosts.link")).unwrap();
    assert_eq!(l1.ino(), l2.ino());
}

#[test]
fn overlay_redirects_and_metacopy_are_refused() {
    for key in ["trusted.overlay.redirect", "trusted.overlay.metacopy"] {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("moved")).unwrap();
        setxattr(&tmp.path().join("moved"), key, b"/old");
        let err = create_layer(tmp.path(), std::io::sink(), &CreateOptions::default()).unwrap_err();
        assert!(err.to_string().contains("redirect_dir=off"), "{err}");
    }
}

#[test]
fn source_date_epoch_clamps_mtimes() {
    let tmp = tempfile::tempdir().unwrap();
    let upper = tmp.path().join("upper");
    fs::create_dir(&upper).unwrap();
    fs::write(upper.join("new"), b"x").unwrap();
    fs::write(upper.join("old"), b"y").unwrap();
    let old = std::fs::File::options()
        .write(true)
        .open(upper.join("old"))
        .unwrap();
    old.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(100))
        .unwrap();
    let mut a = Vec::new();
    create_layer(
        &upper,
        &mut a,
        &CreateOptions {
            source_date_epoch: Some(1000),
        },
    )
    .unwrap();
    let mut ar = tar::Archive::new(&a[..]);
    let times: Vec<(String, u64)> = ar
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().display().to_string(),
                e.header().mtime().unwrap(),
            )
        })
        .collect();
    assert_eq!(times, [("new".to_string(), 1000), ("old".to_string(), 100)]);
}

// ---------------------------------------------------------------------------------------------
// Throughput (run with `cargo test --release -p berth-oci --test layer -- --ignored --nocapture`).

#[test]
#[ignore = "a measurement, not a test: run with --release -- --ignored --nocapture"]
fn extraction_throughput() {
    // ~150 MB: many small files, some medium, a few large.
    let mut entries = Vec::new();
    let mut total = 0usize;
    let mut i = 0u32;
    let mut seed = 0x9E3779B9u32;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for d in 0..50 {
        entries.push(dir(&format!("d{d}/")));
    }
    while total < 150 << 20 {
        let r = next();
        let size = match r % 100 {
            0..=69 => (r as usize >> 8) % 8192,
            70..=97 => (r as usize >> 8) % (512 << 10),
            _ => 8 << 20,
        };
        let data = vec![(i % 251) as u8; size];
        entries.push(file(&format!("d{}/f{i}", i % 50), &data));
        total += size;
        i += 1;
    }
    let archive = tar_of(&entries);
    let s = sandbox();
    let t = std::time::Instant::now();
    let stats = apply_layer(&archive[..], &s.root).unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "extracted {} entries, {:.1} MB in {:.3}s: {:.0} MB/s",
        stats.entries,
        archive.len() as f64 / 1e6,
        secs,
        archive.len() as f64 / 1e6 / secs
    );
    let gz = gzip(&archive);
    let s = sandbox();
    let t = std::time::Instant::now();
    apply_layer(decompress(&gz[..]).unwrap(), &s.root).unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!("gzip: {:.0} MB/s of tar", archive.len() as f64 / 1e6 / secs);
    let mut sink = std::io::sink();
    let t = std::time::Instant::now();
    create_layer(&s.root, &mut sink, &CreateOptions::default()).unwrap();
    println!(
        "create: {:.0} MB/s",
        archive.len() as f64 / 1e6 / t.elapsed().as_secs_f64()
    );

    // Many small files: 40,000 files of 0-4 KiB in 400 directories.
    let mut entries = Vec::new();
    for d in 0..400 {
        entries.push(dir(&format!("s{d}/")));
    }
    for i in 0..40_000u32 {
        let size = (i as usize * 97) % 4096;
        entries.push(file(&format!("s{}/f{i}", i % 400), &vec![7u8; size]));
    }
    let archive = tar_of(&entries);
    let s = sandbox();
    let t = std::time::Instant::now();
    let stats = apply_layer(&archive[..], &s.root).unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "small files: {} entries, {:.1} MB in {:.3}s: {:.0} entries/s, {:.0} MB/s",
        stats.entries,
        archive.len() as f64 / 1e6,
        secs,
        stats.entries as f64 / secs,
        archive.len() as f64 / 1e6 / secs
    );
}

/// GNU tar's PAX sparse files (`tar --sparse --format=pax`, formats 0.0, 0.1 and 1.0) are
/// extracted under their real name (`GNU.sparse.name`, not `GNUSparseFile.N/…`), with their
/// real size, data and holes.
#[test]
fn pax_sparse_files_keep_their_name_and_holes() {
    use std::os::unix::fs::FileExt;
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    let size: u64 = 64 << 20;
    {
        let f = fs::File::create(src.join("d/sparse.bin")).unwrap();
        f.set_len(size).unwrap();
        f.write_all_at(b"hello", 1 << 20).unwrap();
        f.write_all_at(b"end", size - 3).unwrap();
    }
    for version in ["0.0", "0.1", "1.0"] {
        let tar_path = t.path().join(format!("sparse-{version}.tar"));
        let status = std::process::Command::new("tar")
            .arg("-C")
            .arg(&src)
            .args([
                "--sparse",
                "--sparse-version",
                version,
                "--format=pax",
                "-cf",
            ])
            .arg(&tar_path)
            .arg("d")
            .status()
            .expect("GNU tar is needed for this test");
        assert!(status.success(), "tar --sparse-version {version}");
        let dst = t.path().join(format!("out-{version}"));
        fs::create_dir_all(&dst).unwrap();
        apply_layer(fs::File::open(&tar_path).unwrap(), &dst)
            .unwrap_or_else(|e| panic!("sparse {version}: {e}"));
        let names: Vec<_> = fs::read_dir(dst.join("d"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["sparse.bin".to_string()], "sparse {version}");
        assert!(!dst.join("d/GNUSparseFile.0").exists());
        let f = fs::File::open(dst.join("d/sparse.bin")).unwrap();
        let m = f.metadata().unwrap();
        assert_eq!(m.len(), size, "sparse {version}");
        let mut buf = [0u8; 5];
        f.read_exact_at(&mut buf, 1 << 20).unwrap();
        assert_eq!(&buf, b"hello");
        f.read_exact_at(&mut buf[..3], size - 3).unwrap();
        assert_eq!(&buf[..3], b"end");
        f.read_exact_at(&mut buf, 4096).unwrap();
        assert_eq!(buf, [0u8; 5]);
        assert!(
            m.blocks() * 512 < 1 << 20,
            "sparse {version}: the holes were filled ({} blocks)",
            m.blocks()
        );
    }
}

/// A 1 GiB file of holes becomes a PAX 1.0 sparse entry (what `commit` writes for a container
/// holding one): the layer stays small, our extractor and GNU tar restore the name, the size,
/// the data and the holes.
#[test]
fn sparse_files_make_small_layers() {
    use std::os::unix::fs::FileExt;
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    let size: u64 = 1 << 30;
    {
        let f = fs::File::create(src.join("d/big")).unwrap();
        f.set_len(size).unwrap();
        f.write_all_at(b"middle", 512 << 20).unwrap();
        f.write_all_at(b"end", size - 3).unwrap();
    }
    fs::write(src.join("d/small"), b"plain").unwrap();
    let tar_path = t.path().join("layer.tar");
    create_layer(
        &src,
        fs::File::create(&tar_path).unwrap(),
        &CreateOptions::default(),
    )
    .unwrap();
    let tar_len = fs::metadata(&tar_path).unwrap().len();
    assert!(tar_len < 1 << 20, "the layer is {tar_len} bytes");
    let check = |root: &Path, who: &str| {
        let f = fs::File::open(root.join("d/big")).unwrap();
        let m = f.metadata().unwrap();
        assert_eq!(m.len(), size, "{who}");
        let mut buf = [0u8; 6];
        f.read_exact_at(&mut buf, 512 << 20).unwrap();
        assert_eq!(&buf, b"middle", "{who}");
        f.read_exact_at(&mut buf[..3], size - 3).unwrap();
        assert_eq!(&buf[..3], b"end", "{who}");
        assert!(m.blocks() * 512 < 1 << 20, "{who}: holes filled");
        assert_eq!(fs::read(root.join("d/small")).unwrap(), b"plain", "{who}");
        assert!(!root.join("d/GNUSparseFile.0").exists(), "{who}");
    };
    let ours = t.path().join("ours");
    fs::create_dir_all(&ours).unwrap();
    apply_layer(fs::File::open(&tar_path).unwrap(), &ours).unwrap();
    check(&ours, "berth");
    let gnu = t.path().join("gnu");
    fs::create_dir_all(&gnu).unwrap();
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(&gnu)
        .arg("-xf")
        .arg(&tar_path)
        .status()
        .expect("GNU tar is needed for this test");
    assert!(status.success());
    check(&gnu, "GNU tar");
}
