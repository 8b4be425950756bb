//! Wall-clock time from the host. Natively (unit tests) it is the system clock unless a test fixes
//! it with [`crate::testing::set_now_unix_ms`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (UTC).
pub fn now_unix_ms() -> u64 {
    crate::host::now_unix_ms()
}

/// Seconds since the Unix epoch (UTC): the unit of [`crate::Identity::expires_at`].
pub fn now_unix_secs() -> u64 {
    now_unix_ms() / 1000
}

/// The current time as a [`SystemTime`].
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(now_unix_ms())
}
