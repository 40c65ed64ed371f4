//! The open-files limit: raised at start, and the connection cap kept
//! under it, so a flood of connections never makes `accept` fail with
//! "Too many open files" (which would also lock out health checks).

/// Descriptors kept for everything that is not a client connection: store
/// and upstream pools, the key and users files, the runtime.
const OTHER_FILES: u64 = 256;
/// Below this, the limit is worth a warning whatever the settings.
const LOW_LIMIT: u64 = 4096;

/// Client connections the process can hold: the configured caps, lowered
/// when the open-files limit cannot hold them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ConnectionCaps {
    /// Connections served normally.
    pub(super) general: usize,
    /// Connections beyond those that only answer health checks.
    pub(super) health: usize,
}

/// Raise the soft open-files limit to the hard one, then fit the caps
/// under it. `proxied` counts each connection twice (client + upstream).
pub(super) fn fit_connections(wanted: ConnectionCaps, proxied: bool) -> ConnectionCaps {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read or raise the open-files limit; keeping the configured connection caps");
            return wanted;
        }
    };
    let fitted = fit(wanted, limit, proxied);
    if fitted != wanted {
        tracing::warn!(
            open_files_limit = limit,
            max_connections = fitted.general,
            health_reserve = fitted.health,
            "the open-files limit cannot hold server.max_connections + server.health_reserve; \
             serving fewer connections (raise the hard limit, e.g. LimitNOFILE= or ulimit -Hn)"
        );
    } else if limit < LOW_LIMIT {
        tracing::warn!(
            open_files_limit = limit,
            "the open-files limit is low; raise the hard limit (e.g. LimitNOFILE= or ulimit -Hn)"
        );
    } else {
        tracing::debug!(open_files_limit = limit, "open-files limit");
    }
    fitted
}

fn fit(wanted: ConnectionCaps, limit: u64, proxied: bool) -> ConnectionCaps {
    let per_connection = if proxied { 2 } else { 1 };
    let budget = usize::try_from(limit.saturating_sub(OTHER_FILES) / per_connection)
        .unwrap_or(usize::MAX)
        .max(2);
    if wanted.general.saturating_add(wanted.health) <= budget {
        return wanted;
    }
    // Keep the health reserve small but present: probes must get in.
    let health = wanted.health.min((budget / 16).max(1));
    ConnectionCaps {
        general: budget - health,
        health,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WANTED: ConnectionCaps = ConnectionCaps {
        general: 4096,
        health: 32,
    };

    #[test]
    fn caps_fit_under_the_limit_and_keep_a_health_reserve() {
        assert_eq!(fit(WANTED, 1 << 20, true), WANTED);
        let small = fit(WANTED, 1024, false);
        assert_eq!(small.general + small.health, 1024 - 256);
        assert!(small.health >= 1);
        let proxied = fit(WANTED, 1024, true);
        assert_eq!(proxied.general + proxied.health, (1024 - 256) / 2);
        let tiny = fit(WANTED, 10, false);
        assert_eq!((tiny.general, tiny.health), (1, 1));
    }
}
