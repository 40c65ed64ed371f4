//! `[session]`, `[cookies]`, `[csrf]` and `[policy]`: how the bridge
//! authenticates requests.

use std::time::Duration;

use serde::Deserialize;

use crate::problems::Problems;

/// `[session]`: server-side sessions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct SessionConfig {
    /// A session unused this long ends (default 30 min). Extended lazily:
    /// only once less than half of it is left, so an active session costs a
    /// store write every `idle_ttl / 2` at most, not one per request.
    #[serde(with = "humantime_serde")]
    pub idle_ttl: Duration,
    /// A session ends this long after login however active (default 12 h).
    #[serde(with = "humantime_serde")]
    pub absolute_ttl: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_ttl: Duration::from_secs(30 * 60),
            absolute_ttl: Duration::from_secs(12 * 3600),
        }
    }
}

/// `[cookies]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct CookieConfig {
    /// Mark cookies `Secure` and give them the `__Host-` prefix. Default:
    /// on when `public_url` is https. Off is for local http development only
    /// (logged as a warning).
    pub secure: Option<bool>,
    /// Session cookie name, before the `__Host-` prefix (default `sb_session`).
    pub session_name: String,
    /// Token cookie name, before the prefix (default `sb_token`).
    pub token_name: String,
    /// CSRF double-submit cookie name, before the prefix (default `sb_csrf`).
    pub csrf_name: String,
    /// `SameSite` of the token cookie: `lax` (default) or `strict`. The
    /// session cookie is always `Lax` so that links into legacy pages keep
    /// working.
    pub token_same_site: SameSite,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            secure: None,
            session_name: "sb_session".to_owned(),
            token_name: "sb_token".to_owned(),
            csrf_name: "sb_csrf".to_owned(),
            token_same_site: SameSite::Lax,
        }
    }
}

/// A cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SameSite {
    /// Sent on top-level navigations from other sites.
    Lax,
    /// Never sent on cross-site requests.
    Strict,
}

/// `[csrf]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct CsrfConfig {
    /// Origins other than `public_url`'s allowed to send cookie-authenticated
    /// state changes (e.g. `https://app.example.com`).
    pub trusted_origins: Vec<String>,
    /// Header carrying the double-submit token (default `x-csrf-token`).
    pub header: String,
}

impl Default for CsrfConfig {
    fn default() -> Self {
        Self {
            trusted_origins: Vec::new(),
            header: "x-csrf-token".to_owned(),
        }
    }
}

/// `[policy]`: which credentials each route accepts during the migration.
///
/// ```toml
/// [policy]
/// default = "either"
/// unauthenticated = "json"     # or "redirect": browser navigations go to login_path
///
/// [[policy.routes]]
/// path = "/api/*"              # `*` after a `/` matches the rest; otherwise exact
/// mode = "token"
///
/// [[policy.routes]]
/// path = "/legacy/*"
/// methods = ["GET", "POST"]    # optional
/// mode = "shadow"
/// enforce = "session"          # what decides now
/// evaluate = "token"           # what would decide next: disagreements are counted
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct PolicyConfig {
    /// Mode of paths no rule matches (default `either`).
    pub default: Mode,
    /// What an unauthenticated request gets: `json` (401 with a JSON body,
    /// the default) or `redirect` (browser navigations to a route that
    /// accepts sessions are sent to `login_path`; API calls still get 401).
    pub unauthenticated: Unauthenticated,
    /// Where `redirect` sends browsers (default `/login`).
    pub login_path: String,
    /// Rules, first match wins.
    pub routes: Vec<RouteRuleConfig>,
    /// Paths with non-ASCII characters (after percent-decoding): `refuse`
    /// (400 `ambiguous_path`, the default) or `nfkc` (NFKC-folded before
    /// matching, for upstreams that fold them too).
    pub non_ascii: NonAsciiPaths,
}

/// What the policy does with a path holding non-ASCII characters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NonAsciiPaths {
    /// 400 `ambiguous_path`: applications fold such paths in too many ways
    /// (fullwidth letters, ligatures, compatibility forms).
    #[default]
    Refuse,
    /// Matched after Unicode NFKC normalization (fullwidth `ａ` reads as `a`),
    /// and the stricter of the folded and unfolded readings applies.
    Nfkc,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            default: Mode::Either,
            unauthenticated: Unauthenticated::Json,
            login_path: "/login".to_owned(),
            routes: Vec::new(),
            non_ascii: NonAsciiPaths::Refuse,
        }
    }
}

/// What unauthenticated requests get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unauthenticated {
    /// 401 with a JSON body.
    Json,
    /// Browser navigations: 303 to the login page.
    Redirect,
}

/// Which credentials a route accepts (what the bridge enforces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// No credential needed; an identity is attached when one is presented.
    Public,
    /// Legacy only: a session cookie.
    Session,
    /// JWT only: a bearer header or the token cookie.
    Token,
    /// Both. A session-authenticated request without a fresh token cookie
    /// gets one minted; a token-cookie request without a session gets a
    /// linked session.
    Either,
}

impl Mode {
    /// Label used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Session => "session",
            Self::Token => "token",
            Self::Either => "either",
        }
    }
}

/// The `mode` of a `[[policy.routes]]` entry: a [`Mode`], or `shadow`
/// (enforce one mode, evaluate another, count where they disagree), which
/// exists in configuration only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleMode {
    /// See [`Mode::Public`].
    Public,
    /// See [`Mode::Session`].
    Session,
    /// See [`Mode::Token`].
    Token,
    /// See [`Mode::Either`].
    Either,
    /// Enforce `enforce`, evaluate `evaluate`, count disagreements.
    Shadow,
}

impl RuleMode {
    /// The mode enforced at run time, unless this is `shadow` (whose rule
    /// names it in `enforce`).
    pub fn enforced(self) -> Option<Mode> {
        match self {
            Self::Public => Some(Mode::Public),
            Self::Session => Some(Mode::Session),
            Self::Token => Some(Mode::Token),
            Self::Either => Some(Mode::Either),
            Self::Shadow => None,
        }
    }
}

impl From<Mode> for RuleMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Public => Self::Public,
            Mode::Session => Self::Session,
            Mode::Token => Self::Token,
            Mode::Either => Self::Either,
        }
    }
}

/// One `[[policy.routes]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RouteRuleConfig {
    /// Path pattern: exact, or a prefix ending in `/*` (matches the prefix
    /// itself and everything below it), or `*` for every path.
    pub path: String,
    /// Methods the rule applies to (all when absent). A rule listing `GET`
    /// also applies to `HEAD`, which every router answers with the GET
    /// handler.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// Match the path case-sensitively (default `false`: ASCII letters match
    /// in any case, as Express, IIS and many PHP routers read paths).
    #[serde(default)]
    pub case_sensitive: bool,
    /// The mode.
    pub mode: RuleMode,
    /// For `shadow`: the mode that decides.
    #[serde(default)]
    pub enforce: Option<Mode>,
    /// For `shadow`: the mode evaluated alongside.
    #[serde(default)]
    pub evaluate: Option<Mode>,
    /// Name in metrics (default: the path pattern).
    #[serde(default)]
    pub name: Option<String>,
}

impl RouteRuleConfig {
    /// A rule applying `mode` to `path` for every method.
    pub fn new(path: impl Into<String>, mode: Mode) -> Self {
        Self {
            path: path.into(),
            methods: None,
            case_sensitive: false,
            mode: mode.into(),
            enforce: None,
            evaluate: None,
            name: None,
        }
    }

    /// A shadow rule: `enforce` decides, `evaluate` is counted.
    pub fn shadow(path: impl Into<String>, enforce: Mode, evaluate: Mode) -> Self {
        Self {
            enforce: Some(enforce),
            evaluate: Some(evaluate),
            mode: RuleMode::Shadow,
            ..Self::new(path, Mode::Public)
        }
    }
}

impl SessionConfig {
    /// Record problems under `key`.
    pub fn validate(&self, key: &str, problems: &mut Problems) {
        if !(Duration::from_secs(60)..=Duration::from_secs(30 * 24 * 3600)).contains(&self.idle_ttl)
        {
            problems.push(
                format!("{key}.idle_ttl"),
                "must be between 1 minute and 30 days",
            );
        }
        if self.absolute_ttl < self.idle_ttl
            || self.absolute_ttl > Duration::from_secs(90 * 24 * 3600)
        {
            problems.push(
                format!("{key}.absolute_ttl"),
                "must be at least idle_ttl and at most 90 days",
            );
        }
    }
}

impl CookieConfig {
    /// Record problems under `key`.
    pub fn validate(&self, key: &str, problems: &mut Problems) {
        let names = [
            ("session_name", &self.session_name),
            ("token_name", &self.token_name),
            ("csrf_name", &self.csrf_name),
        ];
        for (name, value) in names {
            // RFC 6265 token characters, short.
            let ok = !value.is_empty()
                && value.len() <= 64
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !ok {
                problems.push(
                    format!("{key}.{name}"),
                    "must be 1-64 cookie-name characters (letters, digits, -_.)",
                );
            }
        }
        if self.session_name == self.token_name
            || self.session_name == self.csrf_name
            || self.token_name == self.csrf_name
        {
            problems.push(format!("{key}.token_name"), "cookie names must differ");
        }
    }
}

impl CsrfConfig {
    /// Record problems under `key`.
    pub fn validate(&self, key: &str, problems: &mut Problems) {
        for (i, origin) in self.trusted_origins.iter().enumerate() {
            let ok = url::Url::parse(origin).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.path() == "/"
                    && !origin.ends_with('/')
            });
            if !ok {
                problems.push(
                    format!("{key}.trusted_origins[{i}]"),
                    "must be an origin like https://app.example.com (no path)",
                );
            }
        }
        if axum::http::HeaderName::from_bytes(self.header.as_bytes()).is_err() {
            problems.push(format!("{key}.header"), "must be a valid header name");
        }
    }
}

impl PolicyConfig {
    /// Record problems under `key`.
    pub fn validate(&self, key: &str, problems: &mut Problems) {
        if !self.login_path.starts_with('/') || self.login_path.starts_with("//") {
            problems.push(
                format!("{key}.login_path"),
                "must be a local path starting with /",
            );
        }
        for (i, rule) in self.routes.iter().enumerate() {
            let rk = format!("{key}.routes[{i}]");
            let p = &rule.path;
            let star = p.find('*');
            let valid_path = p == "*"
                || (p.starts_with('/')
                    && (star.is_none() || (p.ends_with("/*") && star == Some(p.len() - 1))));
            if !valid_path {
                problems.push(
                    format!("{rk}.path"),
                    "must be `*`, an exact path, or a prefix ending in `/*`",
                );
            }
            if let Some(methods) = &rule.methods {
                for m in methods {
                    if axum::http::Method::from_bytes(m.as_bytes()).is_err()
                        || m.chars().any(|c| c.is_ascii_lowercase())
                    {
                        problems.push(
                            format!("{rk}.methods"),
                            format!("`{m}` is not an upper-case HTTP method"),
                        );
                    }
                }
            }
            match rule.mode {
                RuleMode::Shadow => {
                    let (Some(enforce), Some(evaluate)) = (rule.enforce, rule.evaluate) else {
                        problems.push(
                            format!("{rk}.enforce"),
                            "shadow needs both enforce and evaluate",
                        );
                        continue;
                    };
                    if enforce == evaluate {
                        problems.push(
                            format!("{rk}.evaluate"),
                            "enforce and evaluate must be two different modes",
                        );
                    }
                }
                _ => {
                    if rule.enforce.is_some() || rule.evaluate.is_some() {
                        problems.push(
                            format!("{rk}.enforce"),
                            "enforce/evaluate apply to mode = \"shadow\" only",
                        );
                    }
                }
            }
        }
    }
}
