//! Upstream settings: `runtime.server.upstream`, the limits on every call to an upstream API.
//!
//! Rule: each limit, when set, is greater than 0 (a zero timeout, size or attempt count would
//! refuse every call); an absent limit takes the runtime default. Failure mode: one problem per
//! zero limit, at its key.

use crate::config::{Config, JsonPath, Problems};

/// Check `runtime.server.upstream`.
pub fn check(config: &Config, p: &mut Problems) {
    let Some(server) = config.runtime.as_ref().and_then(|r| r.server.as_ref()) else {
        return;
    };
    let server_path = JsonPath::of(&["runtime", "server"]);
    if let Some(limits) = &server.upstream {
        let up = server_path.key("upstream");
        let fields = [
            ("connectTimeoutMs", limits.connect_timeout_ms),
            ("timeoutMs", limits.timeout_ms),
            ("maxResponseBytes", limits.max_response_bytes),
            ("maxAttempts", limits.max_attempts.map(u64::from)),
            ("maxRetryAfterMs", limits.max_retry_after_ms),
        ];
        for (name, value) in fields {
            if value == Some(0) {
                p.push(up.key(name), "must be greater than 0");
            }
        }
    }
}
