//! `[server]`: how long and how many clients may hold the service's
//! connections.
//!
//! ```toml
//! [server]
//! header_read_timeout = "10s"   # a request head must arrive whole within this
//! idle_timeout = "5s"           # a connection with no request and no bytes moving is closed
//! body_read_timeout = "10s"     # longest pause between two pieces of a request body
//! max_connections = 4096        # open client connections (lowered to fit the open-files limit)
//! health_reserve = 32           # extra connections that only answer /healthz and /readyz
//! max_header_bytes = 32768      # request line + headers, all together
//! ```

use std::time::Duration;

use serde::Deserialize;

use crate::config::Problems;

/// `[server]`: per-connection timeouts and limits against slow or
/// numerous clients.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ServerConfig {
    /// A request head (request line and headers) must arrive whole within
    /// this, counted from the connection's start or the end of the previous
    /// response (default 10 s). Then the connection is closed.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A connection with no request in flight and no bytes moving for this
    /// long is closed (default 5 s). A keep-alive connection waits at most
    /// this long for its next request.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Longest pause between two pieces of a request body (default 10 s):
    /// a body shorter than its `Content-Length` is answered with an error
    /// after this, not waited on forever.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Open client connections at most (default 4096). Lowered at start
    /// when the open-files limit cannot hold them.
    pub max_connections: usize,
    /// Connections accepted beyond `max_connections` that only answer
    /// `/healthz` and `/readyz` (default 32), so probes get through while
    /// the service is full. Beyond both, new connections are closed at once.
    pub health_reserve: usize,
    /// Largest request head (request line and all headers together), in
    /// bytes (default 32 KiB); larger ones get `431`.
    pub max_header_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(10),
            max_connections: 4096,
            health_reserve: 32,
            max_header_bytes: 32 * 1024,
        }
    }
}

impl ServerConfig {
    /// Record each invalid setting under `prefix`.
    pub fn validate(&self, prefix: &str, problems: &mut Problems) {
        let timeouts = [
            ("header_read_timeout", self.header_read_timeout),
            ("idle_timeout", self.idle_timeout),
            ("body_read_timeout", self.body_read_timeout),
        ];
        for (key, value) in timeouts {
            if !(Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&value) {
                problems.push(
                    format!("{prefix}.{key}"),
                    "must be between 100 milliseconds and 1 hour",
                );
            }
        }
        if self.max_connections == 0 {
            problems.push(format!("{prefix}.max_connections"), "must be at least 1");
        }
        if self.health_reserve == 0 {
            problems.push(
                format!("{prefix}.health_reserve"),
                "must be at least 1 (health checks need a way in when the service is full)",
            );
        }
        if !(1024..=1024 * 1024).contains(&self.max_header_bytes) {
            problems.push(
                format!("{prefix}.max_header_bytes"),
                "must be between 1024 and 1048576",
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        let mut problems = Problems::default();
        ServerConfig::default().validate("server", &mut problems);
        assert!(problems.is_empty());
        let cfg: ServerConfig = toml::from_str(
            "header_read_timeout = \"0s\"\nmax_connections = 0\nmax_header_bytes = 10\n",
        )
        .unwrap();
        let mut problems = Problems::default();
        cfg.validate("server", &mut problems);
        let text = format!("{:?}", problems.into_vec());
        for key in [
            "server.header_read_timeout",
            "server.max_connections",
            "server.max_header_bytes",
        ] {
            assert!(text.contains(key), "{key} missing in {text}");
        }
        assert!(toml::from_str::<ServerConfig>("header_timeout = \"1s\"\n").is_err());
    }
}
