//! `POST /v1/workflows/run`: parse, admit, run, map.
//!
//! config binding (409) -> authenticate (401) -> [`crate::call::run_workflow`] (every step's
//! envelope, then each step through [`crate::call::execute`]) -> the answer, or the stopping
//! step's refusal mapped by `server::refusal`, its detail naming the workflow, the run and the
//! step. The request is the reference's (`configPath`, `mode`, `agentProfile`, `workflowId`,
//! `approval`) plus `inputs`; the answer keeps the reference's `workflowId` and `steps` (the
//! step ids) and adds `runId`, each step's `results` and the workflow's `outputs`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{admit, admitted, json_response, parse_mode, refused};
use crate::app::runtime::Runtime;
use crate::call::{Refusal, RunRefusal, RunRequest};
use crate::policy::strict_json::{self, StrictJsonError};
use crate::server::error::ApiError;
use crate::server::request_id::RequestId;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WorkflowRunRequest {
    #[serde(default)]
    config_path: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    agent_profile: Option<String>,
    workflow_id: String,
    #[serde(default)]
    approval: bool,
    #[serde(default)]
    inputs: Map<String, Value>,
}

impl WorkflowRunRequest {
    /// Strict JSON first (as every request body), then the shape.
    fn parse(raw: &[u8]) -> Result<Self, Refusal> {
        let invalid = |e: &dyn std::fmt::Display| {
            Refusal::InvalidRequest(format!("invalid workflow run request: {e}"))
        };
        match strict_json::check(raw) {
            Ok(()) | Err(StrictJsonError::Syntax(_)) => {}
            Err(e) => return Err(invalid(&e)),
        }
        serde_json::from_slice(raw).map_err(|e| invalid(&e))
    }
}

/// `POST /v1/workflows/run`.
pub async fn run_workflow(
    State(runtime): State<Arc<Runtime>>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let request = WorkflowRunRequest::parse(&raw)?;
    let (snapshot, caller) = admit(&runtime, request.config_path.as_deref(), &headers).await?;
    let mode = parse_mode(request.mode.as_deref())?;
    let admitted = admitted(
        &runtime,
        &snapshot,
        &caller,
        &request_id,
        &headers,
        request.agent_profile.as_deref(),
    );
    let run = RunRequest {
        workflow_id: request.workflow_id.clone(),
        mode,
        approval: request.approval,
        approval_claims: super::request::run_approval_claims(&headers, &request.inputs),
        inputs: request.inputs,
    };
    let outcome = crate::call::run_workflow(&admitted, run)
        .await
        .map_err(|stopped| stopped_at(&runtime, &request.workflow_id, stopped))?;
    let results: Vec<Value> = outcome
        .steps
        .iter()
        .map(|step| {
            serde_json::json!({
                "stepId": step.step_id,
                "toolId": step.tool_id,
                "response": step.answer,
                "outputs": step.outputs,
            })
        })
        .collect();
    let body = serde_json::json!({
        "workflowId": outcome.workflow_id,
        "runId": outcome.run_id,
        "steps": outcome.steps.iter().map(|s| s.step_id.as_str()).collect::<Vec<_>>(),
        "results": results,
        "outputs": outcome.outputs,
    });
    Ok(json_response(Bytes::from(
        serde_json::to_vec(&body).unwrap_or_default(),
    )))
}

/// The stopping refusal as the HTTP answer, its detail naming the run and the step.
fn stopped_at(runtime: &Runtime, workflow_id: &str, stopped: RunRefusal) -> ApiError {
    let mut context = format!("workflow {workflow_id:?}");
    if let Some(run_id) = &stopped.run_id {
        context.push_str(&format!(" run {run_id}"));
    }
    if let Some(step_id) = &stopped.step_id {
        context.push_str(&format!(" stopped at step {step_id:?}"));
        if stopped.completed.is_empty() {
            context.push_str(" (no step completed)");
        } else {
            context.push_str(&format!(" (completed: {})", stopped.completed.join(", ")));
        }
    }
    let step_id = stopped.step_id.clone();
    let error = refused(runtime, stopped.refusal).with_context(&context);
    match step_id {
        Some(step_id) => error.with_step(step_id),
        None => error,
    }
}
