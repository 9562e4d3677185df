//! `--gpus` and CDI devices against a fake NVIDIA driver tree: character devices with
//! NVIDIA's major numbers (made with mknod, so the device cgroup decides what a container may
//! open), `/proc/driver/nvidia` files, driver libraries built with a SONAME (so the library
//! cache the monitor rebuilds can be checked), a `nvidia-smi` shell script and firmware.
//! No NVIDIA driver is loaded here: opening an allowed node fails with ENXIO ("No such device
//! or address"), a node the cgroup denies with EPERM ("Operation not permitted").

mod common;

use common::serve::Server;
use common::Berth;
use std::path::Path;
use std::process::{Command, Stdio};

const VERSION: &str = "550.54.15";
const UUID0: &str = "GPU-11111111-2222-3333-4444-555555555555";
const UUID1: &str = "GPU-66666666-7777-8888-9999-000000000000";

/// The fake driver tree: two GPUs (minors 0 and 1, in bus order).
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn new() -> Tree {
        let dir = tempfile::Builder::new()
            .prefix("gpu-tree-")
            .tempdir_in(common::scratch_dir())
            .unwrap();
        let root = dir.path();
        let write = |rel: &str, text: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
        };
        write(
            "proc/driver/nvidia/version",
            &format!("NVRM version: NVIDIA UNIX x86_64 Kernel Module  {VERSION}  Tue Mar  5 22:23:56 UTC 2024\n"),
        );
        for (minor, bus, uuid) in [(0, "0000:18:00.0", UUID0), (1, "0000:3b:00.0", UUID1)] {
            write(
                &format!("proc/driver/nvidia/gpus/{bus}/information"),
                &format!("Model: \t\t Fake GPU {minor}\nIRQ:   \t\t 100\nGPU UUID: \t {uuid}\nVideo BIOS: \t ??.??.??.??.??\nBus Type: \t PCIe\nDMA Size: \t 47 bits\nDMA Mask: \t 0x7fffffffffff\nBus Location: \t {bus}\nDevice Minor: \t {minor}\nGPU Excluded:\t No\n"),
            );
        }
        std::fs::create_dir_all(root.join("dev")).unwrap();
        // NVIDIA's numbers: 195 for the GPUs, nvidiactl (255) and nvidia-modeset (254); the
        // UVM driver gets a dynamic major (511 here).
        for (name, major, minor) in [
            ("nvidia0", 195, 0),
            ("nvidia1", 195, 1),
            ("nvidiactl", 195, 255),
            ("nvidia-modeset", 195, 254),
            ("nvidia-uvm", 511, 0),
            ("nvidia-uvm-tools", 511, 1),
        ] {
            common::sh(&format!(
                "mknod -m 666 {}/dev/{name} c {major} {minor}",
                root.display()
            ));
        }
        // Libraries with their SONAME, as the driver ships them (no SONAME links: the
        // container's ldconfig makes them).
        let lib = root.join("usr/local/nvidia/lib64");
        std::fs::create_dir_all(&lib).unwrap();
        let src = root.join("stub.c");
        std::fs::write(&src, "int berth_stub(void) { return 42; }\n").unwrap();
        for (name, soname) in [
            ("libcuda", "libcuda.so.1"),
            ("libnvidia-ml", "libnvidia-ml.so.1"),
            ("libnvcuvid", "libnvcuvid.so.1"),
        ] {
            let out = Command::new("cc")
                .args(["-shared", "-fPIC", "-nostdlib"])
                .arg(format!("-Wl,-soname,{soname}"))
                .arg("-o")
                .arg(lib.join(format!("{name}.so.{VERSION}")))
                .arg(&src)
                .output()
                .expect("cc is needed to build the fake driver libraries (apt-get install gcc)");
            assert!(
                out.status.success(),
                "cc: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        write(
            "usr/local/nvidia/bin/nvidia-smi",
            "#!/bin/sh\n[ \"$1\" = -L ] || exit 2\nfor n in /dev/nvidia[0-9]*; do i=${n#/dev/nvidia}; echo \"GPU $i: Fake GPU $i\"; done\n",
        );
        common::sh(&format!(
            "chmod 755 {}/usr/local/nvidia/bin/nvidia-smi",
            root.display()
        ));
        write(
            &format!("lib/firmware/nvidia/{VERSION}/gsp_ga10x.bin"),
            "fw",
        );
        Tree { dir }
    }

    fn env(&self, c: &mut Command) {
        c.env("BERTH_GPU_ROOT", self.root())
            .env("BERTH_CDI_SPEC_DIRS", self.root().join("cdi"));
    }
}

fn berth(b: &Berth, t: &Tree, args: &[&str]) -> (i32, String, String) {
    let mut c = b.command();
    t.env(&mut c);
    let out = c.args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn ok(b: &Berth, t: &Tree, args: &[&str]) -> String {
    let (code, out, err) = berth(b, t, args);
    assert_eq!(code, 0, "berth {args:?}: {out}{err}");
    out
}

/// `run --rm [flags] busybox sh -c SCRIPT` → stdout.
fn sh_in(b: &Berth, t: &Tree, flags: &[&str], script: &str) -> String {
    let mut a = vec!["run", "--rm", "--network", "none"];
    a.extend_from_slice(flags);
    a.extend_from_slice(&["busybox", "sh", "-c", script]);
    ok(b, t, &a)
}

/// What a container sees of the driver.
const LOOK: &str = "ls /dev | grep nvidia | tr '\\n' ' '; echo; \
    for l in libcuda libnvidia-ml libnvcuvid; do \
      [ -e /usr/local/nvidia/lib64/$l.so.550.54.15 ] && echo \"lib $l -> $(readlink /usr/local/nvidia/lib64/$l.so.1)\"; done; \
    grep -q libcuda.so.1 /etc/ld.so.cache && echo cache-has-libcuda; \
    [ -e /lib/firmware/nvidia/550.54.15/gsp_ga10x.bin ] && echo firmware; \
    env | grep ^NVIDIA_ | sort";

#[test]
fn gpus_all_gets_every_gpu_the_driver_and_its_library_cache() {
    assert!(common::is_root("gpu"));
    let t = Tree::new();
    let b = Berth::with_busybox();
    for rt in common::runtimes() {
        let out = sh_in(&b, &t, &["--runtime", rt, "--gpus", "all"], LOOK);
        assert_eq!(
            out,
            "nvidia-modeset nvidia-uvm nvidia-uvm-tools nvidia0 nvidia1 nvidiactl \n\
             lib libcuda -> libcuda.so.550.54.15\n\
             lib libnvidia-ml -> libnvidia-ml.so.550.54.15\n\
             cache-has-libcuda\nfirmware\nNVIDIA_VISIBLE_DEVICES=all\n",
            "runtime {rt}"
        );
        // The driver's program is on PATH, from the driver's directory.
        assert_eq!(
            sh_in(&b, &t, &["--runtime", rt, "--gpus", "all"], "nvidia-smi -L"),
            "GPU 0: Fake GPU 0\nGPU 1: Fake GPU 1\n"
        );
        // Without --gpus, nothing of it.
        assert_eq!(
            sh_in(
                &b,
                &t,
                &["--runtime", rt],
                "ls /dev | grep -c nvidia; which nvidia-smi; true"
            ),
            "0\n"
        );
    }
}

#[test]
fn one_gpu_by_index_or_uuid_and_the_cgroup_denies_the_other() {
    assert!(common::is_root("gpu"));
    let t = Tree::new();
    let b = Berth::with_busybox();
    // Opening: EPERM from the device cgroup, ENXIO from a kernel without the driver.
    let probe = "ls /dev | grep nvidia | tr '\\n' ' '; echo; \
        mknod /tmp/g0 c 195 0; mknod /tmp/g1 c 195 1; \
        cat /tmp/g0 2>&1 | sed 's/.*: //'; cat /tmp/g1 2>&1 | sed 's/.*: //'; \
        cat /dev/nvidia1 2>&1 | sed 's/.*: //'";
    for rt in common::runtimes() {
        for gpus in ["\"device=1\"", "device=1", &format!("device={UUID1}")] {
            assert_eq!(
                sh_in(&b, &t, &["--runtime", rt, "--gpus", gpus], probe),
                "nvidia-modeset nvidia-uvm nvidia-uvm-tools nvidia1 nvidiactl \n\
                 Operation not permitted\nNo such device or address\nNo such device or address\n",
                "runtime {rt}, --gpus {gpus}"
            );
        }
        // A count takes the first GPUs.
        assert_eq!(
            sh_in(
                &b,
                &t,
                &["--runtime", rt, "--gpus", "1"],
                "ls /dev/nvidia[0-9]*; env | grep ^NVIDIA_VISIBLE"
            ),
            "/dev/nvidia0\nNVIDIA_VISIBLE_DEVICES=0\n"
        );
    }
}

#[test]
fn capabilities_choose_the_driver_files() {
    assert!(common::is_root("gpu"));
    let t = Tree::new();
    let b = Berth::with_busybox();
    // Asked for on the command line: only utility's files, and the variable is set.
    assert_eq!(
        sh_in(
            &b,
            &t,
            &["--gpus", "\"device=0\",capabilities=utility"],
            LOOK
        ),
        "nvidia-modeset nvidia-uvm nvidia-uvm-tools nvidia0 nvidiactl \n\
         lib libnvidia-ml -> libnvidia-ml.so.550.54.15\n\
         NVIDIA_DRIVER_CAPABILITIES=utility\nNVIDIA_VISIBLE_DEVICES=0\n"
    );
    // From the container's environment (an image's ENV or -e), as the toolkit reads it.
    assert_eq!(
        sh_in(
            &b,
            &t,
            &["--gpus", "all", "-e", "NVIDIA_DRIVER_CAPABILITIES=video"],
            "ls /usr/local/nvidia/lib64 | grep -v '\\.so\\.1$'"
        ),
        "libnvcuvid.so.550.54.15\n"
    );
    let img = b.dir.path().join("img.tar");
    std::fs::copy(common::busybox_tar(), &img).unwrap();
    ok(
        &b,
        &t,
        &[
            "import",
            "-c",
            "ENV NVIDIA_DRIVER_CAPABILITIES=all",
            img.to_str().unwrap(),
            "allcaps",
        ],
    );
    assert_eq!(
        ok(
            &b,
            &t,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--gpus",
                "all",
                "allcaps",
                "sh",
                "-c",
                "ls /usr/local/nvidia/lib64 | grep -v '\\.so\\.1$'"
            ]
        ),
        "libcuda.so.550.54.15\nlibnvcuvid.so.550.54.15\nlibnvidia-ml.so.550.54.15\n"
    );
}

#[test]
fn inspect_shows_device_requests_as_docker() {
    assert!(common::is_root("gpu"));
    let t = Tree::new();
    let b = Berth::with_busybox();
    ok(
        &b,
        &t,
        &[
            "create",
            "--name",
            "gpu1",
            "--gpus",
            "\"device=0,1\",\"capabilities=compute,utility\"",
            "busybox",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&ok(&b, &t, &["inspect", "gpu1"])).unwrap();
    assert_eq!(
        v[0]["HostConfig"]["DeviceRequests"],
        serde_json::json!([{"Driver": "", "Count": 0, "DeviceIDs": ["0", "1"],
            "Capabilities": [["compute", "utility", "gpu"]], "Options": {}}])
    );
    assert_eq!(v[0]["HostConfig"]["Devices"], serde_json::json!([]));
    // The request's environment is the runtime's, not the container's Config.Env.
    assert!(!v[0]["Config"]["Env"].to_string().contains("NVIDIA_VISIBLE"));
    ok(
        &b,
        &t,
        &[
            "create",
            "--name",
            "cdi1",
            "--device",
            "nvidia.com/gpu=all",
            "busybox",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&ok(&b, &t, &["inspect", "cdi1"])).unwrap();
    assert_eq!(
        v[0]["HostConfig"]["DeviceRequests"],
        serde_json::json!([{"Driver": "cdi", "Count": 0, "DeviceIDs": ["nvidia.com/gpu=all"],
            "Capabilities": null, "Options": null}])
    );
    ok(&b, &t, &["create", "--name", "none", "busybox"]);
    let v: serde_json::Value = serde_json::from_str(&ok(&b, &t, &["inspect", "none"])).unwrap();
    assert_eq!(
        v[0]["HostConfig"]["DeviceRequests"],
        serde_json::Value::Null
    );
    // kube generate reads the request.
    let y = ok(&b, &t, &["kube", "generate", "gpu1"]);
    assert!(y.contains("nvidia.com/gpu: 2"), "{y}");
    ok(&b, &t, &["rm", "gpu1", "cdi1", "none"]);
}

#[test]
fn clear_errors() {
    assert!(common::is_root("gpu"));
    let t = Tree::new();
    let b = Berth::with_busybox();
    let fails = |args: &[&str], want: &str| {
        let (code, out, err) = berth(&b, &t, args);
        assert_eq!(code, 125, "{args:?}: {out}{err}");
        assert!(err.contains(want), "{args:?}: {err}");
    };
    fails(
        &["run", "--rm", "--gpus", "device=7", "busybox", "true"],
        &format!("unknown GPU \"7\": this host has GPUs 0 ({UUID0}), 1 ({UUID1})"),
    );
    fails(
        &["run", "--rm", "--gpus", "3", "busybox", "true"],
        "--gpus 3: this host has 2 GPUs",
    );
    fails(
        &["run", "--rm", "--gpus", "foo=bar", "busybox", "true"],
        "invalid argument \"foo=bar\" for \"--gpus\" flag: unexpected key 'foo' in 'foo=bar'",
    );
    fails(
        &["run", "--rm", "--gpus", "device=0,1", "busybox", "true"],
        "cannot set both Count and DeviceIDs on device request",
    );
    fails(
        &["run", "--rm", "--gpus", "all,driver=amd", "busybox", "true"],
        "could not select device driver \"amd\" with capabilities: [[gpu]]",
    );
    fails(
        &[
            "run",
            "--rm",
            "--gpus",
            "all,capabilities=display",
            "busybox",
            "true",
        ],
        "capabilities=display: not supported by berth",
    );
    fails(
        &[
            "run",
            "--rm",
            "--device",
            "nvidia.com/gpu=9",
            "busybox",
            "true",
        ],
        "unresolvable CDI devices nvidia.com/gpu=9",
    );
    // A host without the driver.
    let empty = tempfile::tempdir().unwrap();
    let mut c = b.command();
    c.env("BERTH_GPU_ROOT", empty.path());
    let out = c
        .args(["run", "--rm", "--gpus", "all", "busybox", "true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("no NVIDIA GPU driver on this host"), "{err}");
    assert!(err.contains("install the NVIDIA driver"), "{err}");
    assert!(err.contains("no NVIDIA container toolkit"), "{err}");
    // Nothing was left behind.
    assert_eq!(ok(&b, &t, &["ps", "-aq"]), "");
}

/// The CDI project's README example, pointed at the fake tree's nodes, with a hook.
fn vendor_spec(t: &Tree, marker: &Path) -> String {
    let r = t.root().display();
    format!(
        r#"cdiVersion: "0.6.0"
kind: "vendor.com/device"
devices:
  - name: "myDevice"
    containerEdits:
      deviceNodes:
        - hostPath: "{r}/dev/nvidia1"
          path: "/dev/card1"
          permissions: "rw"
containerEdits:
  env:
    - "FOO=VALID_SPEC"
    - "BAR=BARVALUE1"
  mounts:
    - hostPath: "{r}/usr/local/nvidia/bin/nvidia-smi"
      containerPath: "/bin/vendorBin"
      options: ["ro", "nosuid", "nodev", "bind"]
  hooks:
    - hookName: "createRuntime"
      path: "/bin/sh"
      args: ["sh", "-c", "cat > {m}"]
"#,
        m = marker.display()
    )
}

#[test]
fn cdi_devices_from_spec_files() {
    assert!(common::is_root("gpu"));
    let t = Tree::new();
    let b = Berth::with_busybox();
    let cdi = t.root().join("cdi");
    std::fs::create_dir_all(&cdi).unwrap();
    let marker = t.root().join("hook-state.json");
    std::fs::write(cdi.join("vendor.yaml"), vendor_spec(&t, &marker)).unwrap();
    for rt in common::runtimes() {
        let _ = std::fs::remove_file(&marker);
        let out = sh_in(
            &b,
            &t,
            &["--runtime", rt, "--device", "vendor.com/device=myDevice"],
            "stat -c '%t:%T' /dev/card1; echo $FOO $BAR; vendorBin -L >/dev/null && echo ran; \
             mknod /tmp/g0 c 195 0; cat /tmp/g0 2>&1 | sed 's/.*: //'",
        );
        assert_eq!(
            out, "c3:1\nVALID_SPEC BARVALUE1\nran\nOperation not permitted\n",
            "runtime {rt}"
        );
        // The hook ran and was given the container's state.
        let state = std::fs::read_to_string(&marker).unwrap();
        assert!(state.contains("\"id\""), "{state}");
    }
    // The discovered GPUs answer to their CDI names when no spec file defines them.
    assert_eq!(
        sh_in(
            &b,
            &t,
            &["--device", "nvidia.com/gpu=1"],
            "ls /dev/nvidia[0-9]*; nvidia-smi -L"
        ),
        "/dev/nvidia1\nGPU 1: Fake GPU 1\n"
    );
    assert_eq!(
        sh_in(
            &b,
            &t,
            &["--device", &format!("nvidia.com/gpu={UUID0}")],
            "ls /dev/nvidia[0-9]*"
        ),
        "/dev/nvidia0\n"
    );
    // An invalid spec beside it: named with its field when listing and when a device is
    // missing; the valid ones still work.
    std::fs::write(
        cdi.join("broken.json"),
        r#"{"cdiVersion": "0.6.0", "kind": "broken.com/dev", "devices": [{"name": "x", "containerEdits": {"deviceNodes": [{"path": "dev/x"}]}}]}"#,
    )
    .unwrap();
    let (code, out, err) = berth(&b, &t, &["cdi", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("vendor.com/device=myDevice\nnvidia.com/gpu=0\n"),
        "{out}"
    );
    assert!(out.contains(&format!("nvidia.com/gpu={UUID1}\n")), "{out}");
    assert!(out.contains("nvidia.com/gpu=all\n"), "{out}");
    let broken = cdi.join("broken.json").display().to_string();
    assert!(
        err.contains(&format!("CDI spec {broken}: devices[0].containerEdits.deviceNodes[0].path: \"dev/x\" must be an absolute path")),
        "{err}"
    );
    let (code, _, err) = berth(
        &b,
        &t,
        &[
            "run",
            "--rm",
            "--device",
            "broken.com/dev=x",
            "busybox",
            "true",
        ],
    );
    assert_eq!(code, 125);
    assert!(
        err.contains("unresolvable CDI devices broken.com/dev=x"),
        "{err}"
    );
    assert!(err.contains(&broken), "{err}");
    assert_eq!(
        sh_in(
            &b,
            &t,
            &["--device", "vendor.com/device=myDevice"],
            "echo $FOO"
        ),
        "VALID_SPEC\n"
    );
}

#[test]
fn cdi_generate_writes_a_spec_berth_and_others_read() {
    assert!(common::is_root("gpu"));
    let t = Tree::new();
    let b = Berth::with_busybox();
    let yaml = ok(&b, &t, &["cdi", "generate"]);
    assert!(yaml.contains("kind: nvidia.com/gpu"), "{yaml}");
    for name in ["'0'", "'1'", UUID0, UUID1, "all"] {
        assert!(yaml.contains(&format!("name: {name}")), "{name}: {yaml}");
    }
    // Written into a spec directory, it is what --device uses: a file wins over discovery.
    let cdi = t.root().join("cdi");
    std::fs::create_dir_all(&cdi).unwrap();
    let file = cdi.join("nvidia.json");
    ok(
        &b,
        &t,
        &["cdi", "generate", "--output", file.to_str().unwrap()],
    );
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(spec["kind"], "nvidia.com/gpu");
    spec["containerEdits"]["env"] = serde_json::json!(["FROM_FILE=1"]);
    std::fs::write(&file, serde_json::to_vec(&spec).unwrap()).unwrap();
    assert_eq!(
        sh_in(&b, &t, &["--device", "nvidia.com/gpu=0"],
            "ls /dev/nvidia[0-9]*; echo $FROM_FILE; grep -q libcuda.so.1 /etc/ld.so.cache && echo cached"),
        "/dev/nvidia0\n1\ncached\n"
    );
}

#[test]
fn engine_api_device_requests_take_the_same_path() {
    assert!(common::is_root("gpu"));
    let t = Tree::new();
    let b = Berth::with_busybox();
    let cdi = t.root().join("cdi");
    let s = Server::start_env(
        &b,
        "gpu",
        Stdio::null(),
        &[("BERTH_GPU_ROOT", t.root()), ("BERTH_CDI_SPEC_DIRS", &cdi)],
    );
    // The docker CLI sends --gpus as HostConfig.DeviceRequests.
    let out = s.docker_ok(&[
        "run", "--rm", "--network", "none", "--gpus", "\"device=1\"", "busybox", "sh", "-c",
        "ls /dev/nvidia[0-9]*; nvidia-smi -L; mknod /tmp/g0 c 195 0; cat /tmp/g0 2>&1 | sed 's/.*: //'",
    ]);
    assert_eq!(
        out,
        "/dev/nvidia1\nGPU 1: Fake GPU 1\nOperation not permitted\n"
    );
    s.docker_ok(&["create", "--name", "gpu1", "--gpus", "2", "busybox"]);
    let v: serde_json::Value = serde_json::from_str(&s.docker_ok(&["inspect", "gpu1"])).unwrap();
    let r = &v[0]["HostConfig"]["DeviceRequests"][0];
    assert_eq!(
        (r["Count"].as_i64(), r["Capabilities"].clone()),
        (Some(2), serde_json::json!([["gpu"]]))
    );
    let (code, _, err) = s.docker(&["run", "--rm", "--gpus", "device=9", "busybox", "true"]);
    assert_ne!(code, 0);
    assert!(err.contains("unknown GPU \"9\""), "{err}");
    s.docker_ok(&["rm", "gpu1"]);
}
