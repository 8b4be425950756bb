//! A workflow run: the steps of a catalog workflow, each through the same call as
//! `POST /v1/tools/execute` ([`execute()`]: envelope, policy, approval, credentials, audit).
//!
//! Rule: before anything runs, every required workflow input must be given, and every step's
//! tool is looked up, must get all its path parameters, and is checked against the caller's
//! scope envelope (a denial is audited); otherwise the run is refused with nothing executed. Then the steps run in order; step arguments are
//! resolved from the run's inputs and earlier steps' outputs ([`crate::catalog::workflows`]
//! says which expressions exist). A step succeeds when all its `successCriteria` hold, or, when
//! it has none, when the upstream answered 2xx; then its `outputs` are taken from its answer.
//!
//! Failure mode: the first step that is refused (policy, approval, credentials, upstream) or
//! does not succeed stops the run: later steps are not called, earlier steps' effects stay
//! (there is no rollback), and the answer names the step and carries its refusal. A step that
//! ran but did not succeed is recorded as `workflow_step_failed`. Every record of a run carries
//! `workflow: {workflowId, runId, stepId}` (the `Admitted` of each step names it).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::audit_trail::AuditTrail;
use super::execute::{check_envelope, lookup};
use super::{execute, Admitted, CallArgs, CallRequest, Refusal};
use crate::audit::AuditWorkflow;
use crate::catalog::workflows::{Condition, Expression, Piece, StringValue};
use crate::catalog::{ParamLocation, Tool, Workflow, WorkflowStep};
use crate::config::Mode;

/// One parsed `POST /v1/workflows/run`.
pub struct RunRequest {
    /// The workflow to run.
    pub workflow_id: String,
    /// The requested mode (every step).
    pub mode: Option<Mode>,
    /// The contract's `approval: true` (flag mode; every step).
    pub approval: bool,
    /// The workflow's inputs.
    pub inputs: Map<String, Value>,
    /// Caller-supplied fields of the run request that look like approval (security case P06),
    /// named in every step's audit record as `execute` names its own.
    pub approval_claims: Vec<String>,
}

/// What one step answered.
pub struct StepOutcome {
    /// The step.
    pub step_id: String,
    /// Its tool.
    pub tool_id: String,
    /// The tool call's answer, as `POST /v1/tools/execute` gives it.
    pub answer: Value,
    /// The step's outputs.
    pub outputs: Map<String, Value>,
}

/// A finished run.
pub struct RunOutcome {
    /// The workflow.
    pub workflow_id: String,
    /// This run's id (in every audit record of the run).
    pub run_id: String,
    /// Every step, in order.
    pub steps: Vec<StepOutcome>,
    /// The workflow's outputs.
    pub outputs: Map<String, Value>,
}

/// Why a run stopped.
pub struct RunRefusal {
    /// The run's id, once it has one.
    pub run_id: Option<String>,
    /// The step that stopped the run (none: it stopped before any step).
    pub step_id: Option<String>,
    /// The steps that completed before it.
    pub completed: Vec<String>,
    /// What the step (or the run) was refused with.
    pub refusal: Refusal,
}

impl RunRefusal {
    fn before_steps(run_id: Option<&str>, refusal: Refusal) -> Self {
        Self {
            run_id: run_id.map(str::to_owned),
            step_id: None,
            completed: Vec::new(),
            refusal,
        }
    }
}

/// Run a workflow of the admitted snapshot's catalog.
pub async fn run(admitted: &Admitted<'_>, request: RunRequest) -> Result<RunOutcome, RunRefusal> {
    let workflow = admitted
        .stages
        .catalog
        .workflows
        .iter()
        .find(|w| w.workflow_id == request.workflow_id)
        .ok_or_else(|| {
            RunRefusal::before_steps(
                None,
                Refusal::WorkflowNotFound {
                    workflow_id: request.workflow_id.clone(),
                },
            )
        })?;
    let run_id = run_id();
    check_inputs(workflow, &request.inputs)
        .map_err(|refusal| RunRefusal::before_steps(Some(&run_id), refusal))?;

    // Every step's tool and scope first: a run the caller may not finish does not start.
    let mut tools = Vec::with_capacity(workflow.steps.len());
    for step in &workflow.steps {
        let step_admitted = for_step(admitted, workflow, &run_id, step);
        let stop = |refusal| RunRefusal {
            run_id: Some(run_id.clone()),
            step_id: Some(step.step_id.clone()),
            completed: Vec::new(),
            refusal,
        };
        let tool = lookup(&step_admitted, &step.tool_id).map_err(stop)?;
        // The catalog binds such a step (as the reference does); it cannot run.
        if let Some(missing) = tool.path_params.iter().find(|declared| {
            !step.parameters.iter().any(|p| {
                p.location == ParamLocation::Path
                    && (p.name == declared.original_name || p.name == declared.name)
            })
        }) {
            return Err(stop(Refusal::InvalidRequest(format!(
                "step {:?} gives no value for the path parameter {:?} of tool {}",
                step.step_id, missing.original_name, tool.id
            ))));
        }
        check_envelope(&AuditTrail::new(&step_admitted), tool)
            .await
            .map_err(stop)?;
        tools.push(tool);
    }

    let mut done: Vec<StepOutcome> = Vec::with_capacity(workflow.steps.len());
    for (step, tool) in workflow.steps.iter().zip(tools) {
        let step_admitted = for_step(admitted, workflow, &run_id, step);
        let stop = |done: &[StepOutcome], refusal| RunRefusal {
            run_id: Some(run_id.clone()),
            step_id: Some(step.step_id.clone()),
            completed: done.iter().map(|s| s.step_id.clone()).collect(),
            refusal,
        };
        let scope = Scope {
            inputs: &request.inputs,
            steps: &done,
            answer: None,
        };
        let mut args = scope
            .arguments(step, tool)
            .map_err(|why| stop(&done, Refusal::InvalidRequest(why)))?;
        args.approval_claims
            .extend(request.approval_claims.iter().cloned());
        let call = CallRequest {
            tool_id: step.tool_id.clone(),
            mode: request.mode,
            approval: request.approval,
            principal: None,
            args,
        };
        let body = execute(&step_admitted, call)
            .await
            .map_err(|refusal| stop(&done, refusal))?;
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let scope = Scope {
            inputs: &request.inputs,
            steps: &done,
            answer: Some(&answer),
        };
        let outputs = match scope.succeeded(step).and_then(|()| scope.outputs(step)) {
            Ok(outputs) => outputs,
            Err(why) => {
                let trail = AuditTrail::new(&step_admitted);
                let refusal = trail.refuse(tool, Refusal::StepFailed { why }).await;
                return Err(stop(&done, refusal));
            }
        };
        done.push(StepOutcome {
            step_id: step.step_id.clone(),
            tool_id: step.tool_id.clone(),
            answer,
            outputs,
        });
    }
    let scope = Scope {
        inputs: &request.inputs,
        steps: &done,
        answer: None,
    };
    let outputs = workflow
        .outputs
        .iter()
        .map(|(name, text)| {
            let value = Expression::parse(text)
                .ok()
                .and_then(|e| scope.eval(&e))
                .unwrap_or(Value::Null);
            (name.clone(), value)
        })
        .collect();
    Ok(RunOutcome {
        workflow_id: workflow.workflow_id.clone(),
        run_id,
        steps: done,
        outputs,
    })
}

/// A random run id (128 bits, hex).
fn run_id() -> String {
    let mut bytes = [0u8; 16];
    // Without OS randomness the id is still unique enough per process to follow a run.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes = nanos.to_le_bytes();
    }
    hex::encode(bytes)
}

/// The admitted call of one step: the run's caller and stages, the step named in its records.
fn for_step<'a>(
    admitted: &Admitted<'a>,
    workflow: &Workflow,
    run_id: &str,
    step: &WorkflowStep,
) -> Admitted<'a> {
    Admitted {
        stages: admitted.stages,
        caller: admitted.caller,
        request_id: admitted.request_id,
        token_hash: admitted.token_hash.clone(),
        agent_profile: admitted.agent_profile,
        status_of: admitted.status_of,
        workflow: Some(AuditWorkflow {
            workflow_id: workflow.workflow_id.clone(),
            run_id: run_id.to_owned(),
            step_id: step.step_id.clone(),
        }),
        mcp: admitted.mcp.clone(),
        relay: None,
    }
}

/// The inputs the workflow's schema marks `required` must be given.
fn check_inputs(workflow: &Workflow, inputs: &Map<String, Value>) -> Result<(), Refusal> {
    let required = workflow
        .inputs
        .as_ref()
        .and_then(|schema| schema.get("required"))
        .and_then(Value::as_array);
    for name in required.into_iter().flatten().filter_map(Value::as_str) {
        if !inputs.contains_key(name) {
            return Err(Refusal::InvalidRequest(format!(
                "workflow {:?} needs the input {name:?}",
                workflow.workflow_id
            )));
        }
    }
    Ok(())
}

/// What expressions see at one point of a run.
struct Scope<'r> {
    inputs: &'r Map<String, Value>,
    steps: &'r [StepOutcome],
    /// The current step's answer, once it ran.
    answer: Option<&'r Value>,
}

impl Scope<'_> {
    fn eval(&self, expr: &Expression) -> Option<Value> {
        let at = |value: &Value, pointer: &Option<String>| match pointer {
            Some(pointer) => value.pointer(pointer).cloned(),
            None => Some(value.clone()),
        };
        match expr {
            Expression::Input { name, pointer } => at(self.inputs.get(name)?, pointer),
            Expression::StepOutput { step_id, name } => self
                .steps
                .iter()
                .find(|s| &s.step_id == step_id)?
                .outputs
                .get(name)
                .cloned(),
            Expression::Status => self.answer?.get("statusCode").cloned(),
            Expression::ResponseBody { pointer } => {
                let answer = self.answer?;
                let body = answer.get("body").or_else(|| answer.get("text"))?;
                at(body, pointer)
            }
        }
    }

    /// A value with its expressions resolved (strings anywhere inside it).
    fn resolve(&self, value: &Value) -> Result<Value, String> {
        match value {
            Value::String(text) => match StringValue::parse(text)? {
                StringValue::Literal => Ok(value.clone()),
                StringValue::Whole(expr) => self
                    .eval(&expr)
                    .ok_or_else(|| format!("{text} has no value")),
                StringValue::Template(pieces) => {
                    let mut out = String::new();
                    for piece in pieces {
                        match piece {
                            Piece::Text(t) => out.push_str(&t),
                            Piece::Expr(expr) => match self.eval(&expr) {
                                Some(Value::String(s)) => out.push_str(&s),
                                Some(other) => out.push_str(&other.to_string()),
                                None => return Err(format!("{text} has no value")),
                            },
                        }
                    }
                    Ok(Value::String(out))
                }
            },
            Value::Array(items) => items.iter().map(|v| self.resolve(v)).collect(),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| Ok((k.clone(), self.resolve(v)?)))
                .collect::<Result<Map<_, _>, String>>()
                .map(Value::Object),
            _ => Ok(value.clone()),
        }
    }

    /// The step's call arguments: path arguments in the tool's order, flags by name, the body.
    fn arguments(&self, step: &WorkflowStep, tool: &Tool) -> Result<CallArgs, String> {
        let text = |param: &str, value: &Value| -> Result<String, String> {
            match self.resolve(value) {
                Ok(Value::String(s)) => Ok(s),
                Ok(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string()),
                Ok(_) => Err(format!(
                    "step {:?} parameter {param:?}: expected a string, number or boolean",
                    step.step_id
                )),
                Err(e) => Err(format!("step {:?} parameter {param:?}: {e}", step.step_id)),
            }
        };
        let mut path_args = Vec::with_capacity(tool.path_params.len());
        for declared in &tool.path_params {
            let given = step.parameters.iter().find(|p| {
                p.location == ParamLocation::Path
                    && (p.name == declared.original_name || p.name == declared.name)
            });
            // Checked before the run started: every path parameter is given.
            if let Some(given) = given {
                path_args.push(text(&given.name, &given.value)?);
            }
        }
        let mut flags = BTreeMap::new();
        for given in step
            .parameters
            .iter()
            .filter(|p| p.location != ParamLocation::Path)
        {
            flags.insert(given.name.clone(), text(&given.name, &given.value)?);
        }
        let body = match &step.request_body {
            None => None,
            Some(payload) => {
                let resolved = self
                    .resolve(payload)
                    .map_err(|e| format!("step {:?} requestBody: {e}", step.step_id))?;
                Some(Bytes::from(
                    serde_json::to_vec(&resolved).unwrap_or_default(),
                ))
            }
        };
        let canonical =
            crate::policy::approvals::canonical_arguments(&path_args, &flags, body.as_deref());
        Ok(CallArgs {
            path_args,
            flags,
            body: Ok(body),
            canonical,
            approval_claims: Vec::new(),
        })
    }

    /// Whether the step that just ran succeeded; otherwise why not.
    fn succeeded(&self, step: &WorkflowStep) -> Result<(), String> {
        let status = self
            .answer
            .and_then(|a| a.get("statusCode"))
            .and_then(Value::as_u64)
            .unwrap_or_default();
        if step.success_criteria.is_empty() {
            return if (200..300).contains(&status) {
                Ok(())
            } else {
                Err(format!(
                    "step {:?} answered {status}, not 2xx (the default success criterion)",
                    step.step_id
                ))
            };
        }
        for criterion in &step.success_criteria {
            let condition = Condition::parse(&criterion.condition)?;
            if !condition.holds(self.eval(&condition.left).as_ref()) {
                return Err(format!(
                    "step {:?} answered {status}; its success criterion {:?} does not hold",
                    step.step_id, criterion.condition
                ));
            }
        }
        Ok(())
    }

    /// The step's outputs; one that has no value fails the step (a later step needs it).
    fn outputs(&self, step: &WorkflowStep) -> Result<Map<String, Value>, String> {
        let mut out = Map::new();
        for (name, text) in &step.outputs {
            let value = Expression::parse(text)
                .ok()
                .and_then(|e| self.eval(&e))
                .ok_or_else(|| {
                    format!(
                        "step {:?} output {name:?}: {text} is not in the answer",
                        step.step_id
                    )
                })?;
            out.insert(name.clone(), value);
        }
        Ok(out)
    }
}
