//! `kube play` / `kube down` of manifests in the style real projects ship, checking what
//! runs: env, mounts, cgroup limits, probes, restarts, pods that share localhost, init
//! containers; and that bad input names the document and field and starts nothing.

mod common;
use common::{wait_for, Berth};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

fn manifest(b: &Berth, name: &str, text: &str) -> PathBuf {
    let p = b.dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn f(b: &Berth, id: &str, template: &str) -> String {
    b.ok(&["inspect", "-f", template, id]).trim().to_string()
}

/// Names of the containers `kube play` made from manifests (the pods' infra containers left
/// out).
fn members(b: &Berth) -> Vec<String> {
    let mut v: Vec<String> = b
        .ok(&[
            "ps",
            "-a",
            "--filter",
            "label=io.berth.kube.pod",
            "--format",
            "{{.Names}}",
        ])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// `pod ls`: each pod's name and number of containers (its infra one included), sorted.
fn pods(b: &Berth) -> Vec<String> {
    let mut v: Vec<String> = b
        .ok(&["pod", "ls", "--format", "{{.Name}} {{.NumberOfContainers}}"])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// The ID of the infra container of the pod `name`.
fn infra_of(b: &Berth, name: &str) -> String {
    let id = b
        .ok(&["pod", "inspect", "--format", "{{.InfraContainerID}}", name])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    id
}

/// Names of the containers `ps -a` lists (infra containers included).
fn names(b: &Berth) -> Vec<String> {
    let mut v: Vec<String> = b
        .ok(&["ps", "-a", "--format", "{{.Names}}"])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// The container of `pod` whose Kubernetes name is `container`.
fn container_of(b: &Berth, pod: &str, container: &str) -> String {
    let out = b.ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=io.berth.kube.pod={pod}"),
        "--filter",
        &format!("label=io.berth.kube.container={container}"),
        "--format",
        "{{.Names}}",
    ]);
    let n = out.trim().to_string();
    assert!(!n.is_empty(), "no container {container} in pod {pod}");
    n
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn a_web_stack_of_deployment_service_configmap_and_claim() {
    common::is_root("kube play");
    let b = Berth::with_busybox();
    let port = free_port();
    let file = manifest(
        &b,
        "web.yaml",
        &format!(
            r#"# A web tier as projects ship it.
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  GREETING: hello
  index.html: |
    <h1>served by kube play</h1>
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: web-data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 1
      nodeSelector:
        disktype: ssd
      containers:
      - name: httpd
        image: busybox
        command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
        env:
        - name: GREETING
          valueFrom:
            configMapKeyRef:
              name: web-config
              key: GREETING
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        ports:
        - name: http
          containerPort: 8080
        resources:
          limits:
            memory: 64Mi
            cpu: 500m
        readinessProbe:
          httpGet:
            path: /index.html
            port: http
          periodSeconds: 1
        volumeMounts:
        - name: html
          mountPath: /www
        - name: data
          mountPath: /data
      volumes:
      - name: html
        configMap:
          name: web-config
      - name: data
        persistentVolumeClaim:
          claimName: web-data
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector:
    app: web
  ports:
  - port: 80
    targetPort: http
    nodePort: {port}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  rules: []
"#
        ),
    );
    let (code, out, err) = b.code(&["kube", "play", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    // One warning lists what does not run locally.
    assert_eq!(err.matches("WARNING").count(), 1, "{err}");
    assert!(err.contains("spec.template.spec.nodeSelector"), "{err}");
    assert!(
        err.contains("document 5 (Ingress web): the whole object"),
        "{err}"
    );
    assert!(out.starts_with("Volumes:\nweb-data\nPod:\n"), "{out}");
    assert_eq!(out.matches("Pod:").count(), 3, "{out}");
    let played: Vec<&str> = out
        .lines()
        .zip(out.lines().skip(1))
        .filter(|(a, _)| *a == "Pod:")
        .map(|(_, id)| id)
        .collect();

    let all = members(&b);
    assert_eq!(all.len(), 3, "{all:?}");
    let pods: Vec<String> = all
        .iter()
        .map(|n| n.trim_end_matches("-httpd").to_string())
        .collect();
    // As podman, play prints each pod's ID.
    for (p, id) in pods.iter().zip(&played) {
        assert_eq!(
            b.ok(&["pod", "inspect", "--format", "{{.Id}}", p]).trim(),
            *id
        );
    }
    // Each replica is a berth pod: its infra container and the httpd one, which joined the
    // infra's network namespace.
    let listed = self::pods(&b);
    assert_eq!(
        listed,
        pods.iter().map(|p| format!("{p} 2")).collect::<Vec<_>>(),
        "{listed:?}"
    );
    assert_eq!(names(&b).len(), 6);
    for (p, n) in pods.iter().zip(&all) {
        assert_eq!(
            f(&b, n, "{{.HostConfig.NetworkMode}}"),
            format!("container:{}", infra_of(&b, p))
        );
        assert_eq!(
            f(&b, n, "{{.Pod}}"),
            b.ok(&["pod", "inspect", "--format", "{{.Id}}", p]).trim()
        );
    }
    // ps --pod adds podman's columns; ps --filter pod= lists one pod's containers.
    let ps = b.ok(&["ps", "--pod"]);
    let header = ps.lines().next().unwrap();
    assert!(
        header.contains("POD ID") && header.trim_end().ends_with("PODNAME"),
        "{ps}"
    );
    for p in &pods {
        assert_eq!(
            ps.matches(p.as_str()).count(),
            3,
            "{p}: name and pod name of httpd, pod name of infra:\n{ps}"
        );
    }
    let in_pod = b.ok(&[
        "ps",
        "--filter",
        &format!("pod={}", pods[1]),
        "--format",
        "{{.Names}} {{.PodName}}",
    ]);
    let mut in_pod: Vec<&str> = in_pod.lines().collect();
    in_pod.sort();
    let pod_id = b.ok(&["pod", "inspect", "--format", "{{.Id}}", &pods[1]]);
    let infra_name = format!("{}-infra", &pod_id[..12]);
    let mut want = vec![
        format!("{} {}", all[1], pods[1]),
        format!("{infra_name} {}", pods[1]),
    ];
    want.sort();
    assert_eq!(in_pod, want);
    assert_eq!(
        b.ok(&["ps", "-q", "--filter", "pod=no-such-pod"]),
        "",
        "a pod no one has matches nothing"
    );
    // kube generate of one replica's pod as a Deployment: the played Deployment's name and
    // labels, the pod's container (not its infra one), valid for the API.
    let written = b.dir.path().join("web-generated.yaml");
    b.ok(&[
        "kube",
        "generate",
        "--type",
        "deployment",
        "-f",
        written.to_str().unwrap(),
        &pods[0],
    ]);
    common::kube::validate(&written);
    let gen = yaml_doc(&std::fs::read_to_string(&written).unwrap(), "Deployment");
    assert_eq!(gen["metadata"]["name"], "web");
    assert_eq!(gen["spec"]["selector"]["matchLabels"]["app"], "web");
    let cs = gen["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(cs.len(), 1, "{gen}");
    assert_eq!(cs[0]["name"], "httpd");
    assert_eq!(
        cs[0]["ports"],
        serde_json::json!([{"containerPort": 8080, "protocol": "TCP"}])
    );
    for (i, p) in pods.iter().enumerate() {
        assert!(
            p.starts_with("web-") && p.ends_with(&format!("-{i}")),
            "{p}"
        );
    }
    for n in &all {
        assert_eq!(f(&b, n, "{{.State.Status}}"), "running");
        assert_eq!(f(&b, n, "{{.HostConfig.RestartPolicy.Name}}"), "always");
        assert_eq!(f(&b, n, "{{.HostConfig.Memory}}"), "67108864");
        assert_eq!(f(&b, n, "{{.HostConfig.NanoCpus}}"), "500000000");
    }
    let first = &all[0];
    let env = b.ok(&["exec", first, "sh", "-c", "echo $GREETING $POD_NAME"]);
    assert_eq!(env.trim(), format!("hello {}", pods[0]));
    // The ConfigMap's keys are files, read-only.
    let html = b.ok(&["exec", first, "cat", "/www/index.html"]);
    assert_eq!(html, "<h1>served by kube play</h1>\n");
    let (code, _, _) = b.code(&["exec", first, "touch", "/www/x"]);
    assert_ne!(code, 0, "a ConfigMap volume must be read-only");
    // The claim is one volume all replicas share.
    b.ok(&["exec", first, "sh", "-c", "echo shared > /data/f"]);
    assert_eq!(b.ok(&["exec", &all[2], "cat", "/data/f"]), "shared\n");
    // The cgroup has the limit.
    let limit = b.ok(&[
        "exec",
        first,
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    assert_eq!(limit.trim(), "67108864");

    // The readiness probe (an HTTP GET inside the container) drives the health status.
    for n in &all {
        wait_for("healthy replicas", LONG, || {
            f(&b, n, "{{.State.Health.Status}}") == "healthy"
        });
    }
    // The Service's nodePort is published on the host.
    let mut page = None;
    wait_for("the nodePort", LONG, || {
        page = http_get(port, "/index.html");
        page.as_deref()
            .is_some_and(|p| p.contains("served by kube play"))
    });

    // Playing again is refused; --replace plays again.
    let (code, _, err) = b.code(&["kube", "play", file.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("already in use") && err.contains("--replace"),
        "{err}"
    );
    b.ok(&["kube", "play", "--replace", file.to_str().unwrap()]);
    assert_eq!(members(&b).len(), 3);
    assert_eq!(self::pods(&b).len(), 3);

    // down removes every container and the manifest's files; the claim keeps its data.
    let replayed: Vec<String> = self::pods(&b)
        .iter()
        .map(|p| {
            let name = p.split(' ').next().unwrap();
            b.ok(&["pod", "inspect", "--format", "{{.Id}}", name])
                .trim()
                .to_string()
        })
        .collect();
    let out = b.ok(&["kube", "down", file.to_str().unwrap()]);
    assert!(out.contains("Pods removed:"), "{out}");
    for id in &replayed {
        assert_eq!(out.matches(id.as_str()).count(), 2, "{out}");
    }
    assert!(names(&b).is_empty(), "{:?}", names(&b));
    assert!(self::pods(&b).is_empty(), "{:?}", self::pods(&b));
    let vols = b.ok(&["volume", "ls", "-q"]);
    assert_eq!(vols.trim(), "web-data");
    assert!(common::list(&b.root().join("kube")).is_empty());
}

#[test]
fn a_training_job_with_limits_and_a_memory_backed_dev_shm() {
    common::is_root("kube play");
    let b = Berth::with_busybox();
    let file = manifest(
        &b,
        "train.yaml",
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: train
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: trainer
        image: busybox
        command: ["sh", "-c"]
        args:
        - |
          echo limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)
          echo quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)
          echo shm=$(awk '$2 == "/dev/shm" {print $3}' /proc/mounts)
          echo shmsize=$(df -k /dev/shm | awk 'NR==2 {print $2}')
          echo epochs=$EPOCHS
        env:
        - name: EPOCHS
          value: "3"
        resources:
          limits:
            memory: 256Mi
            cpu: "1"
          requests:
            memory: 128Mi
            cpu: 500m
        volumeMounts:
        - name: dshm
          mountPath: /dev/shm
      volumes:
      - name: dshm
        emptyDir:
          medium: Memory
          sizeLimit: 128Mi
"#,
    );
    b.ok(&["kube", "play", file.to_str().unwrap()]);
    let all = members(&b);
    assert_eq!(all.len(), 1, "{all:?}");
    let n = &all[0];
    assert!(n.starts_with("train-") && n.ends_with("-trainer"), "{n}");
    let code = b.ok(&["wait", n]);
    assert_eq!(code.trim(), "0");
    let logs = b.ok(&["logs", n]);
    assert!(logs.contains(&format!("limit={}", 256 << 20)), "{logs}");
    assert!(logs.contains("quota=100000"), "{logs}");
    assert!(logs.contains("shm=tmpfs"), "{logs}");
    assert!(logs.contains(&format!("shmsize={}", 128 << 10)), "{logs}");
    assert!(logs.contains("epochs=3"), "{logs}");
    assert_eq!(
        f(&b, n, "{{.HostConfig.MemoryReservation}}"),
        (128u64 << 20).to_string()
    );
    assert_eq!(f(&b, n, "{{.HostConfig.CpuShares}}"), "512");
    assert_eq!(f(&b, n, "{{.HostConfig.RestartPolicy.Name}}"), "no");
    b.ok(&["kube", "down", file.to_str().unwrap()]);
    assert!(names(&b).is_empty());
}

#[test]
fn a_failing_job_is_retried_up_to_its_backoff_limit() {
    common::is_root("kube play");
    let b = Berth::with_busybox();
    let file = manifest(
        &b,
        "fail.yaml",
        r#"apiVersion: batch/v1
kind: Job
metadata: {name: flaky}
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: OnFailure
      containers:
      - {name: run, image: busybox, command: [sh, -c, "echo try; exit 3"]}
---
apiVersion: v1
kind: Pod
metadata: {name: once}
spec:
  restartPolicy: Never
  containers:
  - {name: run, image: busybox, command: [sh, -c, "exit 4"]}
"#,
    );
    b.ok(&["kube", "play", file.to_str().unwrap()]);
    let flaky = container_of(&b, members(&b)[0].trim_end_matches("-run"), "run");
    assert!(flaky.starts_with("flaky-"), "{flaky}");
    assert_eq!(
        f(
            &b,
            &flaky,
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "on-failure:2"
    );
    wait_for("two retries", LONG, || {
        f(&b, &flaky, "{{.RestartCount}} {{.State.Status}}") == "2 exited"
    });
    assert_eq!(f(&b, &flaky, "{{.State.ExitCode}}"), "3");
    assert_eq!(b.ok(&["logs", &flaky]).matches("try").count(), 3);
    wait_for("the Never pod to exit", LONG, || {
        f(&b, "once-run", "{{.State.Status}}") == "exited"
    });
    assert_eq!(f(&b, "once-run", "{{.RestartCount}}"), "0");
    assert_eq!(f(&b, "once-run", "{{.State.ExitCode}}"), "4");
    b.ok(&["kube", "down", file.to_str().unwrap()]);
    assert!(names(&b).is_empty());
}

#[test]
fn init_containers_run_to_completion_first() {
    common::is_root("kube play");
    let b = Berth::with_busybox();
    let file = manifest(
        &b,
        "init.yaml",
        r#"apiVersion: v1
kind: Pod
metadata:
  name: app
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: fetch
    image: busybox
    command: ["sh", "-c", "sleep 1; echo model-v1 > /work/model; readlink /proc/self/ns/net > /work/netns"]
    volumeMounts: [{name: work, mountPath: /work}]
  - name: check
    image: busybox
    command: ["sh", "-c", "test -s /work/model && echo checked >> /work/model"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "cat /work/model; exec sleep 600"]
    volumeMounts: [{name: work, mountPath: /work}]
  volumes:
  - name: work
    emptyDir: {}
"#,
    );
    let out = b.ok(&["kube", "play", file.to_str().unwrap()]);
    assert!(out.contains("Init containers:"), "{out}");
    for init in ["app-fetch", "app-check"] {
        assert_eq!(
            f(&b, init, "{{.State.Status}} {{.State.ExitCode}}"),
            "exited 0"
        );
    }
    wait_for("the main container's output", LONG, || {
        b.ok(&["logs", "app-main"]) == "model-v1\nchecked\n"
    });
    assert_eq!(f(&b, "app-main", "{{.State.Status}}"), "running");
    // The init containers ran inside the pod: in its network namespace, as the main one.
    let netns = b.ok(&["exec", "app-main", "readlink", "/proc/self/ns/net"]);
    assert_eq!(b.ok(&["exec", "app-main", "cat", "/work/netns"]), netns);
    let infra = format!("container:{}", infra_of(&b, "app"));
    for c in ["app-fetch", "app-check", "app-main"] {
        assert_eq!(f(&b, c, "{{.HostConfig.NetworkMode}}"), infra, "{c}");
    }
    assert_eq!(pods(&b), ["app 4"]);
    // kube generate of the pod gives its init containers back as initContainers, in order.
    let written = b.dir.path().join("app-generated.yaml");
    b.ok(&["kube", "generate", "-f", written.to_str().unwrap(), "app"]);
    common::kube::validate(&written);
    let gen = yaml_doc(&std::fs::read_to_string(&written).unwrap(), "Pod");
    let entries = |key: &str| -> Vec<String> {
        gen["spec"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(entries("initContainers"), ["fetch", "check"], "{gen}");
    assert_eq!(entries("containers"), ["main"], "{gen}");
    b.ok(&["kube", "down", file.to_str().unwrap()]);
    assert!(names(&b).is_empty());
    assert!(pods(&b).is_empty());

    // A failing init container stops the pod before its containers start, and nothing
    // of the play is left; the error carries the init container's last output.
    let bad = manifest(
        &b,
        "bad-init.yaml",
        r#"apiVersion: v1
kind: Pod
metadata: {name: broken}
spec:
  initContainers:
  - {name: setup, image: busybox, command: [sh, -c, "echo no model found; exit 7"]}
  containers:
  - {name: main, image: busybox, command: [sleep, "600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: fine}
spec:
  containers:
  - {name: main, image: busybox, command: [sleep, "600"]}
"#,
    );
    let (code, _, err) = b.code(&["kube", "play", bad.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("init container setup exited with code 7") && err.contains("no model found"),
        "{err}"
    );
    assert!(names(&b).is_empty(), "{:?}", names(&b));
    assert!(pods(&b).is_empty(), "{:?}", pods(&b));
}

#[test]
fn a_pod_that_cannot_start_takes_the_whole_play_back() {
    common::is_root("kube play");
    let b = Berth::with_busybox();
    // The host port the second pod publishes is taken, so its start fails after the first
    // pod (and maybe the second's infra) started.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let file = manifest(
        &b,
        "clash.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: first}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - {{name: main, image: busybox, command: [sleep, "600"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: second}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - {{name: main, image: busybox, command: [sleep, "600"], ports: [{{containerPort: 80, hostPort: {port}}}]}}
"#
        ),
    );
    let (code, out, err) = b.code(&["kube", "play", file.to_str().unwrap()]);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("pod second") && err.contains(&port.to_string()),
        "{err}"
    );
    assert!(names(&b).is_empty(), "{:?}", names(&b));
    assert!(pods(&b).is_empty(), "{:?}", pods(&b));
    drop(taken);
    // With the port free, the same manifest plays.
    b.ok(&["kube", "play", file.to_str().unwrap()]);
    assert_eq!(pods(&b), ["first 2", "second 2"]);
    b.ok(&["kube", "down", file.to_str().unwrap()]);
    assert!(names(&b).is_empty());
}

#[test]
fn two_containers_of_a_pod_talk_over_localhost() {
    common::is_root("kube play");
    let b = Berth::with_busybox();
    let file = manifest(
        &b,
        "duo.yaml",
        r#"apiVersion: v1
kind: Pod
metadata:
  name: duo
  labels: {app: duo}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: server
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo pong > /www/ping && exec httpd -f -p 8080 -h /www"]
    livenessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
  - name: client
    image: busybox
    command: ["sh", "-c", "until wget -q -O- http://localhost:8080/ping; do sleep 0.2; done; exec sleep 600"]
    livenessProbe:
      exec: {command: ["test", "-e", "/tmp/never"]}
      periodSeconds: 1
      failureThreshold: 1
"#,
    );
    b.ok(&["kube", "play", file.to_str().unwrap()]);
    wait_for("the client to reach the server", LONG, || {
        b.ok(&["logs", "duo-client"]).contains("pong")
    });
    assert_eq!(
        b.ok(&[
            "exec",
            "duo-client",
            "wget",
            "-q",
            "-O-",
            "http://127.0.0.1:8080/ping"
        ]),
        "pong\n"
    );
    assert_eq!(b.ok(&["exec", "duo-server", "hostname"]).trim(), "duo");
    assert_eq!(b.ok(&["exec", "duo-client", "hostname"]).trim(), "duo");
    // One berth pod holds both: `pod ps` counts its infra container and the two.
    assert_eq!(pods(&b), ["duo 3"]);
    let infra = format!("container:{}", infra_of(&b, "duo"));
    for c in ["duo-server", "duo-client"] {
        assert_eq!(f(&b, c, "{{.HostConfig.NetworkMode}}"), infra, "{c}");
    }
    // A tcpSocket probe that connects is healthy; an exec probe that fails is unhealthy.
    wait_for("healthy server", LONG, || {
        f(&b, "duo-server", "{{.State.Health.Status}}") == "healthy"
    });
    wait_for("unhealthy client", LONG, || {
        f(&b, "duo-client", "{{.State.Health.Status}}") == "unhealthy"
    });
    b.ok(&["kube", "play", "--down", file.to_str().unwrap()]);
    assert!(names(&b).is_empty());
    assert!(pods(&b).is_empty());
}

#[test]
fn bad_input_names_the_document_and_field_and_starts_nothing() {
    common::is_root("kube play");
    let b = Berth::with_busybox();
    let good = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: claim}\nspec: {}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec:\n  volumes: [{name: d, persistentVolumeClaim: {claimName: claim}}]\n  containers: [{name: c, image: busybox, command: [sleep, '600'], volumeMounts: [{name: d, mountPath: /d}]}]\n";
    let cases = [
        (
            "wrong-type.yaml",
            format!("{good}---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers:\n      - name: web\n        image: busybox\n        ports:\n        - containerPort: http\n"),
            "document 3 (Deployment web): spec.template.spec.containers[0].ports[0].containerPort: invalid type: string \"http\", expected an integer",
        ),
        (
            "bad-yaml.yaml",
            format!("{good}---\napiVersion: v1\nkind: Pod\nmetadata: {{name: x\n"),
            "document 3: invalid YAML",
        ),
        (
            "unknown-kind.yaml",
            format!("{good}---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: w}}\n"),
            "document 3: unknown kind \"Widget\"",
        ),
        (
            "unknown-field.yaml",
            format!("{good}---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers: [{{name: c, image: busybox, imagePullPolice: Never}}]\n"),
            "document 3 (Pod p): spec.containers[0].imagePullPolice: unknown field `imagePullPolice`",
        ),
        (
            "missing-ref.yaml",
            format!("{good}---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers: [{{name: c, image: busybox, envFrom: [{{configMapRef: {{name: nope}}}}]}}]\n"),
            "document 3 (Pod p): spec.containers[0].envFrom[0].configMapRef.name: ConfigMap \"nope\" is not in the manifests",
        ),
        (
            "missing-image.yaml",
            format!("{good}---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers: [{{name: c, image: nosuchimage, imagePullPolicy: Never}}]\n"),
            "nosuchimage",
        ),
    ];
    for (name, text, want) in cases {
        let file = manifest(&b, name, &text);
        let (code, out, err) = b.code(&["kube", "play", file.to_str().unwrap()]);
        assert_ne!(code, 0, "{name}: {out}");
        assert!(err.contains(want), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: one error line: {err}");
        assert!(names(&b).is_empty(), "{name}: {:?}", names(&b));
        assert!(pods(&b).is_empty(), "{name}: {:?}", pods(&b));
        assert_eq!(b.ok(&["volume", "ls", "-q"]), "", "{name}");
    }
    let (code, _, err) = b.code(&["kube", "play", "/nonexistent.yaml"]);
    assert_ne!(code, 0);
    assert!(err.contains("/nonexistent.yaml"), "{err}");
}

#[test]
fn generate_of_what_play_ran_gives_an_equivalent_manifest() {
    common::is_root("kube play");
    let b = Berth::with_busybox();
    let text = r#"apiVersion: v1
kind: Pod
metadata:
  name: api
  labels:
    app: api
spec:
  restartPolicy: OnFailure
  containers:
  - name: api
    image: busybox
    command: ["httpd"]
    args: ["-f", "-p", "8080"]
    workingDir: /srv
    env:
    - name: MODE
      value: production
    ports:
    - containerPort: 8080
      protocol: TCP
    resources:
      limits:
        memory: 96Mi
        cpu: 250m
    securityContext:
      runAsUser: 1000
      runAsGroup: 1000
      readOnlyRootFilesystem: true
      capabilities:
        add: [NET_ADMIN]
        drop: [MKNOD]
    livenessProbe:
      exec:
        command: ["true"]
      periodSeconds: 5
      timeoutSeconds: 2
      failureThreshold: 4
    volumeMounts:
    - name: data
      mountPath: /data
    - name: cache
      mountPath: /cache
  - name: metrics
    image: busybox
    command: ["sleep", "600"]
    ports:
    - containerPort: 9090
      protocol: UDP
  volumes:
  - name: data
    persistentVolumeClaim:
      claimName: api-data
  - name: cache
    emptyDir:
      medium: Memory
      sizeLimit: 32Mi
"#;
    let file = manifest(&b, "api.yaml", text);
    b.ok(&["kube", "play", file.to_str().unwrap()]);
    let out = b.ok(&["kube", "generate", "api-api", "api-metrics"]);
    // The berth pod play ran names the same containers: the same manifest, valid.
    let by_pod = b.ok(&["kube", "generate", "api"]);
    assert_eq!(
        by_pod.lines().skip(1).collect::<Vec<_>>(),
        out.lines().skip(1).collect::<Vec<_>>()
    );
    let written = b.dir.path().join("generated.yaml");
    std::fs::write(&written, &by_pod).unwrap();
    common::kube::validate(&written);
    let gen: serde_json::Value = yaml_doc(&out, "Pod");
    let orig: serde_json::Value = yaml_doc(text, "Pod");
    assert_eq!(gen["metadata"]["name"], orig["metadata"]["name"], "{out}");
    assert_eq!(gen["metadata"]["labels"]["app"], "api", "{out}");
    assert_eq!(gen["spec"]["restartPolicy"], "OnFailure");
    let (g, o) = (
        &gen["spec"]["containers"][0],
        &orig["spec"]["containers"][0],
    );
    for key in [
        "name",
        "image",
        "command",
        "args",
        "workingDir",
        "env",
        "ports",
        "resources",
        "securityContext",
    ] {
        assert_eq!(g[key], o[key], "{key}:\n{out}");
    }
    for key in [
        "exec",
        "periodSeconds",
        "timeoutSeconds",
        "failureThreshold",
    ] {
        assert_eq!(
            g["livenessProbe"][key], o["livenessProbe"][key],
            "{key}:\n{out}"
        );
    }
    // The volumes: the claim, and the memory-backed emptyDir with its size.
    let vols = gen["spec"]["volumes"].as_array().unwrap();
    assert!(
        vols.iter()
            .any(|v| v["persistentVolumeClaim"]["claimName"] == "api-data"),
        "{out}"
    );
    assert!(
        vols.iter()
            .any(|v| v["emptyDir"] == serde_json::json!({"medium": "Memory", "sizeLimit": "32Mi"})),
        "{out}"
    );
    // Each container keeps its own ports, though the pod holds them all.
    let (g2, o2) = (
        &gen["spec"]["containers"][1],
        &orig["spec"]["containers"][1],
    );
    for key in ["name", "image", "command", "ports"] {
        assert_eq!(g2[key], o2[key], "{key}:\n{out}");
    }
    let mounts: Vec<&str> = g["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert_eq!(mounts, ["/data", "/cache"], "{out}");
    b.ok(&["kube", "down", file.to_str().unwrap()]);
}

/// The first document of `kind` in a YAML stream, as JSON.
fn yaml_doc(text: &str, kind: &str) -> serde_json::Value {
    for part in text.split("\n---\n") {
        let v: serde_json::Value = yaml_serde::from_str(part).unwrap();
        if v["kind"] == kind {
            return v;
        }
    }
    panic!("no {kind} in {text}");
}
