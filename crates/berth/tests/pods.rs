//! Pods (real containers, root): containers that share a network namespace held by the pod's
//! infra container, ports published on the pod, and the `pod` commands' output and errors.

mod common;
use common::{wait_for, Berth};
use std::time::Duration;

/// A free TCP port on 127.0.0.1 (bound and released; the kernel does not hand it out again
/// at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

const HTTPD: &str =
    "mkdir -p /www && echo served-in-pod > /www/index.html && exec httpd -f -p 80 -h /www";

#[test]
fn containers_in_a_pod_share_localhost_and_the_pods_ports() {
    assert!(common::is_root("pods"));
    let b = Berth::with_busybox();
    let port = free_port();
    let pod = b
        .ok(&[
            "pod",
            "create",
            "--name",
            "web",
            "-p",
            &format!("127.0.0.1:{port}:80"),
            "--label",
            "app=shop",
        ])
        .trim()
        .to_string();
    assert_eq!(pod.len(), 64, "{pod}");
    // The infra container exists (created), named after the pod's short ID.
    let infra_name = format!("{}-infra", &pod[..12]);
    let ps = b.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    assert!(ps.contains(&format!("{infra_name} created")), "{ps}");
    b.ok(&[
        "run", "-d", "--pod", "web", "--name", "server", "busybox", "sh", "-c", HTTPD,
    ]);
    // A second member reaches the server on its own loopback and sees the pod's hostname.
    let out = b.ok(&[
        "run", "--rm", "--pod", "web", "busybox", "sh", "-c",
        "hostname; for i in $(seq 1 50); do wget -q -O- http://127.0.0.1:80/ && break; sleep 0.2; done",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"web"), "{out}");
    assert!(out.contains("served-in-pod"), "{out}");
    // The pod's published port answers on the host.
    let mut got = None;
    wait_for("the pod's port", Duration::from_secs(20), || {
        got = http_get(port).filter(|r| r.contains("served-in-pod"));
        got.is_some()
    });
    // A member shares the pod's IPC namespace, and `inspect` names the pod.
    let ipc = |c: &str| b.ok(&["inspect", "--format", "{{.HostConfig.IpcMode}} {{.Pod}}", c]);
    let infra_id = b
        .ok(&["inspect", "--format", "{{.Id}}", &infra_name])
        .trim()
        .to_string();
    assert_eq!(ipc("server").trim(), format!("container:{infra_id} {pod}"));

    // pod ls: podman's columns; the infra and the server run.
    let ls = b.ok(&["pod", "ls"]);
    let mut rows = ls.lines();
    let header = rows.next().unwrap();
    for col in [
        "POD ID",
        "NAME",
        "STATUS",
        "CREATED",
        "INFRA ID",
        "# OF CONTAINERS",
    ] {
        assert!(header.contains(col), "{ls}");
    }
    let row: Vec<&str> = rows
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(row[0], &pod[..12], "{ls}");
    assert_eq!(row[1], "web", "{ls}");
    assert_eq!(row[2], "Running", "{ls}");
    assert_eq!(row[4], &infra_id[..12], "{ls}");
    assert_eq!(row[5], "2", "{ls}");
    // `pod ps` is the same listing; -q, --format, filters.
    assert_eq!(b.ok(&["pod", "ps", "-q"]).trim(), pod);
    assert_eq!(
        b.ok(&[
            "pod",
            "ls",
            "--format",
            "{{.Name}} {{.Status}} {{.NumberOfContainers}} {{.Labels.app}}"
        ])
        .trim(),
        "web Running 2 shop"
    );
    assert_eq!(
        b.ok(&["pod", "ls", "-q", "--filter", "label=app=shop"])
            .trim(),
        pod
    );
    assert_eq!(
        b.ok(&["pod", "ls", "-q", "--filter", "status=running"])
            .trim(),
        pod
    );
    assert_eq!(
        b.ok(&["pod", "ls", "-q", "--filter", "name=nomatch"])
            .trim(),
        ""
    );
    // pod inspect: podman's shape.
    let v: serde_json::Value = serde_json::from_str(&b.ok(&["pod", "inspect", "web"])).unwrap();
    let v = &v[0];
    assert_eq!(v["Id"], pod.as_str());
    assert_eq!(v["Name"], "web");
    assert_eq!(v["State"], "Running");
    assert_eq!(v["InfraContainerID"], infra_id.as_str());
    assert_eq!(v["NumContainers"], 2);
    assert_eq!(
        v["SharedNamespaces"],
        serde_json::json!(["ipc", "net", "uts"])
    );
    assert_eq!(v["Labels"]["app"], "shop");
    assert_eq!(
        v["InfraConfig"]["PortBindings"]["80/tcp"][0]["HostPort"],
        port.to_string()
    );
    assert_eq!(
        b.ok(&["pod", "inspect", "--format", "{{.Name}}", &pod[..12]])
            .trim(),
        "web"
    );

    // pod stop stops everything; pod start brings the member back into a new namespace,
    // where the port answers again.
    b.ok(&["pod", "stop", "-t", "1", "web"]);
    assert_eq!(
        b.ok(&["pod", "ls", "--format", "{{.Status}}"]).trim(),
        "Exited"
    );
    assert_eq!(b.ok(&["pod", "start", "web"]).trim(), pod);
    wait_for(
        "the pod's port after a restart",
        Duration::from_secs(20),
        || http_get(port).is_some_and(|r| r.contains("served-in-pod")),
    );
    assert_eq!(b.ok(&["pod", "restart", "web"]).trim(), pod);
    wait_for(
        "the pod's port after pod restart",
        Duration::from_secs(20),
        || http_get(port).is_some_and(|r| r.contains("served-in-pod")),
    );
    // A member stopped alone and started again rejoins the running pod.
    b.ok(&["stop", "-t", "1", "server"]);
    assert_eq!(
        b.ok(&["pod", "ls", "--format", "{{.Status}}"]).trim(),
        "Degraded"
    );
    b.ok(&["start", "server"]);
    wait_for(
        "the member's server after its restart",
        Duration::from_secs(20),
        || http_get(port).is_some_and(|r| r.contains("served-in-pod")),
    );

    // The infra is stopped only after the containers that live in its namespaces.
    let (_, err) = b.fails(&["stop", &infra_name]);
    assert!(err.contains("stop the pod (pod stop) instead"), "{err}");
    // The infra is removed only with the pod; a running pod only with -f.
    let (_, err) = b.fails(&["rm", "-f", &infra_name]);
    assert!(err.contains("is the infra container of pod"), "{err}");
    let (code, err) = b.fails(&["pod", "rm", "web"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("has containers that are not ready to be removed"),
        "{err}"
    );
    assert_eq!(b.ok(&["pod", "rm", "-f", "web"]).trim(), pod);
    assert_eq!(b.ok(&["ps", "-aq"]).trim(), "");
    assert_eq!(b.ok(&["pod", "ls", "-q"]).trim(), "");
    // The port is free again.
    wait_for("the port to be released", Duration::from_secs(20), || {
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
    });
}

#[test]
fn pod_errors_use_podmans_words() {
    assert!(common::is_root("pods"));
    let b = Berth::with_busybox();
    let (code, err) = b.fails(&["pod", "inspect", "nosuch"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no pod with name or ID nosuch found: no such pod"),
        "{err}"
    );
    let (code, err) = b.fails(&["pod", "rm", "nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("no pod with name or ID nosuch found"), "{err}");
    let (code, err) = b.fails(&["run", "--rm", "--pod", "nosuch", "busybox", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("no pod with name or ID nosuch found"), "{err}");

    b.ok(&["pod", "create", "--name", "p"]);
    let (code, err) = b.fails(&["pod", "create", "--name", "p"]);
    assert_eq!(code, 1);
    assert!(err.contains("name \"p\" is in use"), "{err}");
    let (code, err) = b.fails(&[
        "run", "--rm", "--pod", "p", "-p", "8080:80", "busybox", "true",
    ]);
    assert_eq!(code, 125);
    assert!(
        err.contains("published or exposed ports must be defined when the pod is created"),
        "{err}"
    );
    let (_, err) = b.fails(&[
        "run",
        "--rm",
        "--pod",
        "p",
        "--hostname",
        "x",
        "busybox",
        "true",
    ]);
    assert!(
        err.contains("cannot set hostname when joining the pod UTS namespace"),
        "{err}"
    );
    let (_, err) = b.fails(&[
        "run",
        "--rm",
        "--pod",
        "p",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    assert!(
        err.contains("network cannot be configured when it is shared with a pod"),
        "{err}"
    );
    let (_, err) = b.fails(&["pod", "create", "--share", "bogus"]);
    assert!(
        err.contains("Invalid kernel namespace to share: bogus"),
        "{err}"
    );
    let (_, err) = b.fails(&["pod", "create", "--infra=false", "-p", "8080:80"]);
    assert!(err.contains("infra container"), "{err}");
    let (_, err) = b.fails(&["pod", "ls", "--filter", "color=red"]);
    assert!(err.contains("invalid filter"), "{err}");
    // Nothing was half-made by the refusals: one pod, its infra only.
    assert_eq!(
        b.ok(&["pod", "ls", "--format", "{{.Name}} {{.NumberOfContainers}}"])
            .trim(),
        "p 1"
    );
}

#[test]
fn pod_prune_removes_stopped_pods_with_their_containers() {
    assert!(common::is_root("pods"));
    let b = Berth::with_busybox();
    let idle = b
        .ok(&["pod", "create", "--name", "idle"])
        .trim()
        .to_string();
    b.ok(&[
        "create", "--pod", "idle", "--name", "member", "busybox", "true",
    ]);
    let busy = b
        .ok(&["pod", "create", "--name", "busy"])
        .trim()
        .to_string();
    b.ok(&["run", "-d", "--pod", "busy", "busybox", "sleep", "600"]);
    // A pod without an infra container groups containers that share nothing.
    let loose = b
        .ok(&["pod", "create", "--name", "loose", "--infra=false"])
        .trim()
        .to_string();
    let out = b.ok(&["run", "--rm", "--pod", "loose", "busybox", "hostname"]);
    assert_ne!(out.trim(), "loose");
    assert_eq!(
        b.ok(&[
            "pod",
            "inspect",
            "--format",
            "{{.CreateInfra}} {{.InfraContainerID}}",
            "loose"
        ])
        .trim(),
        "false"
    );
    let pruned = b.ok(&["pod", "prune", "-f"]);
    let mut pruned: Vec<&str> = pruned.lines().collect();
    pruned.sort();
    let mut want = vec![idle.as_str(), loose.as_str()];
    want.sort();
    assert_eq!(pruned, want);
    assert_eq!(b.ok(&["pod", "ls", "-q"]).trim(), busy);
    let (_, err) = b.fails(&["inspect", "member"]);
    assert!(err.contains("No such"), "{err}");
    b.ok(&["pod", "rm", "-f", "busy"]);
    assert_eq!(b.ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn ps_shows_pods_and_kube_generate_writes_a_pod_as_one_manifest() {
    assert!(common::is_root("pods"));
    let b = Berth::with_busybox();
    let port = free_port();
    let pod = b
        .ok(&[
            "pod",
            "create",
            "--name",
            "shop",
            "-p",
            &format!("127.0.0.1:{port}:80"),
            "--shm-size",
            "32m",
        ])
        .trim()
        .to_string();
    b.ok(&[
        "run",
        "-d",
        "--pod",
        "shop",
        "--name",
        "front",
        "-e",
        "MODE=live",
        "--memory",
        "64m",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    b.ok(&[
        "run", "-d", "--pod", "shop", "--name", "worker", "busybox", "sleep", "600",
    ]);
    b.ok(&["run", "-d", "--name", "alone", "busybox", "sleep", "600"]);

    // ps --pod: podman's two columns, empty for a container outside any pod.
    let ps = b.ok(&["ps", "--pod", "--no-trunc"]);
    let header = ps.lines().next().unwrap();
    assert!(
        header.contains("POD ID") && header.trim_end().ends_with("PODNAME"),
        "{ps}"
    );
    for line in ps.lines().skip(1) {
        if line.contains("alone") {
            assert!(!line.contains(&pod), "{ps}");
        } else {
            assert!(line.trim_end().ends_with(&format!("{pod}   shop")), "{ps}");
        }
    }
    // --filter pod= by name or ID prefix: the pod's containers, its infra one included.
    let listed = |filter: &str| {
        let out = b.ok(&["ps", "--filter", filter, "--format", "{{.Names}}"]);
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    let want = vec![
        format!("{}-infra", &pod[..12]),
        "front".into(),
        "worker".into(),
    ];
    assert_eq!(listed("pod=shop"), want);
    assert_eq!(listed(&format!("pod={}", &pod[..8])), want);
    assert_eq!(listed("pod=nope"), Vec::<String>::new());
    assert_eq!(
        b.ok(&[
            "ps",
            "--format",
            "{{.Names}} {{.PodName}}",
            "--filter",
            "name=alone"
        ]),
        "alone \n"
    );
    // The members share the pod's /dev/shm, sized by the pod.
    let shm = b.ok(&["exec", "worker", "df", "-k", "/dev/shm"]);
    assert!(shm.contains(&(32 << 10).to_string()), "{shm}");

    // kube generate POD: one Pod named after it with both containers (not the infra), the
    // pod's ports on the first, its /dev/shm as a memory emptyDir; valid for the API.
    let file = b.dir.path().join("shop.yaml");
    b.ok(&[
        "kube",
        "generate",
        "--service",
        "-f",
        file.to_str().unwrap(),
        "shop",
    ]);
    common::kube::validate(&file);
    let text = std::fs::read_to_string(&file).unwrap();
    let docs: Vec<serde_json::Value> = text
        .split("\n---\n")
        .map(|d| yaml_serde::from_str(d).unwrap())
        .collect();
    let pod_doc = docs.iter().find(|d| d["kind"] == "Pod").expect(&text);
    assert_eq!(pod_doc["metadata"]["name"], "shop", "{text}");
    let cs = pod_doc["spec"]["containers"].as_array().unwrap();
    let names: Vec<&str> = cs.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["front", "worker"], "{text}");
    assert_eq!(
        cs[0]["ports"],
        serde_json::json!([{"containerPort": 80, "protocol": "TCP"}]),
        "{text}"
    );
    assert!(cs[1]["ports"].is_null(), "{text}");
    assert_eq!(cs[0]["resources"]["limits"]["memory"], "64Mi", "{text}");
    assert!(
        text.contains("medium: Memory") && text.contains("sizeLimit: 32Mi"),
        "{text}"
    );
    assert!(
        !text.contains("/etc/hosts") && !text.contains("resolv.conf"),
        "{text}"
    );
    let svc = docs.iter().find(|d| d["kind"] == "Service").expect(&text);
    assert_eq!(svc["spec"]["ports"][0]["port"], port, "{text}");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80, "{text}");
    // The infra container is not a workload of its own.
    let (_, err) = b.fails(&["kube", "generate", &format!("{}-infra", &pod[..12])]);
    assert!(err.contains("kube generate the pod instead"), "{err}");
    let (_, err) = b.fails(&["kube", "generate", "nothing-here"]);
    assert!(err.contains("no container or pod"), "{err}");
    b.ok(&["pod", "rm", "-f", "shop"]);
    b.ok(&["rm", "-f", "alone"]);
}
