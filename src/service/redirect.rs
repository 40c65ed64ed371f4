//! Where a browser may be sent after login: same-origin relative paths only.

/// `next` if it is a safe local path, else `/`.
///
/// Refused: absolute URLs, scheme-relative `//host`, backslashes (browsers
/// read `/\host` as `//host`), control characters and whitespace, and any
/// of those hidden behind percent-encoding.
pub fn safe_next(next: Option<&str>) -> String {
    let Some(next) = next else {
        return "/".to_owned();
    };
    if next.len() > 2048 || !next.starts_with('/') {
        return "/".to_owned();
    }
    let decoded = url::form_urlencoded::parse(format!("x={}", next.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    for candidate in [next, decoded.as_str()] {
        let bad = candidate.starts_with("//")
            || candidate.contains('\\')
            || candidate
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
            || !candidate.starts_with('/');
        if bad {
            return "/".to_owned();
        }
    }
    next.to_owned()
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_survive() {
        for ok in ["/", "/legacy/page?x=1", "/a%20b"] {
            assert_eq!(safe_next(Some(ok)), ok);
        }
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "/%2F%2Fevil.example".trim_start_matches('/'),
            "/%2Fevil.example",
            "/%5Cevil.example",
            "%2F%2Fevil.example",
            "/\t/evil.example",
            "javascript:alert(1)",
            "evil.example",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad} was accepted");
        }
        assert_eq!(safe_next(None), "/");
    }
}
