//! A secret source whose behaviour is chosen by the reference, so one component exercises every
//! way a secret plugin can behave, well or badly:
//!
//! | reference | behaviour |
//! |---|---|
//! | `literal:<v>` | returns `<v>` (with `config.prefix` prepended when set) |
//! | `env:<NAME>` | returns the env var (fails `not-found` when the host did not grant it) |
//! | `file:<path>` | returns the file's first line (fails `unavailable` when not readable) |
//! | `http:<url>` | GETs the URL through `outbound-http` and returns the body |
//! | `loop` | spins forever (epoch deadline) |
//! | `bomb` | allocates until the memory limit |
//! | `recurse` | unbounded recursion (wasm stack limit) |
//! | `huge` | returns 256 KiB (the host caps secrets at 16 KiB) |
//! | `crlf` | returns a value with CR/LF (header injection) |
//! | `trap` | panics halfway through (trap) |
//! | `log-flood` | logs 10 000 times, then returns `flooded` |
//! | `calls` | counts `resolve` calls in this instance and returns the count (`1` in a fresh one) |
//! | `init-stamp` | returns the host clock's unix milliseconds when `init` ran in this instance |
//! | `sleep:<ms>` | `std::thread::sleep` (a WASI poll), then returns `slept` |
//! | `random:<bytes>:<times>` | `wasi:random` `get-random-bytes(<bytes>)`, `<times>` times, then returns `random` |
//! | `pollables:<n>` | creates `<n>` pollables (`subscribe-duration`) and keeps them all alive |
//! | `poll-list:<n>` | polls a list of `<n>` borrows of one ready pollable |
//!
//! `config`: `prefix` (for `literal`); `failIfExists`, a path that makes `init` fail while it
//! exists (a plugin whose `init` starts failing after load); the string `"reject"` anywhere in
//! the config (say `prefix: "reject"`) fails `init` always.

wit_bindgen::generate!({ world: "secret-source-plugin", path: "../../../wit/portcullis-plugin@0.1.0" });

use exports::portcullis::plugin::lifecycle::Guest as Lifecycle;
use exports::portcullis::plugin::secret_source::{
    Guest as SecretSource, SecretError, SecretRequest,
};
use portcullis::plugin::outbound_http;
use portcullis::plugin::types::{InitError, PluginKind, PluginMetadata};

static mut PREFIX: String = String::new();
static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static INIT_STAMP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

struct Plugin;

/// Raw WASI 0.2 imports (the fixture has no WASI bindings crate); the canonical ABI by hand.
mod raw {
    #[link(wasm_import_module = "wasi:random/random@0.2.4")]
    extern "C" {
        /// `get-random-bytes(len: u64) -> list<u8>`: the list lands at `ret` as (ptr, len).
        #[link_name = "get-random-bytes"]
        pub fn get_random_bytes(len: i64, ret: *mut [usize; 2]);
    }
    #[link(wasm_import_module = "wasi:clocks/monotonic-clock@0.2.4")]
    extern "C" {
        /// `subscribe-duration(when: u64) -> pollable`.
        #[link_name = "subscribe-duration"]
        pub fn subscribe_duration(nanos: i64) -> i32;
    }
    #[link(wasm_import_module = "wasi:io/poll@0.2.4")]
    extern "C" {
        /// `poll(in: list<borrow<pollable>>) -> list<u32>`.
        #[link_name = "poll"]
        pub fn poll(ptr: *const i32, len: usize, ret: *mut [usize; 2]);
    }
}

fn number(text: &str) -> u64 {
    text.parse().unwrap_or(0)
}

impl Lifecycle for Plugin {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "test-secret".into(),
            version: "0.1.0".into(),
            kind: PluginKind::SecretSource,
            description: "host test fixture: behaviour chosen by the reference".into(),
            config_schema: r#"{"type":"object","properties":{"prefix":{"type":"string"},"failIfExists":{"type":"string"}},"additionalProperties":false}"#.into(),
        }
    }

    fn init(config: String) -> Result<(), InitError> {
        if config.contains("\"reject\"") {
            return Err(InitError::InvalidConfig(
                "reject: refused on purpose".into(),
            ));
        }
        // Tiny parser: `{"prefix":"<v>"}`; the fixture must not need serde.
        INIT_STAMP.store(
            portcullis::plugin::clock::now_unix_ms(),
            std::sync::atomic::Ordering::Relaxed,
        );
        if let Some(rest) = config.split("\"failIfExists\":\"").nth(1) {
            let path = rest.split('"').next().unwrap_or_default();
            if std::fs::metadata(path).is_ok() {
                return Err(InitError::Failed(format!("{path} exists")));
            }
        }
        if let Some(rest) = config.split("\"prefix\":\"").nth(1) {
            if let Some(value) = rest.split('"').next() {
                // SAFETY: single-threaded guest; written once per instance before any read.
                unsafe { PREFIX = value.to_owned() };
            }
        }
        Ok(())
    }
}

#[inline(never)]
#[allow(unconditional_recursion)] // on purpose: the host must stop it (wasm stack limit)
fn recurse(depth: u64, sink: &mut [u64; 64]) -> u64 {
    sink[(depth % 64) as usize] = depth;
    let below = recurse(depth + 1, sink);
    below.wrapping_add(sink[(depth % 7) as usize])
}

impl SecretSource for Plugin {
    fn resolve(request: SecretRequest) -> Result<String, SecretError> {
        let reference = request.reference.as_str();
        let (verb, arg) = reference.split_once(':').unwrap_or((reference, ""));
        match verb {
            "literal" => {
                // SAFETY: see `init`.
                let prefix = unsafe { (*std::ptr::addr_of!(PREFIX)).clone() };
                Ok(format!("{prefix}{arg}"))
            }
            "env" => std::env::var(arg).map_err(|_| SecretError::NotFound(format!("env {arg}"))),
            "file" => std::fs::read_to_string(arg)
                .map(|text| text.lines().next().unwrap_or_default().to_owned())
                .map_err(|e| SecretError::Unavailable(format!("file {arg}: {e}"))),
            "http" => {
                let response = outbound_http::fetch(&outbound_http::Request {
                    method: "GET".into(),
                    url: arg.into(),
                    headers: vec![],
                    body: None,
                    timeout_ms: Some(5_000),
                })
                .map_err(|e| SecretError::Unavailable(format!("{e:?}")))?;
                String::from_utf8(response.body)
                    .map_err(|_| SecretError::Unavailable("body is not UTF-8".into()))
            }
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "recurse" => {
                let mut sink = [0u64; 64];
                Ok(recurse(0, &mut sink).to_string())
            }
            "huge" => Ok("x".repeat(256 << 10)),
            "crlf" => Ok("good\r\nX-Injected: 1".into()),
            "trap" => {
                let half: Vec<u8> = vec![7; 1024];
                std::hint::black_box(&half);
                panic!("trap halfway through");
            }
            "calls" => {
                let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                Ok(n.to_string())
            }
            "init-stamp" => Ok(INIT_STAMP
                .load(std::sync::atomic::Ordering::Relaxed)
                .to_string()),
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_millis(number(arg)));
                Ok("slept".into())
            }
            "random" => {
                let (bytes, times) = arg.split_once(':').unwrap_or((arg, "1"));
                for _ in 0..number(times) {
                    let mut ret = [0usize; 2];
                    // SAFETY: the host writes a list it allocated through `cabi_realloc` at `ret`.
                    unsafe { raw::get_random_bytes(number(bytes) as i64, &mut ret) };
                    std::hint::black_box(ret);
                }
                Ok("random".into())
            }
            "pollables" => {
                let mut last = 0;
                for _ in 0..number(arg) {
                    // SAFETY: plain import call; the handle is leaked (never dropped) on purpose.
                    last = std::hint::black_box(unsafe { raw::subscribe_duration(1_000_000_000) });
                }
                Ok(last.to_string())
            }
            "poll-list" => {
                // SAFETY: plain import calls; the list borrows one live pollable n times.
                let ready = unsafe { raw::subscribe_duration(0) };
                let list = vec![ready; number(arg) as usize];
                let mut ret = [0usize; 2];
                unsafe { raw::poll(list.as_ptr(), list.len(), &mut ret) };
                Ok(ret[1].to_string())
            }
            "log-flood" => {
                for i in 0..10_000 {
                    portcullis::plugin::log::log(
                        portcullis::plugin::log::Level::Info,
                        &format!("flood {i}"),
                        &[],
                    );
                }
                Ok("flooded".into())
            }
            _ => Err(SecretError::InvalidReference(format!(
                "unknown verb {verb}"
            ))),
        }
    }
}

export!(Plugin);
