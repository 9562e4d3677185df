//! Kubernetes object names (RFC 1123) from Docker names, which also allow `_`, `.` and capitals.

/// A DNS-1123 label: at most 63 characters of `[a-z0-9-]`, starting and ending with a letter
/// or digit. Other characters become `-`; an empty result becomes `container`.
pub fn dns1123_label(name: &str) -> String {
    sanitize(name, 63, false)
}

/// A DNS-1123 subdomain: labels joined by `.`, at most 253 characters.
pub fn dns1123_subdomain(name: &str) -> String {
    sanitize(name, 253, true)
}

fn sanitize(name: &str, max: usize, dots: bool) -> String {
    let mapped: String = name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || (dots && c == '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    // Each label of a subdomain must start and end with an alphanumeric character.
    let labels: Vec<String> = mapped
        .split('.')
        .map(|l| l.trim_matches('-').to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let mut s = labels.join(".");
    if s.len() > max {
        s.truncate(max);
        s = s.trim_end_matches(['-', '.']).to_string();
    }
    if s.is_empty() {
        "container".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_names_become_valid_kubernetes_names() {
        assert_eq!(dns1123_label("web_1"), "web-1");
        assert_eq!(dns1123_label("My.App"), "my-app");
        assert_eq!(dns1123_subdomain("My.App"), "my.app");
        assert_eq!(dns1123_label("_x_"), "x");
        assert_eq!(dns1123_label("___"), "container");
        assert_eq!(dns1123_subdomain("a..b"), "a.b");
        let long = "a".repeat(70) + "-b";
        let l = dns1123_label(&long);
        assert_eq!(l.len(), 63);
        assert!(l.chars().all(|c| c == 'a'));
        let l = dns1123_label(&("x".repeat(62) + "_y"));
        assert!(!l.ends_with('-') && l.len() <= 63, "{l}");
    }
}
