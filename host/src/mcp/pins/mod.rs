//! Tool-definition pinning ("rug-pull" protection): an MCP tool whose definition changed since
//! it was accepted is held back until an operator accepts the new one.
//!
//! | situation at a listing | outcome | audit (once, by the runtime) |
//! |---|---|---|
//! | a tool never seen before (first listing of the source, or a tool added later) | trusted on first use: pinned and served | `tool_definition_pinned` |
//! | definition digest = the pin | served | — |
//! | definition digest ≠ the pin | withheld from the catalog, refused at call time (`tool_definition_changed`) | `tool_definition_changed` with the diff, once per new digest |
//! | the pinned definition comes back | served again, the pending change forgotten | — |
//! | `portcullis mcp accept` promoted the pending definition | served | `tool_definition_accepted` |
//! | `sources.<id>.toolPins.<tool>` is set | that digest is the pin (the recorded one is ignored) | as above; a match also records the pin |
//!
//! A name listed more than once is withheld, all of its definitions (a server cannot have two
//! tools of one name; which one a call reaches is the server's choice), and not pinned.
//!
//! A tool that disappears keeps its pin: if it comes back changed, it is withheld. A renamed
//! tool is a new tool (pinned on first use and audited as such) and the old name's pin stays.
//!
//! Pins live in `<stateDir>/mcp-pins/<sha256 of the source id>.json` (mode 0600, written to a
//! temporary file, fsynced and renamed, as OAuth tokens are), with each accepted and each
//! pending definition, so a diff can be shown and a restart neither re-audits a change nor
//! forgets one. A pool without a state directory (the CLI's one-shot builds) keeps pins in
//! memory. Failure mode: fail closed. A pin file that cannot be read or parsed, or a pin that
//! cannot be saved, fails the whole source (no tool of it is served) with the file's path;
//! a file is never treated as absent, which would trust every tool again.

mod definition;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::upstream::AppliedCredentials;

/// The directory under the instance state dir that holds the pin files.
pub const PIN_DIR: &str = "mcp-pins";

/// One source's pin file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourcePins {
    /// The source id (the file name is its hash).
    source_id: String,
    /// Accepted definitions, by tool name.
    #[serde(default)]
    tools: BTreeMap<String, Pinned>,
    /// Listed definitions that differ from the accepted one, waiting for an operator.
    #[serde(default)]
    pending: BTreeMap<String, Pinned>,
}

/// One recorded definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pinned {
    digest: String,
    definition: Value,
    /// RFC 3339 time it was recorded.
    at: String,
    /// Who accepted it (`firstUse`, `cli`, `config`); absent for a pending definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    accepted_by: Option<String>,
    /// Accepted by the CLI and not yet audited by the runtime.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    unannounced: bool,
}

impl Pinned {
    fn new(digest: String, definition: Value, accepted_by: Option<&str>) -> Self {
        Self {
            digest,
            definition,
            at: crate::audit::now_rfc3339(),
            accepted_by: accepted_by.map(str::to_owned),
            unannounced: false,
        }
    }
}

/// What happened to a tool's pin, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinEventKind {
    /// First seen and trusted.
    Pinned,
    /// Its definition changed; it is withheld.
    Changed,
    /// A pending definition was accepted (CLI or config).
    Accepted,
}

impl PinEventKind {
    /// The audit event type.
    pub fn event_type(self) -> &'static str {
        match self {
            Self::Pinned => "tool_definition_pinned",
            Self::Changed => "tool_definition_changed",
            Self::Accepted => "tool_definition_accepted",
        }
    }
}

/// One pin event waiting to be audited.
#[derive(Debug, Clone, PartialEq)]
pub struct PinEvent {
    /// The source.
    pub source_id: String,
    /// The tool's name on its server.
    pub tool_name: String,
    /// What happened.
    pub kind: PinEventKind,
    /// `sourceId`, `toolName`, `digest` and, for a change, `pinnedDigest`, `changes` (JSON
    /// Pointer, before, after) and `omittedChanges`; scrubbed of the transport's credentials.
    pub detail: Value,
}

/// Why a source's pins cannot be used (the source fails closed).
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The pin file exists but cannot be read or parsed.
    #[error("tool pins of MCP source {source_id:?} in {} cannot be read ({reason}); fix or remove the file (removing it trusts every tool the server lists next)", path.display())]
    Unreadable {
        /// The source.
        source_id: String,
        /// The file.
        path: PathBuf,
        /// Cause.
        reason: String,
    },
    /// The pin file cannot be written.
    #[error("tool pins of MCP source {source_id:?} cannot be saved to {}: {reason}", path.display())]
    Unwritable {
        /// The source.
        source_id: String,
        /// The file.
        path: PathBuf,
        /// Cause.
        reason: String,
    },
    /// `mcp accept`: nothing recorded for the source.
    #[error("no tool pins recorded for MCP source {source_id:?} in {} (has a runtime with this state directory listed it?)", dir.display())]
    NoPins {
        /// The source.
        source_id: String,
        /// The pin directory.
        dir: PathBuf,
    },
    /// `mcp accept --tool`: that tool has no pending definition.
    #[error("MCP source {source_id:?} has no changed definition of tool {tool:?} waiting to be accepted (waiting: {waiting:?})")]
    NotPending {
        /// The source.
        source_id: String,
        /// The tool asked for.
        tool: String,
        /// The tools that are waiting.
        waiting: Vec<String>,
    },
}

/// One definition `mcp accept` promoted.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedTool {
    /// Tool name.
    pub name: String,
    /// Its digest (what a config pin would say).
    pub digest: String,
    /// The pin it replaces, if any.
    pub previous: Option<String>,
    /// What changed (JSON Pointer, before, after).
    pub changes: Vec<Value>,
}

/// The pins of every MCP source of an instance.
#[derive(Debug, Default)]
pub struct Pins {
    dir: Option<PathBuf>,
    memory: Mutex<HashMap<String, SourcePins>>,
    config: Mutex<HashMap<String, BTreeMap<String, String>>>,
    held: Mutex<HashMap<String, HashMap<String, String>>>,
    events: Mutex<Vec<PinEvent>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The pin file of `source_id` under `dir`.
pub fn pin_file(dir: &Path, source_id: &str) -> PathBuf {
    dir.join(format!(
        "{}.json",
        hex::encode(Sha256::digest(source_id.as_bytes()))
    ))
}

impl Pins {
    /// Pins kept in files under `dir` (normally `<stateDir>/mcp-pins`), or in memory.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            ..Self::default()
        }
    }

    /// The pin file of a source, when pins are kept on disk (watched: an accept rebuilds).
    pub fn file(&self, source_id: &str) -> Option<PathBuf> {
        self.dir.as_deref().map(|d| pin_file(d, source_id))
    }

    /// Set the config pins (`sources.<id>.toolPins`) of a source.
    pub fn set_config(&self, source_id: &str, pins: BTreeMap<String, String>) {
        lock(&self.config).insert(source_id.to_owned(), pins);
    }

    /// Why `tool` of `source_id` is withheld at the last listing, if it is.
    pub fn withheld(&self, source_id: &str, tool: &str) -> Option<String> {
        lock(&self.held).get(source_id)?.get(tool).cloned()
    }

    /// Take the events not yet audited.
    pub fn take_events(&self) -> Vec<PinEvent> {
        std::mem::take(&mut *lock(&self.events))
    }

    fn load(&self, source_id: &str) -> Result<SourcePins, PinError> {
        let Some(path) = self.file(source_id) else {
            return Ok(lock(&self.memory)
                .get(source_id)
                .cloned()
                .unwrap_or_else(|| SourcePins {
                    source_id: source_id.to_owned(),
                    ..SourcePins::default()
                }));
        };
        read(&path, source_id)?.map_or_else(
            || {
                Ok(SourcePins {
                    source_id: source_id.to_owned(),
                    ..SourcePins::default()
                })
            },
            Ok,
        )
    }

    fn save(&self, pins: &SourcePins) -> Result<(), PinError> {
        match self.file(&pins.source_id) {
            Some(path) => write(&path, pins),
            None => {
                lock(&self.memory).insert(pins.source_id.clone(), pins.clone());
                Ok(())
            }
        }
    }

    /// Check a listing against the pins: returns tool name -> why it is withheld, records new
    /// pins and pending changes, and queues their audit events (strings in them scrubbed of
    /// `carried`, the credentials the transport sends the server).
    pub fn admit(
        &self,
        source_id: &str,
        listed: &[rmcp::model::Tool],
        carried: &AppliedCredentials,
    ) -> Result<HashMap<String, String>, PinError> {
        let config = lock(&self.config)
            .get(source_id)
            .cloned()
            .unwrap_or_default();
        let mut pins = self.load(source_id)?;
        let original = pins.clone();
        let mut held = HashMap::new();
        let mut events = Vec::new();
        let mut event = |name: &str, kind: PinEventKind, detail: Value| {
            let mut detail = detail;
            detail["sourceId"] = source_id.into();
            detail["toolName"] = name.into();
            events.push(PinEvent {
                source_id: source_id.to_owned(),
                tool_name: name.to_owned(),
                kind,
                detail: scrub(detail, carried),
            });
        };
        let mut seen = std::collections::HashSet::new();
        let repeated: std::collections::HashSet<&str> = listed
            .iter()
            .map(|t| t.name.as_ref())
            .filter(|name| !seen.insert(*name))
            .collect();
        for tool in listed {
            let name = tool.name.to_string();
            if repeated.contains(name.as_str()) {
                held.insert(
                    name,
                    "the MCP server lists more than one tool of this name; none of them is served"
                        .to_owned(),
                );
                continue;
            }
            let definition = definition::definition(tool);
            let digest = definition::digest(&definition);
            let (pin, by_config) = match config.get(&name) {
                Some(pin) => (Some(pin.clone()), true),
                None => (pins.tools.get(&name).map(|p| p.digest.clone()), false),
            };
            match pin {
                None => {
                    event(&name, PinEventKind::Pinned, json!({"digest": digest}));
                    pins.tools
                        .insert(name, Pinned::new(digest, definition, Some("firstUse")));
                }
                Some(pin) if pin == digest => {
                    pins.pending.remove(&name);
                    let recorded = pins.tools.get_mut(&name);
                    match recorded {
                        Some(p) if p.digest == digest => {
                            if std::mem::take(&mut p.unannounced) {
                                let by = p.accepted_by.clone().unwrap_or_default();
                                event(
                                    &name,
                                    PinEventKind::Accepted,
                                    json!({"digest": digest, "acceptedBy": by}),
                                );
                            }
                        }
                        // A config pin that differs from the recorded one: the config wins,
                        // and becomes the record (kept if the config pin is removed later).
                        _ => {
                            event(
                                &name,
                                PinEventKind::Accepted,
                                json!({"digest": digest, "acceptedBy": "config"}),
                            );
                            pins.tools
                                .insert(name, Pinned::new(digest, definition, Some("config")));
                        }
                    }
                }
                Some(pin) => {
                    let previous = pins
                        .tools
                        .get(&name)
                        .filter(|p| p.digest == pin)
                        .map(|p| &p.definition);
                    let (changes, omitted) = match previous {
                        Some(before) => definition::diff(before, &definition),
                        None => (Vec::new(), 0),
                    };
                    let members = definition::changed_members(&changes);
                    let why = if by_config {
                        format!(
                            "its definition ({digest}) does not match sources.{source_id}.toolPins.{name} ({pin}); set the pin to the new digest to accept it"
                        )
                    } else {
                        format!(
                            "the MCP server changed its definition since it was pinned ({pin} -> {digest}; changed: {}); an operator must accept it: portcullis mcp accept {source_id} --tool {name}",
                            if members.is_empty() { "unknown".to_owned() } else { members.join(", ") }
                        )
                    };
                    let reported = pins.pending.get(&name).is_some_and(|p| p.digest == digest);
                    if !reported {
                        let mut detail = json!({
                            "digest": digest,
                            "pinnedDigest": pin,
                            "pinnedBy": if by_config { "config" } else { "record" },
                            "changes": changes,
                        });
                        if omitted > 0 {
                            detail["omittedChanges"] = omitted.into();
                        }
                        event(&name, PinEventKind::Changed, detail);
                        pins.pending
                            .insert(name.clone(), Pinned::new(digest, definition, None));
                    }
                    held.insert(name, why);
                }
            }
        }
        if pins != original {
            self.save(&pins)?;
        }
        lock(&self.events).extend(events);
        lock(&self.held).insert(source_id.to_owned(), held.clone());
        Ok(held)
    }
}

/// `portcullis mcp accept`: promote the pending definitions of `source_id` (only `tool`'s when
/// given) in the pin files under `dir`. The runtime audits the acceptance at its next listing.
pub fn accept(
    dir: &Path,
    source_id: &str,
    tool: Option<&str>,
) -> Result<Vec<AcceptedTool>, PinError> {
    let path = pin_file(dir, source_id);
    let mut pins = read(&path, source_id)?.ok_or_else(|| PinError::NoPins {
        source_id: source_id.to_owned(),
        dir: dir.to_owned(),
    })?;
    let names: Vec<String> = match tool {
        Some(tool) if !pins.pending.contains_key(tool) => {
            return Err(PinError::NotPending {
                source_id: source_id.to_owned(),
                tool: tool.to_owned(),
                waiting: pins.pending.keys().cloned().collect(),
            })
        }
        Some(tool) => vec![tool.to_owned()],
        None => pins.pending.keys().cloned().collect(),
    };
    let mut accepted = Vec::new();
    for name in names {
        let Some(mut pending) = pins.pending.remove(&name) else {
            continue;
        };
        let previous = pins.tools.get(&name);
        let changes = previous
            .map(|p| definition::diff(&p.definition, &pending.definition).0)
            .unwrap_or_default();
        accepted.push(AcceptedTool {
            name: name.clone(),
            digest: pending.digest.clone(),
            previous: previous.map(|p| p.digest.clone()),
            changes,
        });
        pending.accepted_by = Some("cli".to_owned());
        pending.unannounced = true;
        pending.at = crate::audit::now_rfc3339();
        pins.tools.insert(name, pending);
    }
    if !accepted.is_empty() {
        write(&path, &pins)?;
    }
    Ok(accepted)
}

/// The pin file at `path`, `None` when there is none; unreadable = an error (fail closed).
fn read(path: &Path, source_id: &str) -> Result<Option<SourcePins>, PinError> {
    let unreadable = |reason: String| PinError::Unreadable {
        source_id: source_id.to_owned(),
        path: path.to_owned(),
        reason,
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e.to_string())),
    };
    let pins: SourcePins = serde_json::from_slice(&bytes).map_err(|e| unreadable(e.to_string()))?;
    if pins.source_id != source_id {
        return Err(unreadable(format!(
            "it holds the pins of source {:?}",
            pins.source_id
        )));
    }
    Ok(Some(pins))
}

fn write(path: &Path, pins: &SourcePins) -> Result<(), PinError> {
    let bytes = serde_json::to_vec_pretty(pins).unwrap_or_default();
    // Written as OAuth tokens are: a crash leaves the old pins or the new, never a torn file.
    crate::oauth::store::write_atomically(path, &bytes).map_err(|e| PinError::Unwritable {
        source_id: pins.source_id.clone(),
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// `detail` with every carried credential replaced (a hostile server may echo the token it was
/// sent into a description); the diff is dropped if scrubbing broke the JSON.
fn scrub(detail: Value, carried: &AppliedCredentials) -> Value {
    if carried.values.is_empty() {
        return detail;
    }
    let text = crate::secrets::scrub::scrub_text(detail.to_string(), carried);
    serde_json::from_str(&text).unwrap_or_else(|_| {
        json!({"sourceId": detail["sourceId"], "toolName": detail["toolName"],
               "digest": detail["digest"], "changes": "omitted: could not be scrubbed"})
    })
}

#[cfg(test)]
mod tests;
