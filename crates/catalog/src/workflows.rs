//! Arazzo 1.0 workflow documents (`services.<id>.workflows`) -> `catalog.workflows`.
//!
//! Rule: each step binds to one tool of its own service, as the reference does: by
//! `operationId` (the tool's operation id, optionally `$sourceDescriptions.<name>.<id>`, or the
//! reference's `METHOD /path`), or by `operationPath` (`METHOD /path`, or Arazzo's
//! `<source>#/paths/<escaped path>/<method>`). A step that binds to nothing fails the service's
//! source with the reference's message (`workflow "X" step "Y" references operationId "Z", but
//! no matching tool is available in the catalog`); so does anything outside the subset below,
//! named by the JSON path in the document. Only `info`, `sourceDescriptions`, `summary`,
//! `description` and `x-` extensions are read and not used.
//!
//! | member | supported |
//! |---|---|
//! | `workflows[].inputs` | a JSON Schema; `required` is enforced when a run starts |
//! | `steps[].parameters[]` | `{name, in: path\|query\|header\|cookie, value}`; the name must be one of the tool's (a step that leaves a path parameter out binds, as in the reference, but cannot run) |
//! | `steps[].requestBody` | `{contentType?: JSON, payload}` |
//! | `steps[].successCriteria[]` | `{condition, type?: simple}`, condition `<expression> <op> <literal>`, op one of `== != < <= > >=` |
//! | `steps[].outputs`, `workflows[].outputs` | name -> runtime expression |
//! | runtime expressions | `$inputs.<name>[#/pointer]`, `$steps.<id>.outputs.<name>`, `$statusCode`, `$response.body[#/pointer]`, whole or embedded as `{$...}` |
//!
//! Refused: `components`, `dependsOn`, `successActions`, `failureActions`, workflow-level
//! `parameters`, steps that run another workflow, `onSuccess`, `onFailure`, reusable
//! `reference`s, `replacements`, criteria of type `regex` / `jsonpath` / `xpath`, and every other
//! runtime expression (`$response.header.*`, `$request.*`, `$url`, ...). A `$steps` expression
//! must name an earlier step and one of its declared outputs; `$statusCode` and `$response`
//! are only meaningful once the step ran (its `successCriteria` and `outputs`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::model::{ParamLocation, StepParameter, SuccessCriterion, Tool, Workflow, WorkflowStep};

/// A runtime expression of the supported subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expression {
    /// `$inputs.<name>`, optionally `#/json/pointer` into it.
    Input {
        /// The input's name.
        name: String,
        /// RFC 6901 pointer into the input's value.
        pointer: Option<String>,
    },
    /// `$steps.<stepId>.outputs.<name>`.
    StepOutput {
        /// The earlier step.
        step_id: String,
        /// One of its outputs.
        name: String,
    },
    /// `$statusCode`: the upstream status of the step.
    Status,
    /// `$response.body`, optionally `#/json/pointer` into it.
    ResponseBody {
        /// RFC 6901 pointer into the response body.
        pointer: Option<String>,
    },
}

const SUPPORTED: &str = "$inputs.<name>, $steps.<id>.outputs.<name>, $statusCode, $response.body";

impl Expression {
    /// Parse one runtime expression (starting with `$`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let unsupported =
            || format!("runtime expression {text:?} is not supported (supported: {SUPPORTED})");
        let split_pointer = |rest: &str| -> Result<(String, Option<String>), String> {
            match rest.split_once('#') {
                None => Ok((rest.to_owned(), None)),
                Some((head, pointer)) if pointer.is_empty() || pointer.starts_with('/') => {
                    Ok((head.to_owned(), Some(pointer.to_owned())))
                }
                Some(_) => Err(format!(
                    "runtime expression {text:?}: a JSON pointer after '#' starts with '/'"
                )),
            }
        };
        if text == "$statusCode" {
            return Ok(Self::Status);
        }
        if let Some(rest) = text.strip_prefix("$response.body") {
            if rest.is_empty() {
                return Ok(Self::ResponseBody { pointer: None });
            }
            if rest.starts_with('#') {
                let (_, pointer) = split_pointer(rest)?;
                return Ok(Self::ResponseBody { pointer });
            }
            return Err(unsupported());
        }
        if let Some(rest) = text.strip_prefix("$inputs.") {
            let (name, pointer) = split_pointer(rest)?;
            if valid_name(&name) {
                return Ok(Self::Input { name, pointer });
            }
            return Err(unsupported());
        }
        if let Some(rest) = text.strip_prefix("$steps.") {
            if let Some((step_id, name)) = rest.split_once(".outputs.") {
                if valid_name(step_id) && valid_name(name) {
                    return Ok(Self::StepOutput {
                        step_id: step_id.to_owned(),
                        name: name.to_owned(),
                    });
                }
            }
        }
        Err(unsupported())
    }
}

/// Arazzo's id and output-name alphabet.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// One piece of a template string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text as written.
    Text(String),
    /// An embedded `{$...}` expression.
    Expr(Expression),
}

/// What a string value in a step means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StringValue {
    /// Taken as written.
    Literal,
    /// The whole string is one expression; its value keeps its JSON type.
    Whole(Expression),
    /// Text with `{$...}` expressions embedded; the result is a string.
    Template(Vec<Piece>),
}

impl StringValue {
    /// Classify a string: `$...` is an expression, text containing `{$` a template.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.starts_with('$') {
            return Expression::parse(text).map(Self::Whole);
        }
        if !text.contains("{$") {
            return Ok(Self::Literal);
        }
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{$") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 1..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("template {text:?}: '{{$' without a closing '}}'"))?;
            pieces.push(Piece::Expr(Expression::parse(&after[..end])?));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Self::Template(pieces))
    }

    /// The expressions the value uses.
    fn expressions(&self) -> Vec<&Expression> {
        match self {
            Self::Literal => Vec::new(),
            Self::Whole(e) => vec![e],
            Self::Template(pieces) => pieces
                .iter()
                .filter_map(|p| match p {
                    Piece::Expr(e) => Some(e),
                    Piece::Text(_) => None,
                })
                .collect(),
        }
    }
}

/// A comparison operator of a `simple` criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A parsed `simple` criterion: `<expression> <op> <literal>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The left side.
    pub left: Expression,
    /// The comparison.
    pub op: Op,
    /// The literal (JSON scalar; `'text'` is a string).
    pub right: Value,
}

impl Condition {
    /// Parse a condition such as `$statusCode == 201` or `$response.body#/status == 'open'`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let shape = || {
            format!(
                "condition {text:?} is not supported: write `<expression> <op> <literal>` with op \
                 one of == != < <= > >= (for example `$statusCode == 200`)"
            )
        };
        let text_trimmed = text.trim();
        let (left, rest) = text_trimmed
            .split_once(char::is_whitespace)
            .ok_or_else(shape)?;
        let rest = rest.trim_start();
        let ops = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        let (symbol, op) = ops
            .into_iter()
            .find(|(symbol, _)| rest.starts_with(symbol))
            .ok_or_else(shape)?;
        let literal = rest[symbol.len()..].trim();
        let right = match literal
            .strip_prefix('\'')
            .and_then(|l| l.strip_suffix('\''))
        {
            Some(inner) => Value::String(inner.to_owned()),
            None => match serde_json::from_str::<Value>(literal) {
                Ok(
                    value @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_)),
                ) => value,
                _ => return Err(shape()),
            },
        };
        Ok(Self {
            left: Expression::parse(left)?,
            op,
            right,
        })
    }

    /// Whether the condition holds for the left side's value (`None`: it has none, so only
    /// `!=` holds). Numbers compare as numbers, strings as strings; nothing else is ordered.
    pub fn holds(&self, left: Option<&Value>) -> bool {
        let Some(left) = left else {
            return self.op == Op::Ne;
        };
        let ordering = match (left, &self.right) {
            (Value::Number(a), Value::Number(b)) => a
                .as_f64()
                .zip(b.as_f64())
                .and_then(|(a, b)| a.partial_cmp(&b)),
            (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
            (a, b) if a == b => Some(std::cmp::Ordering::Equal),
            _ => None,
        };
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self.op {
            Op::Eq => ordering == Some(Equal),
            Op::Ne => ordering != Some(Equal),
            Op::Lt => ordering == Some(Less),
            Op::Le => matches!(ordering, Some(Less | Equal)),
            Op::Gt => ordering == Some(Greater),
            Op::Ge => matches!(ordering, Some(Greater | Equal)),
        }
    }
}

/// A JSON path into the document, for messages (`$.workflows[0].steps[1]`).
#[derive(Clone)]
struct At(String);

impl At {
    fn key(&self, key: &str) -> At {
        At(format!("{}.{key}", self.0))
    }
    fn index(&self, i: usize) -> At {
        At(format!("{}[{i}]", self.0))
    }
    fn err<T>(&self, message: impl std::fmt::Display) -> Result<T, String> {
        Err(format!("{}: {message}", self.0))
    }
}

fn object<'v>(value: &'v Value, at: &At) -> Result<&'v Map<String, Value>, String> {
    value
        .as_object()
        .map_or_else(|| at.err("expected an object"), Ok)
}

fn string<'v>(map: &'v Map<String, Value>, key: &str, at: &At) -> Result<Option<&'v str>, String> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s)),
        Some(_) => at.key(key).err("expected a non-empty string"),
    }
}

fn required<'v>(map: &'v Map<String, Value>, key: &str, at: &At) -> Result<&'v str, String> {
    string(map, key, at)?.map_or_else(|| at.key(key).err("is required"), Ok)
}

/// Refuse members outside `allowed` (and `x-` extensions), naming the first one.
fn only(map: &Map<String, Value>, allowed: &[&str], at: &At, what: &str) -> Result<(), String> {
    match map
        .keys()
        .find(|k| !k.starts_with("x-") && !allowed.contains(&k.as_str()))
    {
        Some(key) => at.key(key).err(format!(
            "is not supported in {what} (supported: {})",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

/// Parse, check and bind one workflow document against its service's tools.
pub(crate) fn load(bytes: &[u8], tools: &[Tool]) -> Result<Vec<Workflow>, String> {
    // YAML 1.2 is a superset of JSON, so one parser reads both.
    let doc: Value = serde_yaml_ng::from_slice(bytes)
        .map_err(|e| format!("not a YAML or JSON document: {e}"))?;
    let root = At("$".to_owned());
    let map = object(&doc, &root)?;
    only(
        map,
        &["arazzo", "info", "sourceDescriptions", "workflows"],
        &root,
        "an Arazzo document",
    )?;
    let version = required(map, "arazzo", &root)?;
    if !version.starts_with("1.0.") {
        return root
            .key("arazzo")
            .err(format!("version {version:?} is not supported (1.0.x)"));
    }
    let at = root.key("workflows");
    let list = match map.get("workflows") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        _ => return at.err("expected a non-empty array of workflows"),
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, flow) in list.iter().enumerate() {
        let workflow = workflow(flow, &at.index(i), tools)?;
        if !seen.insert(workflow.workflow_id.clone()) {
            return at.index(i).key("workflowId").err(format!(
                "workflow id {:?} is used twice",
                workflow.workflow_id
            ));
        }
        out.push(workflow);
    }
    Ok(out)
}

fn workflow(value: &Value, at: &At, tools: &[Tool]) -> Result<Workflow, String> {
    let map = object(value, at)?;
    only(
        map,
        &[
            "workflowId",
            "summary",
            "description",
            "inputs",
            "steps",
            "outputs",
        ],
        at,
        "a workflow",
    )?;
    let workflow_id = required(map, "workflowId", at)?.to_owned();
    if !valid_name(&workflow_id) {
        return at
            .key("workflowId")
            .err("use letters, digits, '.', '-', '_'");
    }
    let inputs = match map.get("inputs") {
        None => None,
        Some(schema @ Value::Object(_)) => Some(schema.clone()),
        Some(_) => return at.key("inputs").err("expected a JSON Schema object"),
    };
    let declared: Option<BTreeSet<String>> = inputs
        .as_ref()
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect());
    let steps_at = at.key("steps");
    let list = match map.get("steps") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        _ => return steps_at.err("expected a non-empty array of steps"),
    };
    let mut scope = Scope {
        inputs: declared,
        outputs: BTreeMap::new(),
    };
    let mut steps = Vec::with_capacity(list.len());
    for (i, step_value) in list.iter().enumerate() {
        let step = step(&workflow_id, step_value, &steps_at.index(i), tools, &scope)?;
        if scope.outputs.contains_key(&step.step_id) {
            return steps_at
                .index(i)
                .key("stepId")
                .err(format!("step id {:?} is used twice", step.step_id));
        }
        scope
            .outputs
            .insert(step.step_id.clone(), step.outputs.keys().cloned().collect());
        steps.push(step);
    }
    let outputs = outputs(map, at, &scope, false)?;
    Ok(Workflow {
        workflow_id,
        inputs,
        steps,
        outputs,
    })
}

/// What expressions may name at a point of the workflow.
struct Scope {
    /// The declared input names (`None`: the inputs schema lists no properties).
    inputs: Option<BTreeSet<String>>,
    /// Earlier steps and their output names.
    outputs: BTreeMap<String, BTreeSet<String>>,
}

impl Scope {
    /// Check that `expr` names something that exists here; `response`: the step has run.
    fn check(&self, expr: &Expression, at: &At, response: bool) -> Result<(), String> {
        match expr {
            Expression::Input { name, .. } => match &self.inputs {
                Some(declared) if !declared.contains(name) => {
                    at.err(format!("$inputs.{name}: the workflow declares no input {name:?}"))
                }
                _ => Ok(()),
            },
            Expression::StepOutput { step_id, name } => match self.outputs.get(step_id) {
                None => at.err(format!(
                    "$steps.{step_id}: no earlier step has the id {step_id:?}"
                )),
                Some(names) if !names.contains(name) => at.err(format!(
                    "$steps.{step_id}.outputs.{name}: step {step_id:?} declares no output {name:?}"
                )),
                Some(_) => Ok(()),
            },
            Expression::Status | Expression::ResponseBody { .. } if !response => at.err(
                "$statusCode and $response are only known after the step ran (successCriteria, outputs)",
            ),
            Expression::Status | Expression::ResponseBody { .. } => Ok(()),
        }
    }

    /// Check every expression inside a JSON value (strings anywhere in it).
    fn check_value(&self, value: &Value, at: &At) -> Result<(), String> {
        match value {
            Value::String(s) => {
                let parsed = StringValue::parse(s).or_else(|e| at.err(e))?;
                for expr in parsed.expressions() {
                    self.check(expr, at, false)?;
                }
                Ok(())
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| self.check_value(v, &at.index(i))),
            Value::Object(map) => map
                .iter()
                .try_for_each(|(k, v)| self.check_value(v, &at.key(k))),
            _ => Ok(()),
        }
    }
}

fn outputs(
    map: &Map<String, Value>,
    at: &At,
    scope: &Scope,
    response: bool,
) -> Result<BTreeMap<String, String>, String> {
    let at = at.key("outputs");
    let Some(value) = map.get("outputs") else {
        return Ok(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    for (name, expr) in object(value, &at)? {
        let here = at.key(name);
        if !valid_name(name) {
            return here.err("an output name uses letters, digits, '.', '-', '_'");
        }
        let Some(text) = expr.as_str() else {
            return here.err("expected a runtime expression");
        };
        let parsed = Expression::parse(text).or_else(|e| here.err(e))?;
        scope.check(&parsed, &here, response)?;
        out.insert(name.clone(), text.to_owned());
    }
    Ok(out)
}

fn step(
    workflow_id: &str,
    value: &Value,
    at: &At,
    tools: &[Tool],
    scope: &Scope,
) -> Result<WorkflowStep, String> {
    let map = object(value, at)?;
    if map.contains_key("workflowId") {
        return at
            .key("workflowId")
            .err("a step that runs another workflow is not supported");
    }
    only(
        map,
        &[
            "stepId",
            "description",
            "operationId",
            "operationPath",
            "parameters",
            "requestBody",
            "successCriteria",
            "outputs",
        ],
        at,
        "a step",
    )?;
    let step_id = required(map, "stepId", at)?.to_owned();
    if !valid_name(&step_id) {
        return at.key("stepId").err("use letters, digits, '.', '-', '_'");
    }
    let tool = bind(workflow_id, &step_id, map, at, tools)?;
    let parameters = parameters(map, at, tool, scope)?;
    let request_body = match map.get("requestBody") {
        None => None,
        Some(body) => {
            let body_at = at.key("requestBody");
            let body_map = object(body, &body_at)?;
            only(
                body_map,
                &["contentType", "payload"],
                &body_at,
                "a requestBody",
            )?;
            if let Some(kind) = string(body_map, "contentType", &body_at)? {
                let media = kind.split(';').next().unwrap_or_default().trim();
                if media != "application/json" && !media.ends_with("+json") {
                    return body_at
                        .key("contentType")
                        .err(format!("{kind:?}: only JSON request bodies are supported"));
                }
            }
            let payload = body_map
                .get("payload")
                .map_or_else(|| body_at.key("payload").err("is required"), Ok)?;
            scope.check_value(payload, &body_at.key("payload"))?;
            Some(payload.clone())
        }
    };
    let mut success_criteria = Vec::new();
    if let Some(list) = map.get("successCriteria") {
        let list_at = at.key("successCriteria");
        let Some(list) = list.as_array() else {
            return list_at.err("expected an array of criteria");
        };
        for (i, criterion) in list.iter().enumerate() {
            let here = list_at.index(i);
            let criterion = object(criterion, &here)?;
            only(criterion, &["condition", "type"], &here, "a criterion")?;
            match criterion.get("type") {
                None => {}
                Some(Value::String(kind)) if kind == "simple" => {}
                Some(other) => {
                    return here
                        .key("type")
                        .err(format!("{other}: only simple criteria are supported"))
                }
            }
            let condition = required(criterion, "condition", &here)?;
            let parsed = Condition::parse(condition).or_else(|e| here.key("condition").err(e))?;
            scope.check(&parsed.left, &here.key("condition"), true)?;
            success_criteria.push(SuccessCriterion {
                condition: condition.to_owned(),
            });
        }
    }
    let outputs = outputs(map, at, scope, true)?;
    Ok(WorkflowStep {
        step_id,
        tool_id: tool.id.clone(),
        parameters,
        request_body,
        success_criteria,
        outputs,
    })
}

fn parameters(
    map: &Map<String, Value>,
    at: &At,
    tool: &Tool,
    scope: &Scope,
) -> Result<Vec<StepParameter>, String> {
    let list_at = at.key("parameters");
    let list = match map.get("parameters") {
        None => &Vec::new(),
        Some(Value::Array(list)) => list,
        Some(_) => return list_at.err("expected an array of parameters"),
    };
    let mut out: Vec<StepParameter> = Vec::with_capacity(list.len());
    for (i, parameter) in list.iter().enumerate() {
        let here = list_at.index(i);
        let parameter = object(parameter, &here)?;
        if parameter.contains_key("reference") {
            return here
                .key("reference")
                .err("reusable parameters (components) are not supported");
        }
        only(parameter, &["name", "in", "value"], &here, "a parameter")?;
        let name = required(parameter, "name", &here)?;
        let location = match required(parameter, "in", &here)? {
            "path" => ParamLocation::Path,
            "query" => ParamLocation::Query,
            "header" => ParamLocation::Header,
            "cookie" => ParamLocation::Cookie,
            other => {
                return here
                    .key("in")
                    .err(format!("{other:?}: expected path, query, header or cookie"))
            }
        };
        let known = tool
            .path_params
            .iter()
            .chain(&tool.flags)
            .any(|p| p.location == location && (p.original_name == name || p.name == name));
        if !known {
            let names: Vec<&str> = tool
                .path_params
                .iter()
                .chain(&tool.flags)
                .map(|p| p.original_name.as_str())
                .collect();
            return here.key("name").err(format!(
                "tool {} has no {} parameter {name:?} (its parameters: {})",
                tool.id,
                location_name(location),
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ));
        }
        if out.iter().any(|p| p.name == name && p.location == location) {
            return here
                .key("name")
                .err(format!("parameter {name:?} is given twice"));
        }
        let value = parameter
            .get("value")
            .map_or_else(|| here.key("value").err("is required"), Ok)?;
        if matches!(value, Value::Object(_) | Value::Array(_) | Value::Null) {
            return here
                .key("value")
                .err("expected a string, number, boolean or runtime expression");
        }
        scope.check_value(value, &here.key("value"))?;
        out.push(StepParameter {
            name: name.to_owned(),
            location,
            value: value.clone(),
        });
    }
    Ok(out)
}

fn location_name(location: ParamLocation) -> &'static str {
    match location {
        ParamLocation::Path => "path",
        ParamLocation::Query => "query",
        ParamLocation::Header => "header",
        ParamLocation::Cookie => "cookie",
    }
}

/// `METHOD /path` -> (method, path).
fn method_path(raw: &str) -> Option<(&str, &str)> {
    let (method, path) = raw.trim().split_once(' ')?;
    let path = path.trim();
    (!method.is_empty() && method.bytes().all(|b| b.is_ascii_alphabetic()) && path.starts_with('/'))
        .then_some((method, path))
}

/// `<source>#/paths/<escaped path>/<method>` -> (method, path).
fn pointer_path(raw: &str) -> Option<(String, String)> {
    let pointer = raw.split_once('#')?.1.strip_prefix("/paths/")?;
    let (escaped, method) = pointer.split_once('/')?;
    let path = escaped.replace("~1", "/").replace("~0", "~");
    Some((method.to_owned(), path))
}

/// The tool a step names (contract 4.2).
fn bind<'t>(
    workflow_id: &str,
    step_id: &str,
    map: &Map<String, Value>,
    at: &At,
    tools: &'t [Tool],
) -> Result<&'t Tool, String> {
    let by_path = |method: &str, path: &str| {
        tools
            .iter()
            .find(|t| t.method.eq_ignore_ascii_case(method) && t.path == path)
    };
    let operation_id = string(map, "operationId", at)?;
    let operation_path = string(map, "operationPath", at)?;
    let (found, label) = match (operation_id, operation_path) {
        (Some(_), Some(_)) => {
            return at.err("give operationId or operationPath, not both");
        }
        (None, None) => return at.err("operationId or operationPath is required"),
        (Some(raw), None) => {
            let found = match method_path(raw) {
                Some((method, path)) => by_path(method, path),
                None => {
                    let id = raw
                        .strip_prefix("$sourceDescriptions.")
                        .map_or(raw, |q| q.split_once('.').map_or(q, |(_, id)| id));
                    tools.iter().find(|t| t.operation_id == id)
                }
            };
            (found, format!("operationId {raw:?}"))
        }
        (None, Some(raw)) => {
            let found = match method_path(raw) {
                Some((method, path)) => by_path(method, path),
                None => pointer_path(raw).and_then(|(method, path)| by_path(&method, &path)),
            };
            (found, format!("operationPath {raw:?}"))
        }
    };
    found.map_or_else(
        || {
            at.err(format!(
                "workflow {workflow_id:?} step {step_id:?} references {label}, but no matching \
                 tool is available in the catalog"
            ))
        },
        Ok,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Parameter;

    fn tools() -> Vec<Tool> {
        let param = |name: &str, location| Parameter {
            name: name.to_owned(),
            original_name: name.to_owned(),
            location,
            required: true,
        };
        vec![
            Tool {
                id: "t:listTickets".into(),
                operation_id: "listTickets".into(),
                method: "GET".into(),
                path: "/tickets".into(),
                flags: vec![param("status", ParamLocation::Query)],
                ..Tool::default()
            },
            Tool {
                id: "t:getTicket".into(),
                operation_id: "getTicket".into(),
                method: "GET".into(),
                path: "/tickets/{id}".into(),
                path_params: vec![param("id", ParamLocation::Path)],
                ..Tool::default()
            },
        ]
    }

    fn load_yaml(text: &str) -> Result<Vec<Workflow>, String> {
        load(text.as_bytes(), &tools())
    }

    #[test]
    fn steps_bind_by_operation_id_method_path_and_pointer() {
        let flows = load_yaml(
            "arazzo: 1.0.0\ninfo: {title: t, version: '1'}\nworkflows:\n- workflowId: w\n  steps:\n  \
             - {stepId: a, operationId: listTickets}\n  - {stepId: b, operationPath: 'GET /tickets'}\n  \
             - {stepId: c, operationPath: '{$sourceDescriptions.t.url}#/paths/~1tickets/get'}\n  \
             - {stepId: d, operationId: '$sourceDescriptions.t.listTickets'}\n",
        )
        .unwrap();
        let ids: Vec<&str> = flows[0].steps.iter().map(|s| s.tool_id.as_str()).collect();
        assert_eq!(ids, ["t:listTickets"; 4]);
    }

    #[test]
    fn an_unbound_step_is_named_like_the_reference_does() {
        let err = load_yaml(
            "arazzo: 1.0.0\nworkflows:\n- workflowId: w\n  steps:\n  - {stepId: gone, operationId: deleteTicket}\n",
        )
        .unwrap_err();
        assert_eq!(
            err,
            "$.workflows[0].steps[0]: workflow \"w\" step \"gone\" references operationId \
             \"deleteTicket\", but no matching tool is available in the catalog"
        );
    }

    #[test]
    fn unsupported_members_and_bad_references_are_refused_with_their_path() {
        let cases = [
            ("- {stepId: a, operationId: listTickets, onFailure: []}", "$.workflows[0].steps[0].onFailure: is not supported"),
            ("- {stepId: a, workflowId: other}", "$.workflows[0].steps[0].workflowId: a step that runs another workflow"),
            ("- {stepId: a, operationId: getTicket, parameters: [{name: id, in: path, value: '$steps.x.outputs.id'}]}", "$.workflows[0].steps[0].parameters[0].value: $steps.x: no earlier step"),
            ("- {stepId: a, operationId: getTicket, parameters: [{name: id, in: path, value: '$response.header.Location'}]}", "is not supported (supported:"),
            ("- {stepId: a, operationId: listTickets, parameters: [{name: state, in: query, value: open}]}", "tool t:listTickets has no query parameter \"state\""),
            ("- {stepId: a, operationId: listTickets, successCriteria: [{condition: '$.x', type: jsonpath}]}", "only simple criteria"),
            ("- {stepId: a, operationId: listTickets, successCriteria: [{condition: 'statusCode is fine'}]}", "successCriteria[0].condition"),
            ("- {stepId: a, operationId: listTickets, outputs: {n: '$statusCode'}}\n  - {stepId: a, operationId: listTickets}", "step id \"a\" is used twice"),
        ];
        for (steps, expected) in cases {
            let doc = format!("arazzo: 1.0.0\nworkflows:\n- workflowId: w\n  steps:\n  {steps}\n");
            let err = load_yaml(&doc).unwrap_err();
            assert!(err.contains(expected), "{steps}: {err}");
        }
        assert!(load_yaml("workflows: []")
            .unwrap_err()
            .starts_with("$.arazzo: is required"));
        assert!(load_yaml("arazzo: 2.0.0\nworkflows: []")
            .unwrap_err()
            .contains("not supported"));
        assert!(load_yaml("arazzo: 1.0.0\nworkflows: {}")
            .unwrap_err()
            .starts_with("$.workflows:"));
        assert!(load_yaml("arazzo: 1.0.0\ncomponents: {}\nworkflows: []")
            .unwrap_err()
            .starts_with("$.components:"));
        assert!(load_yaml(": [")
            .unwrap_err()
            .starts_with("not a YAML or JSON document"));
    }

    #[test]
    fn outputs_flow_into_later_steps_only() {
        let flows = load_yaml(
            "arazzo: 1.0.0\nworkflows:\n- workflowId: w\n  inputs: {type: object, properties: {state: {type: string}}}\n  steps:\n  \
             - stepId: a\n    operationId: listTickets\n    parameters: [{name: status, in: query, value: '$inputs.state'}]\n    \
             successCriteria: [{condition: '$statusCode == 200'}]\n    outputs: {first: '$response.body#/0/id'}\n  \
             - stepId: b\n    operationId: getTicket\n    parameters: [{name: id, in: path, value: 'T-{$steps.a.outputs.first}'}]\n  \
             outputs: {ticket: '$steps.a.outputs.first'}\n",
        )
        .unwrap();
        assert_eq!(
            flows[0].steps[1].parameters[0].value,
            "T-{$steps.a.outputs.first}"
        );
        let undeclared = load_yaml(
            "arazzo: 1.0.0\nworkflows:\n- workflowId: w\n  inputs: {type: object, properties: {}}\n  steps:\n  \
             - {stepId: a, operationId: listTickets, parameters: [{name: status, in: query, value: '$inputs.state'}]}\n",
        )
        .unwrap_err();
        assert!(
            undeclared.contains("declares no input \"state\""),
            "{undeclared}"
        );
    }

    #[test]
    fn conditions_compare_numbers_and_strings() {
        let c = Condition::parse("$statusCode >= 200").unwrap();
        assert!(c.holds(Some(&Value::from(201))));
        assert!(!c.holds(Some(&Value::from(199))));
        assert!(!c.holds(None));
        let c = Condition::parse("$response.body#/status == 'open'").unwrap();
        assert!(c.holds(Some(&Value::from("open"))));
        assert!(!c.holds(Some(&Value::from(1))));
        assert!(Condition::parse("$statusCode ~ 1").is_err());
        assert!(Condition::parse("$statusCode == {}").is_err());
    }
}
