//! `kube generate`: manifests from real containers, checked against Kubernetes' own schemas.

mod common;
use common::kube::validate;
use common::Berth;

#[test]
fn generated_manifests_are_valid_kubernetes_objects() {
    let b = Berth::with_busybox();
    b.ok(&["volume", "create", "data"]);
    let host_dir = tempfile::tempdir().unwrap();
    let bind = format!("{}:/host:ro", host_dir.path().display());
    b.ok(&[
        "create",
        "--name",
        "web_1",
        "-p",
        "8080:80",
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "-e",
        "A=1",
        "-w",
        "/srv",
        "-v",
        "data:/data",
        "-v",
        &bind,
        "--tmpfs",
        "/run:size=64m",
        "--shm-size",
        "128m",
        "--health-cmd",
        "wget -q -O- localhost",
        "--health-interval",
        "5s",
        "--restart",
        "on-failure:3",
        "--cap-add",
        "NET_ADMIN",
        "--read-only",
        "-u",
        "1000:1000",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
    ]);
    b.ok(&["create", "--name", "sidecar", "busybox", "sleep", "1000"]);
    let dir = tempfile::tempdir().unwrap();
    for (kind, extra) in [
        ("pod", None),
        ("deployment", Some("--service")),
        ("job", None),
    ] {
        let file = dir.path().join(format!("{kind}.yaml"));
        let f = file.to_str().unwrap();
        let mut args = vec!["kube", "generate", "--type", kind, "-f", f];
        args.extend(extra);
        args.push("web_1");
        let (code, out, err) = b.code(&args);
        assert_eq!(code, 0, "{err}");
        assert!(out.is_empty(), "-f writes the file, not stdout: {out}");
        assert!(
            err.contains("WARNING:") && err.contains("hostPath"),
            "{err}"
        );
        validate(&file);
        let text = std::fs::read_to_string(&file).unwrap();
        let want_kind = match kind {
            "pod" => "kind: Pod",
            "deployment" => "kind: Deployment",
            _ => "kind: Job",
        };
        assert!(text.contains(want_kind), "{text}");
        assert!(text.contains("name: web-1"), "{text}");
        assert!(
            text.contains("memory: 64Mi") && text.contains("cpu: 500m"),
            "{text}"
        );
        assert!(text.contains("kind: PersistentVolumeClaim"), "{text}");
        if extra.is_some() {
            assert!(
                text.contains("kind: Service") && text.contains("targetPort: 80"),
                "{text}"
            );
        }
    }
    // Two containers: one pod, on standard output.
    let out = b.ok(&["kube", "generate", "web_1", "sidecar"]);
    let file = dir.path().join("pod2.yaml");
    std::fs::write(&file, &out).unwrap();
    validate(&file);
    assert!(
        out.contains("name: web-1-pod") && out.contains("name: sidecar"),
        "{out}"
    );
    assert!(out.contains("- sleep"), "{out}");
}

#[test]
fn bad_arguments_are_refused() {
    let b = Berth::with_busybox();
    let (code, _, err) = b.code(&["kube", "generate", "nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
    b.ok(&["create", "--name", "ctr", "busybox", "true"]);
    let (code, _, err) = b.code(&["kube", "generate", "--type", "cronjob", "ctr"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("must be one of pod, deployment, job"), "{err}");
}
