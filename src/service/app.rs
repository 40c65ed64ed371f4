//! Everything the service's handlers share, built from the configuration.

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::bridge::Bridge;
use crate::bridge::config::Unauthenticated;
use crate::config::Config;
use crate::login::PasswordSource;
use crate::login::cognito::CognitoPasswordSource;
use crate::login::config::LoginSourceKind;
use crate::login::oidc::OidcLogin;
use crate::stores::Stores;
use crate::tokens::keys::KeyRing;
use crate::tokens::verify::{OwnIssuer, Verifier};
use crate::users::{BuiltinUsers, GeneratedPassword};

/// OIDC login starts allowed per client address per window: far above what
/// a person clicking "Sign in" does, far below what fills a store.
const OIDC_STARTS_PER_WINDOW: u32 = 30;
const OIDC_START_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The configured store.
    pub stores: Stores,
    /// The signing keys.
    pub keys: Arc<KeyRing>,
    /// Our `iss`: the public URL.
    pub issuer: String,
    /// The bridge core.
    pub bridge: Bridge,
    /// Where `POST /login` checks passwords (`None`: password logins off).
    pub passwords: Option<Arc<dyn PasswordSource>>,
    /// The OpenID Connect login (`None`: `[login.oidc]` not configured).
    pub oidc: Option<Arc<OidcLogin>>,
    /// Prometheus rendering of the process's metrics.
    pub metrics: PrometheusHandle,
    /// The longest lifetime of any token we mint (kill-list entries live
    /// this long).
    pub max_token_ttl: std::time::Duration,
    /// Forward-auth and reverse-proxy settings.
    pub(crate) gateway: super::gateway::Gateway,
    /// Reverse proxies whose `X-Forwarded-For` is believed for login limits.
    pub(crate) trusted_proxies: Arc<[ipnet::IpNet]>,
    /// Starts of OIDC logins per client address (each writes a pending
    /// record to the store, so an anonymous flood must be bounded).
    pub(crate) oidc_starts: Arc<std::sync::Mutex<crate::users::limiter::AddressLimiter>>,
    /// The demo pages' settings (`None`: the demo is off).
    pub demo: Option<Arc<super::DemoSettings>>,
}

/// Why the application state could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The verifier rejected its settings.
    #[error("invalid token verification settings")]
    Verifier(#[source] crate::tokens::verify::VerifierSetupError),
    /// The Cognito login source could not be set up.
    #[error(transparent)]
    Cognito(#[from] crate::login::cognito::CognitoSetupError),
    /// The OIDC login could not be set up.
    #[error(transparent)]
    Oidc(#[from] crate::login::oidc::OidcSetupError),
    /// The users file could not be opened.
    #[error("cannot open the users file")]
    Users(#[source] crate::users::UsersError),
    /// A blocking setup task failed.
    #[error("setup task failed")]
    Task(#[source] tokio::task::JoinError),
    /// The legacy PHP session store could not be set up.
    #[error(transparent)]
    Legacy(#[from] crate::legacy::LegacyError),
    /// The bridge refused its options.
    #[error(transparent)]
    Bridge(#[from] crate::bridge::BridgeBuildError),
}

/// The process-wide Prometheus recorder: the `metrics` facade is global, so
/// the recorder is installed once and shared by every router built here.
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may be installed already (a library user's):
            // then our endpoint shows nothing, which is the honest answer.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

impl AppState {
    /// Build the state for `config`, with `issuer` the public URL actually
    /// served. Returns a development user's generated password when one was
    /// created (to be printed once).
    pub async fn build(
        config: &Config,
        stores: Stores,
        keys: Arc<KeyRing>,
        issuer: String,
    ) -> Result<(Self, Option<GeneratedPassword>), BuildError> {
        let own = OwnIssuer {
            issuer: issuer.clone(),
            client_id: config.tokens.client_id.clone(),
            keys: Arc::clone(&keys) as Arc<dyn crate::tokens::verify::LocalKeys>,
        };
        let verifier = Verifier::start(&config.tokens.verify, &config.tokens.trust, Some(own))
            .await
            .map_err(BuildError::Verifier)?;
        let oidc = match &config.login.oidc {
            Some(cfg) => Some(Arc::new(OidcLogin::new(cfg, &issuer, verifier.clone())?)),
            None => None,
        };
        let t = &config.tokens;
        let c = &config.cookies;
        let mut builder = Bridge::builder()
            .stores(Arc::clone(&stores.sessions), Arc::clone(&stores.revocation))
            .keys(Arc::clone(&keys))
            .issuer(issuer.clone())
            .client_id(t.client_id.clone())
            .access_ttl(t.access_ttl)
            .id_ttl(t.id_ttl)
            .scope(t.scope.clone())
            .leeway(t.verify.leeway)
            .verifier(verifier.clone())
            .session_ttl(config.session.idle_ttl, config.session.absolute_ttl)
            .secure_cookies(config.secure_cookies())
            .cookie_names(&c.session_name, &c.token_name, &c.csrf_name)
            .token_cookie_same_site(c.token_same_site)
            .csrf_header(config.csrf.header.clone())
            .default_mode(config.policy.default);
        for origin in &config.csrf.trusted_origins {
            builder = builder.trusted_origin(origin.clone());
        }
        for rule in &config.policy.routes {
            builder = builder.rule(rule.clone());
        }
        if config.policy.unauthenticated == Unauthenticated::Redirect {
            builder = builder.login_redirect(config.policy.login_path.clone());
        }
        if let Some(php) = &config.legacy_php {
            let php = crate::legacy::LegacySessions::open(php, config).await?;
            builder = builder.credential_source(Arc::new(php));
        }
        if config.revocation.replica {
            let replicated = crate::bridge::ReplicatedRevocation::start(
                Arc::clone(&stores.revocation),
                &config.revocation,
            )
            .await;
            builder = builder.token_revocation(Arc::new(replicated));
        }
        let bridge = builder.build()?;
        let secure = bridge.cookies().secure();
        let mut generated = None;
        let passwords: Option<Arc<dyn PasswordSource>> = match config.login.source {
            LoginSourceKind::None => None,
            LoginSourceKind::Cognito => match &config.login.cognito {
                Some(cognito) => Some(Arc::new(CognitoPasswordSource::new(cognito, verifier)?)),
                None => None,
            },
            LoginSourceKind::Builtin => {
                let (mut users_cfg, data_dir, iss) = (
                    config.users.clone(),
                    config.data_dir.clone(),
                    issuer.clone(),
                );
                // A known user with a password printed to stdout (the log,
                // in most deployments) is for a developer's machine only.
                users_cfg.dev_user &= config.is_local_development(&issuer);
                let (users, password) = tokio::task::spawn_blocking(move || {
                    BuiltinUsers::open_or_init(&users_cfg, &data_dir, iss)
                })
                .await
                .map_err(BuildError::Task)?
                .map_err(BuildError::Users)?;
                generated = password;
                Some(Arc::new(users))
            }
        };
        let max_token_ttl =
            config.tokens.access_ttl.max(config.tokens.id_ttl) + config.tokens.verify.leeway;
        if !secure {
            tracing::warn!(
                "cookies are not marked Secure: acceptable for local http development only"
            );
        }
        let gateway = super::gateway::Gateway::new(&config.forward_auth, &config.proxy, &issuer);
        Ok((
            Self {
                stores,
                keys,
                issuer,
                bridge,
                passwords,
                oidc,
                metrics: metrics_handle(),
                max_token_ttl,
                gateway,
                trusted_proxies: config.login.trusted_proxies.clone().into(),
                oidc_starts: Arc::new(std::sync::Mutex::new(
                    crate::users::limiter::AddressLimiter::new(
                        OIDC_STARTS_PER_WINDOW,
                        OIDC_START_WINDOW,
                        100_000,
                    ),
                )),
                demo: config
                    .demo_enabled()
                    .then(|| Arc::new(super::DemoSettings::new(config))),
            },
            generated,
        ))
    }

    /// The client address a login is rate-limited by (see
    /// [`LoginConfig::client_address`](crate::login::config::LoginConfig::client_address)).
    pub fn client_address(
        &self,
        peer: std::net::IpAddr,
        headers: &axum::http::HeaderMap,
    ) -> std::net::IpAddr {
        crate::login::config::client_address(&self.trusted_proxies, peer, headers)
    }
}
