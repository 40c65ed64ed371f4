//! Where a browser may be sent after login: same-origin relative paths only.

/// `next` if it is a safe local path, else `/`.
///
/// Refused: absolute URLs, scheme-relative `//host`, backslashes (browsers
/// read `/\host` as `//host`), raw whitespace, and slashes, backslashes or control
/// characters hidden behind percent-encoding.
pub fn safe_next(next: Option<&str>) -> String {
    let Some(next) = next else {
        return "/".to_owned();
    };
    if next.len() > 2048 || !next.starts_with('/') {
        return "/".to_owned();
    }
    // Raw whitespace and control characters are refused outright (browsers
    // drop tabs and newlines, turning `/\t/host` into `//host`); encoded
    // ones stay encoded in the Location header and are harmless there.
    if next.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return "/".to_owned();
    }
    let decoded = crate::bridge::policy::percent_decode_path(next);
    for candidate in [next, decoded.as_str()] {
        let bad = candidate.starts_with("//")
            || candidate.contains('\\')
            || candidate.chars().any(char::is_control)
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
            "/%09/evil.example".trim_start_matches('/'),
            "/%0a/%2Fevil.example",
            "javascript:alert(1)",
            "evil.example",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad} was accepted");
        }
        assert_eq!(safe_next(None), "/");
    }
}
