//! Multi-document YAML into typed Kubernetes objects, with errors that name the document,
//! its kind and name, and the field path (`document 2 (Deployment web):
//! spec.template.spec.containers[0].ports[0].containerPort: expected an integer`).

use serde::de::DeserializeOwned;
use serde::Deserialize;
use yaml_serde::Value;

use super::model::Object;

/// One parsed document and where it came from.
#[derive(Debug, Clone)]
pub struct Document {
    /// 1-based index in its file.
    pub index: usize,
    pub object: Object,
    /// The document as written (the plan hashes pod templates from it).
    pub raw: Value,
}

impl Document {
    /// `document 2 (Deployment web)`, the prefix of every message about it.
    pub fn describe(&self) -> String {
        let (kind, name) = self.kind_name();
        describe(self.index, &kind, &name)
    }

    pub fn kind_name(&self) -> (String, String) {
        let k = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_string();
        let name = self
            .raw
            .get("metadata")
            .map(|m| k(m, "name"))
            .unwrap_or_default();
        (k(&self.raw, "kind"), name)
    }
}

fn describe(index: usize, kind: &str, name: &str) -> String {
    if name.is_empty() {
        format!("document {index} ({kind})")
    } else {
        format!("document {index} ({kind} {name})")
    }
}

/// Kinds of the Kubernetes API that `kube play` reads but cannot run on one machine: they are
/// skipped and named in the warning. Any other unknown kind is an error.
const SKIPPED_KINDS: &[&str] = &[
    "Ingress",
    "IngressClass",
    "HorizontalPodAutoscaler",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "Namespace",
    "StorageClass",
    "PersistentVolume",
    "ResourceQuota",
    "LimitRange",
    "PriorityClass",
    "VerticalPodAutoscaler",
    "Endpoints",
    "EndpointSlice",
];

/// The kinds `kube play` runs, with the API group version each belongs to.
const KINDS: &[(&str, &str)] = &[
    ("Pod", "v1"),
    ("Deployment", "apps/v1"),
    ("Job", "batch/v1"),
    ("DaemonSet", "apps/v1"),
    ("Service", "v1"),
    ("PersistentVolumeClaim", "v1"),
    ("ConfigMap", "v1"),
    ("Secret", "v1"),
];

/// Parses every document of `text`. Empty documents (a trailing `---`) are skipped.
pub fn parse(text: &str) -> Result<Vec<Document>, String> {
    // The whole stream's syntax first, so a broken document is reported before the fields
    // of an earlier one.
    let mut raws = Vec::new();
    for (i, de) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        let raw =
            Value::deserialize(de).map_err(|e| format!("document {index}: invalid YAML: {e}"))?;
        if !raw.is_null() {
            raws.push((index, raw));
        }
    }
    let mut out = Vec::new();
    for (index, raw) in raws {
        if !raw.is_mapping() {
            return Err(format!(
                "document {index}: expected a Kubernetes object (a mapping with apiVersion and kind), found {}",
                value_kind(&raw)
            ));
        }
        let kind = match raw.get("kind") {
            Some(Value::String(k)) => k.clone(),
            Some(other) => {
                return Err(format!(
                    "document {index}: kind: expected a string, found {}",
                    value_kind(other)
                ))
            }
            None => return Err(format!("document {index}: kind: required field is missing")),
        };
        let name = raw
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let describe = describe(index, &kind, &name);
        let api_version = raw.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if api_version.is_empty() {
            return Err(format!("{describe}: apiVersion: required field is missing"));
        }
        if SKIPPED_KINDS.contains(&kind.as_str()) {
            out.push(Document {
                index,
                object: Object::Skipped { kind, name },
                raw,
            });
            continue;
        }
        let Some((_, want)) = KINDS.iter().find(|(k, _)| *k == kind) else {
            let known: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
            return Err(format!(
                "document {index}: unknown kind \"{kind}\" (apiVersion {api_version}): kube play runs {}",
                known.join(", ")
            ));
        };
        if api_version != *want {
            return Err(format!(
                "{describe}: apiVersion: {kind} is served as \"{want}\", not \"{api_version}\""
            ));
        }
        let object = match kind.as_str() {
            "Pod" => Object::Pod(typed(&raw, &describe)?),
            "Deployment" => Object::Deployment(typed(&raw, &describe)?),
            "Job" => Object::Job(typed(&raw, &describe)?),
            "DaemonSet" => Object::DaemonSet(typed(&raw, &describe)?),
            "Service" => Object::Service(typed(&raw, &describe)?),
            "PersistentVolumeClaim" => Object::Pvc(typed(&raw, &describe)?),
            "ConfigMap" => Object::ConfigMap(typed(&raw, &describe)?),
            "Secret" => Object::Secret(typed(&raw, &describe)?),
            _ => unreachable!("every kind of KINDS is matched"),
        };
        out.push(Document { index, object, raw });
    }
    Ok(out)
}

fn typed<T: DeserializeOwned>(raw: &Value, describe: &str) -> Result<T, String> {
    serde_path_to_error::deserialize(raw.clone()).map_err(|e| {
        let path = e.path().to_string();
        let msg = plain_words(&e.inner().to_string());
        if path == "." || path.is_empty() {
            format!("{describe}: {msg}")
        } else {
            format!("{describe}: {path}: {msg}")
        }
    })
}

/// serde's messages name Rust types (`expected i32`); these are the API's words.
fn plain_words(msg: &str) -> String {
    // yaml_serde appends a location that points into the re-serialised value, not the file.
    let msg = msg.split(" at line ").next().unwrap_or(msg);
    let mut m = msg.to_string();
    for (rust, plain) in [
        ("expected i32", "expected an integer"),
        ("expected i64", "expected an integer"),
        ("expected u16", "expected an integer"),
        ("expected u32", "expected an integer"),
        ("expected u64", "expected an integer"),
        ("expected a sequence", "expected a list"),
        ("expected a map", "expected an object"),
    ] {
        if let Some(i) = m.find(rust) {
            m = format!("{}{}", &m[..i], plain);
            break;
        }
    }
    if m.contains("expected struct ") {
        if let Some(i) = m.find("expected struct ") {
            m = format!("{}expected an object", &m[..i]);
        }
    }
    m.split(", expected one of")
        .next()
        .unwrap_or("")
        .to_string()
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "an object",
        Value::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_of_the_wrong_type_names_document_kind_name_and_path() {
        let y = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: b}\n---\n\
                 apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        image: busybox\n        ports:\n        - containerPort: http\n";
        let e = parse(y).unwrap_err();
        assert_eq!(
            e,
            "document 2 (Deployment web): spec.template.spec.containers[0].ports[0].containerPort: invalid type: string \"http\", expected an integer"
        );
    }

    #[test]
    fn unknown_fields_and_kinds_are_errors() {
        let e = parse("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: x\n    imagePullPolicyy: Never\n").unwrap_err();
        assert!(
            e.starts_with(
                "document 1 (Pod p): spec.containers[0].imagePullPolicyy: unknown field `imagePullPolicyy`"
            ),
            "{e}"
        );
        let e = parse("apiVersion: v1\nkind: Pod\nspec: {}\n---\napiVersion: x/v1\nkind: Widget\n")
            .unwrap_err();
        assert!(e.starts_with("document 2: unknown kind \"Widget\""), "{e}");
        let e = parse(
            "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: d}\nspec: {}\n",
        )
        .unwrap_err();
        assert!(e.contains("\"apps/v1\""), "{e}");
        let e = parse("kind: Pod\nmetadata: {name: p}\n").unwrap_err();
        assert_eq!(
            e,
            "document 1 (Pod p): apiVersion: required field is missing"
        );
    }

    #[test]
    fn invalid_yaml_names_the_document() {
        let e = parse("apiVersion: v1\nkind: Pod\n---\na: [1, 2\n").unwrap_err();
        assert!(e.starts_with("document 2: invalid YAML:"), "{e}");
        let e = parse("- a\n- b\n").unwrap_err();
        assert!(e.contains("found a list"), "{e}");
    }

    #[test]
    fn skipped_kinds_and_empty_documents() {
        let d = parse("---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\nspec: {rules: []}\n---\n").unwrap();
        assert_eq!(d.len(), 1);
        assert!(
            matches!(&d[0].object, Object::Skipped { kind, name } if kind == "Ingress" && name == "web")
        );
        assert_eq!(d[0].index, 1);
    }

    #[test]
    fn int_or_string_and_quantities() {
        let d = parse("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: x\n    resources: {limits: {memory: 64Mi, cpu: 0.5}}\n    livenessProbe: {httpGet: {port: http, path: /}}\n").unwrap();
        let Object::Pod(p) = &d[0].object else {
            panic!()
        };
        let c = &p.spec.containers[0];
        assert_eq!(c.resources.limits["cpu"].0, "0.5");
        assert_eq!(c.resources.limits["memory"].0, "64Mi");
        assert_eq!(
            c.liveness_probe
                .as_ref()
                .unwrap()
                .http_get
                .as_ref()
                .unwrap()
                .port,
            super::super::model::IntOrString::Str("http".into())
        );
    }
}
