//! The Kubernetes objects `kube play` reads, as typed serde structs.
//!
//! Every field the Kubernetes API knows is declared, so a field it would reject (a typo, a
//! field of another object) is an error naming its path, as `kubectl apply` (strict field
//! validation) reports it. Fields berth cannot honour locally are declared too, as
//! [`Ignored`], and [`Unsupported::unsupported`] names the ones a manifest sets, for the one
//! warning `kube play` prints.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A field berth accepts but cannot run locally (listed in the warning).
pub type Ignored = Option<yaml_serde::Value>;

/// The names of the unsupported fields an object sets.
pub trait Unsupported {
    fn unsupported(&self) -> Vec<&'static str>;
}

macro_rules! unsupported {
    ($t:ty, $($f:ident => $n:literal),* $(,)?) => {
        impl Unsupported for $t {
            fn unsupported(&self) -> Vec<&'static str> {
                let mut v: Vec<&'static str> = Vec::new();
                $( if self.$f.is_some() { v.push($n); } )*
                v
            }
        }
    };
}

/// `int-or-string` (ports, `targetPort`).
#[derive(Debug, Clone, PartialEq)]
pub enum IntOrString {
    Int(i64),
    Str(String),
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntOrString;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrString, E> {
                Ok(IntOrString::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrString, E> {
                i64::try_from(v)
                    .map(IntOrString::Int)
                    .map_err(|_| E::custom("integer out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrString, E> {
                Ok(IntOrString::Str(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A resource quantity (`128Mi`, `0.5`, `500m`), kept as written; the plan parses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantity(pub String);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a quantity (a number or a string such as 128Mi)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A file mode: an integer, or a YAML 1.1 octal literal (`0644`), which Kubernetes' YAML
/// reader takes as octal and a YAML 1.2 reader as a string.
fn mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<i32>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an integer (a file mode such as 0644 or 420)")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            i32::try_from(v)
                .map(Some)
                .map_err(|_| E::custom("integer out of range"))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            i32::try_from(v)
                .map(Some)
                .map_err(|_| E::custom("integer out of range"))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let octal = v.strip_prefix("0o").or_else(|| v.strip_prefix('0'));
            match octal.map(|o| i32::from_str_radix(o, 8)) {
                Some(Ok(m)) => Ok(Some(m)),
                _ => Err(E::invalid_type(de::Unexpected::Str(v), &self)),
            }
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    pub generate_name: Option<String>,
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub uid: Ignored,
    pub resource_version: Ignored,
    pub generation: Ignored,
    pub creation_timestamp: Ignored,
    pub deletion_timestamp: Ignored,
    pub deletion_grace_period_seconds: Ignored,
    pub owner_references: Ignored,
    pub finalizers: Ignored,
    pub managed_fields: Ignored,
    pub self_link: Ignored,
}

// Server-set metadata (uid, resourceVersion, …) means nothing locally and is not worth a
// warning: `kubectl get -o yaml` output carries it.
impl Unsupported for ObjectMeta {
    fn unsupported(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.finalizers.is_some() {
            v.push("finalizers");
        }
        if self.owner_references.is_some() {
            v.push("ownerReferences");
        }
        v
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodTemplateSpec {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PodSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSpec {
    #[serde(default)]
    pub volumes: Vec<Volume>,
    #[serde(default)]
    pub init_containers: Vec<Container>,
    #[serde(default)]
    pub containers: Vec<Container>,
    pub restart_policy: Option<String>,
    pub termination_grace_period_seconds: Option<i64>,
    pub host_network: Option<bool>,
    #[serde(rename = "hostPID")]
    pub host_pid: Option<bool>,
    #[serde(rename = "hostIPC")]
    pub host_ipc: Option<bool>,
    pub share_process_namespace: Option<bool>,
    pub security_context: Option<PodSecurityContext>,
    pub hostname: Option<String>,
    pub subdomain: Option<String>,
    #[serde(default)]
    pub host_aliases: Vec<HostAlias>,
    pub dns_config: Option<PodDnsConfig>,
    pub ephemeral_containers: Ignored,
    pub active_deadline_seconds: Ignored,
    pub dns_policy: Ignored,
    pub node_selector: Ignored,
    pub service_account_name: Ignored,
    pub service_account: Ignored,
    pub automount_service_account_token: Ignored,
    pub node_name: Ignored,
    pub image_pull_secrets: Ignored,
    pub affinity: Ignored,
    pub scheduler_name: Ignored,
    pub tolerations: Ignored,
    pub priority_class_name: Ignored,
    pub priority: Ignored,
    pub readiness_gates: Ignored,
    pub runtime_class_name: Ignored,
    pub enable_service_links: Ignored,
    pub preemption_policy: Ignored,
    pub overhead: Ignored,
    pub topology_spread_constraints: Ignored,
    #[serde(rename = "setHostnameAsFQDN")]
    pub set_hostname_as_fqdn: Ignored,
    pub os: Ignored,
    pub host_users: Ignored,
    pub scheduling_gates: Ignored,
    pub resource_claims: Ignored,
    pub resources: Ignored,
}

unsupported!(PodSpec,
    ephemeral_containers => "ephemeralContainers",
    active_deadline_seconds => "activeDeadlineSeconds",
    dns_policy => "dnsPolicy",
    node_selector => "nodeSelector",
    service_account_name => "serviceAccountName",
    service_account => "serviceAccount",
    automount_service_account_token => "automountServiceAccountToken",
    node_name => "nodeName",
    image_pull_secrets => "imagePullSecrets",
    affinity => "affinity",
    scheduler_name => "schedulerName",
    tolerations => "tolerations",
    priority_class_name => "priorityClassName",
    priority => "priority",
    readiness_gates => "readinessGates",
    runtime_class_name => "runtimeClassName",
    enable_service_links => "enableServiceLinks",
    preemption_policy => "preemptionPolicy",
    overhead => "overhead",
    topology_spread_constraints => "topologySpreadConstraints",
    set_hostname_as_fqdn => "setHostnameAsFQDN",
    os => "os",
    host_users => "hostUsers",
    scheduling_gates => "schedulingGates",
    resource_claims => "resourceClaims",
    resources => "resources",
    subdomain => "subdomain",
);

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostAlias {
    pub ip: String,
    #[serde(default)]
    pub hostnames: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodDnsConfig {
    #[serde(default)]
    pub nameservers: Vec<String>,
    #[serde(default)]
    pub searches: Vec<String>,
    #[serde(default)]
    pub options: Vec<PodDnsConfigOption>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodDnsConfigOption {
    pub name: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSecurityContext {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub run_as_non_root: Option<bool>,
    #[serde(default)]
    pub supplemental_groups: Vec<i64>,
    pub fs_group: Option<i64>,
    #[serde(default)]
    pub sysctls: Vec<Sysctl>,
    pub seccomp_profile: Option<SeccompProfile>,
    pub se_linux_options: Ignored,
    pub windows_options: Ignored,
    pub supplemental_groups_policy: Ignored,
    pub fs_group_change_policy: Ignored,
    pub app_armor_profile: Ignored,
    pub se_linux_change_policy: Ignored,
}

unsupported!(PodSecurityContext,
    se_linux_options => "seLinuxOptions",
    windows_options => "windowsOptions",
    supplemental_groups_policy => "supplementalGroupsPolicy",
    fs_group_change_policy => "fsGroupChangePolicy",
    app_armor_profile => "appArmorProfile",
    se_linux_change_policy => "seLinuxChangePolicy",
);

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sysctl {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeccompProfile {
    #[serde(rename = "type")]
    pub kind: String,
    pub localhost_profile: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Container {
    #[serde(default)]
    pub name: String,
    pub image: Option<String>,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub working_dir: Option<String>,
    #[serde(default)]
    pub ports: Vec<ContainerPort>,
    #[serde(default)]
    pub env_from: Vec<EnvFromSource>,
    #[serde(default)]
    pub env: Vec<EnvVar>,
    #[serde(default)]
    pub resources: ResourceRequirements,
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
    pub liveness_probe: Option<Probe>,
    pub readiness_probe: Option<Probe>,
    pub startup_probe: Option<Probe>,
    pub image_pull_policy: Option<String>,
    pub security_context: Option<SecurityContext>,
    pub stdin: Option<bool>,
    pub stdin_once: Option<bool>,
    pub tty: Option<bool>,
    pub restart_policy: Option<String>,
    pub resize_policy: Ignored,
    pub volume_devices: Ignored,
    pub lifecycle: Ignored,
    pub termination_message_path: Ignored,
    pub termination_message_policy: Ignored,
}

unsupported!(Container,
    resize_policy => "resizePolicy",
    volume_devices => "volumeDevices",
    lifecycle => "lifecycle",
    startup_probe => "startupProbe",
    stdin_once => "stdinOnce",
);

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerPort {
    pub name: Option<String>,
    pub host_port: Option<i32>,
    pub container_port: i32,
    pub protocol: Option<String>,
    #[serde(rename = "hostIP")]
    pub host_ip: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    pub value: Option<String>,
    pub value_from: Option<EnvVarSource>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVarSource {
    pub field_ref: Option<FieldRef>,
    pub resource_field_ref: Option<ResourceFieldRef>,
    pub config_map_key_ref: Option<KeyRef>,
    pub secret_key_ref: Option<KeyRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldRef {
    pub api_version: Option<String>,
    pub field_path: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceFieldRef {
    pub container_name: Option<String>,
    pub resource: String,
    pub divisor: Option<Quantity>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyRef {
    #[serde(default)]
    pub name: String,
    pub key: String,
    pub optional: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvFromSource {
    pub prefix: Option<String>,
    pub config_map_ref: Option<NameRef>,
    pub secret_ref: Option<NameRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameRef {
    #[serde(default)]
    pub name: String,
    pub optional: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceRequirements {
    #[serde(default)]
    pub limits: BTreeMap<String, Quantity>,
    #[serde(default)]
    pub requests: BTreeMap<String, Quantity>,
    pub claims: Ignored,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
    pub read_only: Option<bool>,
    pub sub_path: Option<String>,
    pub recursive_read_only: Ignored,
    pub mount_propagation: Ignored,
    pub sub_path_expr: Ignored,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Probe {
    pub exec: Option<ExecAction>,
    pub http_get: Option<HttpGetAction>,
    pub tcp_socket: Option<TcpSocketAction>,
    pub grpc: Option<yaml_serde::Value>,
    pub initial_delay_seconds: Option<i64>,
    pub timeout_seconds: Option<i64>,
    pub period_seconds: Option<i64>,
    pub success_threshold: Option<i64>,
    pub failure_threshold: Option<i64>,
    pub termination_grace_period_seconds: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecAction {
    #[serde(default)]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpGetAction {
    pub path: Option<String>,
    pub port: IntOrString,
    pub host: Option<String>,
    pub scheme: Option<String>,
    pub http_headers: Option<Vec<HttpHeader>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHeader {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpSocketAction {
    pub port: IntOrString,
    pub host: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityContext {
    pub capabilities: Option<Capabilities>,
    pub privileged: Option<bool>,
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub run_as_non_root: Option<bool>,
    pub read_only_root_filesystem: Option<bool>,
    pub allow_privilege_escalation: Option<bool>,
    pub seccomp_profile: Option<SeccompProfile>,
    pub se_linux_options: Ignored,
    pub windows_options: Ignored,
    pub proc_mount: Ignored,
    pub app_armor_profile: Ignored,
}

unsupported!(SecurityContext,
    se_linux_options => "seLinuxOptions",
    windows_options => "windowsOptions",
    proc_mount => "procMount",
    app_armor_profile => "appArmorProfile",
);

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Capabilities {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub drop: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Volume {
    pub name: String,
    pub host_path: Option<HostPathSource>,
    pub empty_dir: Option<EmptyDirSource>,
    pub config_map: Option<ConfigMapVolume>,
    pub secret: Option<SecretVolume>,
    pub persistent_volume_claim: Option<PvcSource>,
    // Sources that need a cluster (storage drivers, the API server): refused by the plan.
    pub gce_persistent_disk: Ignored,
    pub aws_elastic_block_store: Ignored,
    pub git_repo: Ignored,
    pub nfs: Ignored,
    pub iscsi: Ignored,
    pub glusterfs: Ignored,
    pub rbd: Ignored,
    pub flex_volume: Ignored,
    pub cinder: Ignored,
    pub cephfs: Ignored,
    pub flocker: Ignored,
    #[serde(rename = "downwardAPI")]
    pub downward_api: Ignored,
    pub fc: Ignored,
    pub azure_file: Ignored,
    pub azure_disk: Ignored,
    pub vsphere_volume: Ignored,
    pub quobyte: Ignored,
    pub photon_persistent_disk: Ignored,
    pub projected: Ignored,
    pub portworx_volume: Ignored,
    #[serde(rename = "scaleIO")]
    pub scale_io: Ignored,
    pub storageos: Ignored,
    pub csi: Ignored,
    pub ephemeral: Ignored,
    pub image: Ignored,
}

unsupported!(Volume,
    gce_persistent_disk => "gcePersistentDisk",
    aws_elastic_block_store => "awsElasticBlockStore",
    git_repo => "gitRepo",
    nfs => "nfs",
    iscsi => "iscsi",
    glusterfs => "glusterfs",
    rbd => "rbd",
    flex_volume => "flexVolume",
    cinder => "cinder",
    cephfs => "cephfs",
    flocker => "flocker",
    downward_api => "downwardAPI",
    fc => "fc",
    azure_file => "azureFile",
    azure_disk => "azureDisk",
    vsphere_volume => "vsphereVolume",
    quobyte => "quobyte",
    photon_persistent_disk => "photonPersistentDisk",
    projected => "projected",
    portworx_volume => "portworxVolume",
    scale_io => "scaleIO",
    storageos => "storageos",
    csi => "csi",
    ephemeral => "ephemeral",
    image => "image",
);

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostPathSource {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmptyDirSource {
    pub medium: Option<String>,
    pub size_limit: Option<Quantity>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyToPath {
    pub key: String,
    pub path: String,
    #[serde(default, deserialize_with = "mode")]
    pub mode: Option<i32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMapVolume {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub items: Vec<KeyToPath>,
    #[serde(default, deserialize_with = "mode")]
    pub default_mode: Option<i32>,
    pub optional: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretVolume {
    #[serde(default)]
    pub secret_name: String,
    #[serde(default)]
    pub items: Vec<KeyToPath>,
    #[serde(default, deserialize_with = "mode")]
    pub default_mode: Option<i32>,
    pub optional: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PvcSource {
    pub claim_name: String,
    pub read_only: Option<bool>,
}

/// `spec.selector` of a Deployment, Job or DaemonSet.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Ignored,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentSpec {
    pub replicas: Option<i32>,
    pub selector: Option<LabelSelector>,
    #[serde(default)]
    pub template: PodTemplateSpec,
    pub strategy: Ignored,
    pub min_ready_seconds: Ignored,
    pub revision_history_limit: Ignored,
    pub paused: Ignored,
    pub progress_deadline_seconds: Ignored,
}

unsupported!(DeploymentSpec,
    strategy => "strategy",
    min_ready_seconds => "minReadySeconds",
    paused => "paused",
    progress_deadline_seconds => "progressDeadlineSeconds",
);

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobSpec {
    pub backoff_limit: Option<i32>,
    pub completions: Option<i32>,
    pub parallelism: Option<i32>,
    pub selector: Option<LabelSelector>,
    pub manual_selector: Option<bool>,
    #[serde(default)]
    pub template: PodTemplateSpec,
    pub active_deadline_seconds: Ignored,
    pub pod_failure_policy: Ignored,
    pub success_policy: Ignored,
    pub backoff_limit_per_index: Ignored,
    pub max_failed_indexes: Ignored,
    pub ttl_seconds_after_finished: Ignored,
    pub completion_mode: Ignored,
    pub suspend: Ignored,
    pub pod_replacement_policy: Ignored,
    pub managed_by: Ignored,
}

unsupported!(JobSpec,
    active_deadline_seconds => "activeDeadlineSeconds",
    pod_failure_policy => "podFailurePolicy",
    success_policy => "successPolicy",
    backoff_limit_per_index => "backoffLimitPerIndex",
    max_failed_indexes => "maxFailedIndexes",
    ttl_seconds_after_finished => "ttlSecondsAfterFinished",
    completion_mode => "completionMode",
    suspend => "suspend",
    pod_replacement_policy => "podReplacementPolicy",
    managed_by => "managedBy",
);

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DaemonSetSpec {
    pub selector: Option<LabelSelector>,
    #[serde(default)]
    pub template: PodTemplateSpec,
    pub update_strategy: Ignored,
    pub min_ready_seconds: Ignored,
    pub revision_history_limit: Ignored,
}

unsupported!(DaemonSetSpec,
    update_strategy => "updateStrategy",
    min_ready_seconds => "minReadySeconds",
);

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSpec {
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(rename = "clusterIP")]
    pub cluster_ip: Ignored,
    #[serde(rename = "clusterIPs")]
    pub cluster_ips: Ignored,
    #[serde(rename = "externalIPs")]
    pub external_ips: Ignored,
    pub session_affinity: Ignored,
    #[serde(rename = "loadBalancerIP")]
    pub load_balancer_ip: Ignored,
    pub load_balancer_source_ranges: Ignored,
    pub external_name: Ignored,
    pub external_traffic_policy: Ignored,
    pub health_check_node_port: Ignored,
    pub publish_not_ready_addresses: Ignored,
    pub session_affinity_config: Ignored,
    pub ip_families: Ignored,
    pub ip_family_policy: Ignored,
    pub allocate_load_balancer_node_ports: Ignored,
    pub load_balancer_class: Ignored,
    pub internal_traffic_policy: Ignored,
    pub traffic_distribution: Ignored,
}

unsupported!(ServiceSpec,
    external_ips => "externalIPs",
    session_affinity => "sessionAffinity",
    load_balancer_ip => "loadBalancerIP",
    load_balancer_source_ranges => "loadBalancerSourceRanges",
    external_name => "externalName",
    external_traffic_policy => "externalTrafficPolicy",
    session_affinity_config => "sessionAffinityConfig",
    load_balancer_class => "loadBalancerClass",
    internal_traffic_policy => "internalTrafficPolicy",
    traffic_distribution => "trafficDistribution",
);

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePort {
    pub name: Option<String>,
    pub protocol: Option<String>,
    pub app_protocol: Option<String>,
    pub port: i32,
    pub target_port: Option<IntOrString>,
    pub node_port: Option<i32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PvcSpec {
    pub access_modes: Option<Vec<String>>,
    pub selector: Ignored,
    pub resources: Option<ResourceRequirements>,
    pub volume_name: Ignored,
    pub storage_class_name: Ignored,
    pub volume_mode: Ignored,
    pub data_source: Ignored,
    pub data_source_ref: Ignored,
    pub volume_attributes_class_name: Ignored,
}

unsupported!(PvcSpec,
    selector => "selector",
    volume_name => "volumeName",
    data_source => "dataSource",
    data_source_ref => "dataSourceRef",
);

/// The top-level fields of a Pod, Deployment, Job or DaemonSet (`status` is what the cluster
/// reports and means nothing here).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workload<S> {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: S,
    pub status: Ignored,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ServiceSpec,
    pub status: Ignored,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pvc {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PvcSpec,
    pub status: Ignored,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMap {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    /// Base64.
    #[serde(default)]
    pub binary_data: BTreeMap<String, String>,
    pub immutable: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Secret {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Base64.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    #[serde(default)]
    pub string_data: BTreeMap<String, String>,
    #[serde(rename = "type")]
    pub kind_of_secret: Option<String>,
    pub immutable: Option<bool>,
}

/// One document of the manifests.
#[derive(Debug, Clone)]
pub enum Object {
    Pod(Box<Workload<PodSpec>>),
    Deployment(Box<Workload<DeploymentSpec>>),
    Job(Box<Workload<JobSpec>>),
    DaemonSet(Box<Workload<DaemonSetSpec>>),
    Service(Box<Service>),
    Pvc(Box<Pvc>),
    ConfigMap(Box<ConfigMap>),
    Secret(Box<Secret>),
    /// A kind of the Kubernetes API that has no local meaning (Ingress, HPA, …): skipped, and
    /// named in the warning.
    Skipped {
        kind: String,
        name: String,
    },
}
