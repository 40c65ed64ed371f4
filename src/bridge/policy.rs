//! Route policy: which credentials a request's route accepts.
//!
//! The principle: when a path could be read as two rules — by the bridge
//! and by an application that folds case, decodes differently or trims what
//! Windows trims — the bridge applies the stricter rule, or refuses the
//! request (400 `ambiguous_path`) when neither is stricter.

use std::sync::Arc;

use axum::http::Method;
use unicode_normalization::UnicodeNormalization;

use super::AuthRejection;
use super::config::{Mode, NonAsciiPaths, PolicyConfig};

/// The decision for one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    /// Name in metrics.
    pub name: Arc<str>,
    /// The mode that decides.
    pub mode: Mode,
    /// For shadow rules: the mode evaluated alongside.
    pub evaluate: Option<Mode>,
}

#[derive(Debug, Clone)]
struct CompiledRule {
    pattern: Pattern,
    /// The pattern as a case-insensitive rule compares it: ASCII-lowercased
    /// (and NFKC-folded under `non_ascii = "nfkc"`).
    folded: Pattern,
    case_sensitive: bool,
    methods: Option<Vec<Method>>,
    rule: RouteRule,
}

impl CompiledRule {
    fn applies_to(&self, method: &Method) -> bool {
        // HEAD runs the GET handler in every common router.
        self.methods.as_ref().is_none_or(|ms| {
            ms.contains(method) || (method == Method::HEAD && ms.contains(&Method::GET))
        })
    }
}

#[derive(Debug, Clone)]
enum Pattern {
    Any,
    Exact(String),
    /// `/api/*`: stored as `/api`; matches `/api` and `/api/…`.
    Prefix(String),
}

impl Pattern {
    fn parse(p: &str) -> Self {
        if p == "*" {
            Self::Any
        } else if let Some(prefix) = p.strip_suffix("/*") {
            Self::Prefix(prefix.to_owned())
        } else {
            Self::Exact(p.to_owned())
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(p) => p == path,
            Self::Prefix(p) => path
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
        }
    }
}

/// Route rules compiled from `[policy]`, first match wins.
#[derive(Debug, Clone)]
pub struct RoutePolicy {
    rules: Vec<CompiledRule>,
    default: RouteRule,
    non_ascii: NonAsciiPaths,
}

impl RoutePolicy {
    /// Compile a validated `[policy]` section.
    pub fn new(cfg: &PolicyConfig) -> Self {
        let rules = cfg
            .routes
            .iter()
            .map(|r| {
                let (mode, evaluate) = match r.mode.enforced() {
                    Some(mode) => (mode, None),
                    None => (r.enforce.unwrap_or(Mode::Either), r.evaluate),
                };
                CompiledRule {
                    pattern: Pattern::parse(&r.path),
                    folded: Pattern::parse(&fold(&r.path, cfg.non_ascii)),
                    case_sensitive: r.case_sensitive,
                    methods: r.methods.as_ref().map(|ms| {
                        ms.iter()
                            .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
                            .collect()
                    }),
                    rule: RouteRule {
                        name: r.name.clone().unwrap_or_else(|| r.path.clone()).into(),
                        mode,
                        evaluate,
                    },
                }
            })
            .collect();
        Self {
            rules,
            default: RouteRule {
                name: "default".into(),
                mode: cfg.default,
                evaluate: None,
            },
            non_ascii: cfg.non_ascii,
        }
    }

    /// The rule for a request, or `AmbiguousPath` when its path could be
    /// read as another path by the application (see [`is_ambiguous`] and
    /// the module docs). `path` is the request path, free of its query
    /// string.
    pub fn judge(&self, method: &Method, path: &str) -> Result<&RouteRule, AuthRejection> {
        if is_ambiguous(path) {
            return Err(AuthRejection::AmbiguousPath);
        }
        let decoded = decode_checked(path).ok_or(AuthRejection::AmbiguousPath)?;
        if !decoded.is_ascii() && self.non_ascii == NonAsciiPaths::Refuse {
            return Err(AuthRejection::AmbiguousPath);
        }
        let exact = normalize_decoded(&decoded);
        let nfkc = match self.non_ascii {
            NonAsciiPaths::Nfkc => exact.nfkc().collect::<String>(),
            NonAsciiPaths::Refuse => exact.clone(),
        };
        // Folding must not make new separators, dot segments or controls
        // (`／` is `/`, `．` is `.` under NFKC).
        if nfkc != exact
            && (nfkc.matches('/').count() != exact.matches('/').count()
                || decode_checked(&nfkc).is_none_or(|again| again != nfkc))
        {
            return Err(AuthRejection::AmbiguousPath);
        }
        let lower = nfkc.to_ascii_lowercase();
        // The application's reading (folded) and the literal one.
        let loose = self.first(method, |r| {
            if r.case_sensitive {
                r.pattern.matches(&nfkc)
            } else {
                r.folded.matches(&lower)
            }
        });
        let literal = self.first(method, |r| r.pattern.matches(&exact));
        stricter(loose, literal).ok_or(AuthRejection::AmbiguousPath)
    }

    fn first(&self, method: &Method, matches: impl Fn(&CompiledRule) -> bool) -> &RouteRule {
        self.rules
            .iter()
            .find(|r| r.applies_to(method) && matches(r))
            .map_or(&self.default, |r| &r.rule)
    }
}

/// The rule of two that accepts fewer credentials; `None` when neither
/// does (a session route against a token route).
fn stricter<'a>(a: &'a RouteRule, b: &'a RouteRule) -> Option<&'a RouteRule> {
    // (anonymous, session, token) each mode lets through.
    let accepts = |m: Mode| match m {
        Mode::Public => [true, true, true],
        Mode::Either => [false, true, true],
        Mode::Session => [false, true, false],
        Mode::Token => [false, false, true],
    };
    let within = |x: [bool; 3], y: [bool; 3]| x.iter().zip(y).all(|(x, y)| !x || y);
    let (sa, sb) = (accepts(a.mode), accepts(b.mode));
    if within(sa, sb) {
        Some(a)
    } else if within(sb, sa) {
        Some(b)
    } else {
        None
    }
}

/// How a case-insensitive rule's pattern is compared.
fn fold(pattern: &str, non_ascii: NonAsciiPaths) -> String {
    match non_ascii {
        NonAsciiPaths::Nfkc => pattern.nfkc().collect::<String>().to_ascii_lowercase(),
        NonAsciiPaths::Refuse => pattern.to_ascii_lowercase(),
    }
}

/// The percent-decoded path when no reader could take it for another one:
/// valid UTF-8, no control characters (NUL ends a C string; CR/LF end a
/// header line), no backslash, `;` or `%` left after decoding, no dot or
/// empty segments (but a trailing `/`), and no segment ending in `.` or a
/// space (Windows and IIS trim those: `/admin./x` is `/admin/x` there).
fn decode_checked(path: &str) -> Option<String> {
    let decoded = String::from_utf8(percent_decode_bytes(path)).ok()?;
    if decoded
        .chars()
        .any(|c| c.is_control() || matches!(c, '\\' | ';' | '%'))
    {
        return None;
    }
    let segments: Vec<&str> = decoded.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let bad_segment = |(i, s): (usize, &&str)| {
        (s.is_empty() && i != last) || s.ends_with('.') || s.ends_with(' ')
    };
    if !decoded.starts_with('/') || segments.iter().enumerate().any(bad_segment) {
        return None;
    }
    Some(decoded)
}

/// A checked, decoded path without its trailing `/` (`/api/` is `/api`).
fn normalize_decoded(decoded: &str) -> String {
    match decoded.strip_suffix('/') {
        Some("") | None => decoded.to_owned(),
        Some(trimmed) => trimmed.to_owned(),
    }
}

/// Whether `path` could be read as another path by the application than by
/// the policy: dot segments, empty segments, backslashes, `;` (path
/// parameters some servers strip), or percent-encoded `/`, `\`, `.` or `%`.
/// Such requests are refused (400) before any rule is chosen, so the rule
/// and the route served can never disagree; [`RoutePolicy::judge`] refuses
/// more once the path is decoded.
pub fn is_ambiguous(path: &str) -> bool {
    if path.contains('\\') || path.contains(';') || path.contains("//") {
        return true;
    }
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return true;
    }
    let lower = path.to_ascii_lowercase();
    ["%2f", "%5c", "%2e", "%25", "%3b"]
        .iter()
        .any(|encoded| lower.contains(encoded))
}

/// Collapse `//` and resolve `.`/`..` segments so `/api/../legacy` cannot
/// pick another route's rule than the one the application will serve.
/// Percent-encoded dots and slashes are decoded first for the same reason.
#[cfg_attr(not(feature = "service"), allow(dead_code))] // the gateway's
pub(crate) fn normalize(path: &str) -> String {
    let decoded = percent_decode_path(path);
    let mut out: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut normalized = String::with_capacity(decoded.len());
    for s in &out {
        normalized.push('/');
        normalized.push_str(s);
    }
    if normalized.is_empty() {
        normalized.push('/');
    }
    normalized
}

#[cfg_attr(not(feature = "service"), allow(dead_code))] // the gateway's
pub(crate) fn percent_decode_path(path: &str) -> String {
    String::from_utf8_lossy(&percent_decode_bytes(path)).into_owned()
}

fn percent_decode_bytes(path: &str) -> Vec<u8> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::bridge::config::RouteRuleConfig;

    fn rule(path: &str, mode: Mode) -> RouteRuleConfig {
        RouteRuleConfig::new(path, mode)
    }

    fn policy_with(
        routes: Vec<RouteRuleConfig>,
        default: Mode,
        non_ascii: NonAsciiPaths,
    ) -> RoutePolicy {
        RoutePolicy::new(&PolicyConfig {
            routes,
            default,
            non_ascii,
            ..PolicyConfig::default()
        })
    }

    fn policy() -> RoutePolicy {
        policy_with(
            vec![
                RouteRuleConfig {
                    methods: Some(vec!["POST".into()]),
                    ..rule("/api/upload", Mode::Session)
                },
                rule("/api/*", Mode::Token),
                rule("/legacy/*", Mode::Session),
                rule("/", Mode::Public),
            ],
            Mode::Either,
            NonAsciiPaths::Refuse,
        )
    }

    fn mode(p: &RoutePolicy, method: Method, path: &str) -> Result<Mode, AuthRejection> {
        p.judge(&method, path).map(|r| r.mode)
    }

    #[test]
    fn first_match_wins_with_methods_and_prefixes() {
        let p = policy();
        assert_eq!(mode(&p, Method::POST, "/api/upload"), Ok(Mode::Session));
        assert_eq!(mode(&p, Method::GET, "/api/upload"), Ok(Mode::Token));
        assert_eq!(mode(&p, Method::GET, "/api"), Ok(Mode::Token));
        assert_eq!(mode(&p, Method::GET, "/api/"), Ok(Mode::Token));
        assert_eq!(mode(&p, Method::GET, "/apiary"), Ok(Mode::Either));
        assert_eq!(mode(&p, Method::GET, "/"), Ok(Mode::Public));
        assert_eq!(mode(&p, Method::GET, "/other"), Ok(Mode::Either));
    }

    #[test]
    fn a_rule_listing_get_also_applies_to_head() {
        let p = policy_with(
            vec![
                RouteRuleConfig {
                    methods: Some(vec!["GET".into()]),
                    ..rule("/reports/*", Mode::Session)
                },
                RouteRuleConfig {
                    methods: Some(vec!["POST".into()]),
                    ..rule("/forms/*", Mode::Session)
                },
            ],
            Mode::Public,
            NonAsciiPaths::Refuse,
        );
        assert_eq!(mode(&p, Method::HEAD, "/reports/x"), Ok(Mode::Session));
        assert_eq!(mode(&p, Method::GET, "/reports/x"), Ok(Mode::Session));
        assert_eq!(mode(&p, Method::POST, "/reports/x"), Ok(Mode::Public));
        assert_eq!(mode(&p, Method::HEAD, "/forms/x"), Ok(Mode::Public));
    }

    #[test]
    fn ambiguous_paths_are_recognised() {
        for bad in [
            "/admin/..%2Fpublic",
            "/a/../b",
            "/./a",
            "//a",
            "/a\\b",
            "/public/..;/admin",
            "/a%2fb",
            "/a%2E%2E/b",
            "/a%252f",
        ] {
            assert!(is_ambiguous(bad), "{bad}");
        }
        for ok in ["/", "/api/x", "/a%20b", "/legacy/page.php", "/a..b/c"] {
            assert!(!is_ambiguous(ok), "{ok}");
        }
    }

    #[test]
    fn paths_an_application_reads_differently_are_refused() {
        let p = policy();
        for bad in [
            "//api//x",
            "/legacy/../api/x",
            "/x/..%2fapi/y",
            "/./legacy/a",
            "/admin%00",
            "/admin%00/x",
            "/admin%0a",
            "/admin%09/x",
            "/admin%7f",
            "/admin%20/x",
            "/admin%20",
            "/admin./x",
            "/admin.",
            "/admin.../x",
            "/%EF%BD%81dmin/x",
            "/\u{ff41}dmin/x",
            "/admin%c0%ae/x",
            "/admin%ff",
            "/a%zz",
        ] {
            assert_eq!(
                mode(&p, Method::GET, bad),
                Err(AuthRejection::AmbiguousPath),
                "{bad}"
            );
        }
        assert_eq!(mode(&p, Method::GET, "/%61pi/x"), Ok(Mode::Token));
        assert_eq!(mode(&p, Method::GET, "/a%20b"), Ok(Mode::Either));
        assert_eq!(mode(&p, Method::GET, "/legacy/page.php"), Ok(Mode::Session));
    }

    #[test]
    fn rules_match_ascii_case_insensitively_unless_told_otherwise() {
        let p = policy_with(
            vec![
                rule("/admin/*", Mode::Session),
                rule("/api/*", Mode::Token),
                RouteRuleConfig {
                    case_sensitive: true,
                    ..rule("/Exact/*", Mode::Session)
                },
            ],
            Mode::Public,
            NonAsciiPaths::Refuse,
        );
        for path in [
            "/ADMIN/secret",
            "/Admin/x",
            "/aDmIn",
            "/%41dmin/x",
            "/adm%49n/",
        ] {
            assert_eq!(mode(&p, Method::GET, path), Ok(Mode::Session), "{path}");
        }
        assert_eq!(mode(&p, Method::GET, "/API/data"), Ok(Mode::Token));
        assert_eq!(mode(&p, Method::GET, "/Exact/x"), Ok(Mode::Session));
        assert_eq!(mode(&p, Method::GET, "/exact/x"), Ok(Mode::Public));
    }

    #[test]
    fn two_readings_give_the_stricter_rule_or_a_refusal() {
        // The literal reading (a case-sensitive upstream) and the folded one
        // (Express) disagree: the stricter applies, or neither is.
        let p = policy_with(
            vec![
                RouteRuleConfig {
                    case_sensitive: true,
                    ..rule("/Docs/*", Mode::Public)
                },
                rule("/docs/*", Mode::Session),
                rule("/open", Mode::Public),
                RouteRuleConfig {
                    case_sensitive: true,
                    ..rule("/OPEN", Mode::Token)
                },
            ],
            Mode::Either,
            NonAsciiPaths::Refuse,
        );
        assert_eq!(mode(&p, Method::GET, "/Docs/x"), Ok(Mode::Public));
        assert_eq!(mode(&p, Method::GET, "/DOCS/x"), Ok(Mode::Session));
        assert_eq!(mode(&p, Method::GET, "/OPEN"), Ok(Mode::Token));
        assert_eq!(mode(&p, Method::GET, "/open"), Ok(Mode::Public));
        let q = policy_with(
            vec![
                rule("/admin/*", Mode::Session),
                RouteRuleConfig {
                    case_sensitive: true,
                    ..rule("/ADMIN/*", Mode::Token)
                },
            ],
            Mode::Public,
            NonAsciiPaths::Refuse,
        );
        assert_eq!(
            mode(&q, Method::GET, "/ADMIN/x"),
            Err(AuthRejection::AmbiguousPath)
        );
    }

    #[test]
    fn nfkc_folds_non_ascii_when_configured() {
        let p = policy_with(
            vec![rule("/admin/*", Mode::Session)],
            Mode::Public,
            NonAsciiPaths::Nfkc,
        );
        for path in [
            "/\u{ff41}dmin/x",
            "/%EF%BD%81dmin/x",
            "/\u{ff21}\u{ff24}\u{ff2d}\u{ff29}\u{ff2e}/x",
        ] {
            assert_eq!(mode(&p, Method::GET, path), Ok(Mode::Session), "{path}");
        }
        assert_eq!(mode(&p, Method::GET, "/caf\u{e9}"), Ok(Mode::Public));
        // Folding that makes separators or dot segments is refused.
        for bad in [
            "/admin\u{ff0f}x",
            "/x/\u{ff0e}\u{ff0e}/admin",
            "/a\u{2101}x",
        ] {
            assert_eq!(
                mode(&p, Method::GET, bad),
                Err(AuthRejection::AmbiguousPath),
                "{bad}"
            );
        }
    }
}
