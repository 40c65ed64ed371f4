//! Route policy: which credentials a request's route accepts.

use std::sync::Arc;

use axum::http::Method;

use super::config::{Mode, PolicyConfig};

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
    methods: Option<Vec<Method>>,
    rule: RouteRule,
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
}

impl RoutePolicy {
    /// Compile a validated `[policy]` section.
    pub fn new(cfg: &PolicyConfig) -> Self {
        let rules = cfg
            .routes
            .iter()
            .map(|r| {
                let (mode, evaluate) = match r.mode {
                    Mode::Shadow => (r.enforce.unwrap_or(Mode::Either), r.evaluate),
                    mode => (mode, None),
                };
                CompiledRule {
                    pattern: Pattern::parse(&r.path),
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
        }
    }

    /// The rule for a request. `path` is the request path, already free of
    /// its query string.
    pub fn rule_for(&self, method: &Method, path: &str) -> &RouteRule {
        let path = normalize(path);
        self.rules
            .iter()
            .find(|r| {
                r.pattern.matches(&path) && r.methods.as_ref().is_none_or(|ms| ms.contains(method))
            })
            .map_or(&self.default, |r| &r.rule)
    }
}

/// Whether `path` could be read as another path by the application than by
/// the policy: dot segments, empty segments, backslashes, `;` (path
/// parameters some servers strip), or percent-encoded `/`, `\`, `.` or `%`.
/// Such requests are refused (400) before any rule is chosen, so the rule
/// and the route served can never disagree.
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

pub(crate) fn percent_decode_path(path: &str) -> String {
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
    String::from_utf8_lossy(&out).into_owned()
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
        RouteRuleConfig {
            path: path.into(),
            methods: None,
            mode,
            enforce: None,
            evaluate: None,
            name: None,
        }
    }

    fn policy() -> RoutePolicy {
        let cfg = PolicyConfig {
            routes: vec![
                RouteRuleConfig {
                    methods: Some(vec!["POST".into()]),
                    ..rule("/api/upload", Mode::Session)
                },
                rule("/api/*", Mode::Token),
                rule("/legacy/*", Mode::Session),
                rule("/", Mode::Public),
            ],
            ..PolicyConfig::default()
        };
        RoutePolicy::new(&cfg)
    }

    #[test]
    fn first_match_wins_with_methods_and_prefixes() {
        let p = policy();
        assert_eq!(p.rule_for(&Method::POST, "/api/upload").mode, Mode::Session);
        assert_eq!(p.rule_for(&Method::GET, "/api/upload").mode, Mode::Token);
        assert_eq!(p.rule_for(&Method::GET, "/api").mode, Mode::Token);
        assert_eq!(p.rule_for(&Method::GET, "/apiary").mode, Mode::Either);
        assert_eq!(p.rule_for(&Method::GET, "/").mode, Mode::Public);
        assert_eq!(p.rule_for(&Method::GET, "/other").mode, Mode::Either);
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
    fn path_tricks_do_not_change_the_rule() {
        let p = policy();
        assert_eq!(p.rule_for(&Method::GET, "//api//x").mode, Mode::Token);
        assert_eq!(
            p.rule_for(&Method::GET, "/legacy/../api/x").mode,
            Mode::Token
        );
        assert_eq!(p.rule_for(&Method::GET, "/%61pi/x").mode, Mode::Token);
        assert_eq!(p.rule_for(&Method::GET, "/x/..%2fapi/y").mode, Mode::Token);
        assert_eq!(p.rule_for(&Method::GET, "/./legacy/a").mode, Mode::Session);
    }
}
