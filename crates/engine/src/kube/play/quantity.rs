//! Kubernetes resource quantities (`128Mi`, `1G`, `500m`, `0.5`, `1e3`).

/// The quantity in base units (bytes, cores), or an error in the API's words.
pub fn parse(q: &str) -> Result<f64, String> {
    let bad = || {
        format!(
            "quantity \"{q}\" is not valid: a number with an optional suffix (Ki, Mi, Gi, Ti, Pi, Ei, k, M, G, T, P, E, m)"
        )
    };
    let q = q.trim();
    let suffixes: [(&str, f64); 13] = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
        ("m", 1e-3),
    ];
    let (num, mult) = suffixes
        .iter()
        .find_map(|(s, m)| q.strip_suffix(s).map(|n| (n, *m)))
        .unwrap_or((q, 1.0));
    // Only digits, one dot, a sign and a decimal exponent: Rust's float parser would also
    // take "inf" and "NaN".
    if num.is_empty()
        || !num
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '+' | '-' | 'e' | 'E'))
    {
        return Err(bad());
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    if v < 0.0 || !v.is_finite() {
        return Err(bad());
    }
    Ok(v * mult)
}

/// A quantity of bytes.
pub fn bytes(q: &str) -> Result<i64, String> {
    Ok(parse(q)?.ceil() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_decimal_and_milli_suffixes() {
        assert_eq!(bytes("128Mi").unwrap(), 128 << 20);
        assert_eq!(bytes("1G").unwrap(), 1_000_000_000);
        assert_eq!(bytes("129e6").unwrap(), 129_000_000);
        assert_eq!(bytes("1024").unwrap(), 1024);
        assert_eq!(parse("500m").unwrap(), 0.5);
        assert_eq!(parse("2").unwrap(), 2.0);
        assert_eq!(parse("0.25").unwrap(), 0.25);
        assert!(parse("lots").is_err());
        assert!(parse("-1Gi").is_err());
        assert!(parse("inf").is_err());
        assert!(parse("Mi").is_err());
    }
}
