//! A fake GitHub REST API on `127.0.0.1:0` for tests: stateful (deployments, statuses, issue
//! comments, workflow runs, pull requests), and strict. Every request is matched against
//! `shared/github-api/openapi-subset.json` (method and path template, path and query parameters,
//! JSON body) and every response it sends is checked against the declared response schema;
//! mismatches are recorded as violations that tests assert empty. Request bodies are recorded so
//! tests can check no secret reaches the API. Faults (5xx, rate limits) can be queued. Dropping
//! the fake with violations nobody took fails the test.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

/// The shared reference folder (`shared/`) beside the checkout: the nearest ancestor of the
/// repository that holds it (the main checkout and worktrees alike).
pub fn shared_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join("shared"))
        .find(|dir| dir.join("github-api/openapi-subset.json").is_file())
        .unwrap_or_else(|| manifest.join("../../../shared"))
}

/// Where the API description lives (the shared reference folder next to the repository).
pub fn openapi_path() -> PathBuf {
    shared_dir().join("github-api/openapi-subset.json")
}

/// The webhook payloads of shared/github-events.
pub fn event_file(name: &str) -> PathBuf {
    shared_dir().join("github-events").join(name)
}

// ---------------------------------------------------------------------------------------------
// The OpenAPI subset and a validator for the JSON Schema dialect it uses.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    Param { name: String, multi: bool },
}

#[derive(Debug, Clone)]
struct Param {
    name: String,
    location: String,
    required: bool,
    schema: Value,
}

/// One operation of the description.
#[derive(Debug, Clone)]
pub struct Operation {
    pub id: String,
    pub method: String,
    pub template: String,
    segments: Vec<Segment>,
    params: Vec<Param>,
    body_required: bool,
    body_schema: Option<Value>,
    responses: Value,
}

/// The parsed description with its operations.
#[derive(Debug)]
pub struct Spec {
    doc: Value,
    operations: Vec<Operation>,
}

/// The loaded description, shared by every fake in the process.
pub fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = openapi_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        Spec::parse(serde_json::from_str(&text).expect("openapi-subset.json is JSON"))
    })
}

impl Spec {
    fn parse(doc: Value) -> Self {
        let mut operations = Vec::new();
        let paths = doc["paths"].as_object().expect("paths").clone();
        for (template, item) in &paths {
            let item = item.as_object().expect("path item");
            let shared: Vec<Value> = item
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (method, op) in item {
                if method == "parameters" || !op.is_object() {
                    continue;
                }
                let mut params = Vec::new();
                let declared = op["parameters"].as_array().cloned().unwrap_or_default();
                for raw in shared.iter().chain(declared.iter()) {
                    let p = resolve(&doc, raw);
                    params.push(Param {
                        name: p["name"].as_str().expect("param name").to_owned(),
                        location: p["in"].as_str().expect("param in").to_owned(),
                        required: p["required"].as_bool().unwrap_or(false),
                        schema: p["schema"].clone(),
                    });
                }
                let segments = template
                    .trim_start_matches('/')
                    .split('/')
                    .map(
                        |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                            Some(name) => {
                                let multi = params
                                    .iter()
                                    .any(|p| p.name == name && p.location == "path")
                                    && op["parameters"]
                                        .as_array()
                                        .into_iter()
                                        .flatten()
                                        .map(|raw| resolve(&doc, raw))
                                        .any(|p| {
                                            p["name"] == name
                                                && p["x-multi-segment"] == Value::Bool(true)
                                        });
                                Segment::Param {
                                    name: name.to_owned(),
                                    multi,
                                }
                            }
                            None => Segment::Literal(s.to_owned()),
                        },
                    )
                    .collect();
                let body = op.get("requestBody").map(|b| resolve(&doc, b).clone());
                operations.push(Operation {
                    id: op["operationId"].as_str().expect("operationId").to_owned(),
                    method: method.to_uppercase(),
                    template: template.clone(),
                    segments,
                    params,
                    body_required: body
                        .as_ref()
                        .is_some_and(|b| b["required"].as_bool().unwrap_or(false)),
                    body_schema: body
                        .as_ref()
                        .map(|b| b["content"]["application/json"]["schema"].clone())
                        .filter(|s| !s.is_null()),
                    responses: op["responses"].clone(),
                });
            }
        }
        Self { doc, operations }
    }

    /// An example from `components/examples`.
    pub fn example(&self, name: &str) -> Value {
        self.doc["components"]["examples"][name]["value"].clone()
    }

    /// The operations, for coverage checks.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// The operation with this id.
    pub fn operation(&self, id: &str) -> Option<&Operation> {
        self.operations.iter().find(|op| op.id == id)
    }

    /// A reference to a component schema, to validate against.
    pub fn component_schema(name: &str) -> Value {
        json!({ "$ref": format!("#/components/schemas/{name}") })
    }

    /// The JSON request body schema of an operation.
    pub fn request_schema(&self, operation_id: &str) -> Option<&Value> {
        self.operation(operation_id)?.body_schema.as_ref()
    }

    /// The JSON schema of a response of an operation.
    pub fn response_schema_of(&self, operation_id: &str, status: u16) -> Option<&Value> {
        self.response_schema(self.operation(operation_id)?, status)
    }

    /// The example values a response of an operation documents (`$ref`s resolved).
    pub fn response_examples(&self, operation_id: &str, status: u16) -> Vec<(String, Value)> {
        let Some(op) = self.operation(operation_id) else {
            return Vec::new();
        };
        let Some(response) = op.responses.get(status.to_string()) else {
            return Vec::new();
        };
        let response = resolve(&self.doc, response);
        response["content"]["application/json"]["examples"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, example)| (name.clone(), resolve(&self.doc, example)["value"].clone()))
            .filter(|(_, value)| !value.is_null())
            .collect()
    }

    /// The operation id and decoded path parameters for a method and path, or why none matches.
    pub fn match_route(
        &self,
        method: &str,
        path: &str,
    ) -> Result<(String, BTreeMap<String, String>), String> {
        self.route(method, path)
            .map(|(op, params)| (op.id.clone(), params))
    }

    /// Finds the operation for a method and path; returns it with its decoded path parameters.
    /// A path that matches a template under another method is reported as such.
    fn route(
        &self,
        method: &str,
        path: &str,
    ) -> Result<(&Operation, BTreeMap<String, String>), String> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut other_methods = Vec::new();
        let mut best: Option<(&Operation, BTreeMap<String, String>, usize)> = None;
        for op in &self.operations {
            let Some(params) = match_template(&op.segments, &parts) else {
                continue;
            };
            if op.method != method {
                other_methods.push(op.method.clone());
                continue;
            }
            let literals = op
                .segments
                .iter()
                .filter(|s| matches!(s, Segment::Literal(_)))
                .count();
            if best.as_ref().is_none_or(|(_, _, l)| literals > *l) {
                best = Some((op, params, literals));
            }
        }
        match best {
            Some((op, params, _)) => Ok((op, params)),
            None if !other_methods.is_empty() => Err(format!(
                "{method} {path}: method not in the description (it has {})",
                other_methods.join(", ")
            )),
            None => Err(format!(
                "{method} {path}: no operation in the description matches"
            )),
        }
    }

    /// Validates `value` against `schema`, appending messages with JSON paths to `errors`.
    pub fn validate(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        self.check(schema, value, at, errors, false);
    }

    /// Like [`Spec::validate`], but a value matching several `oneOf` branches passes: GitHub's
    /// response schemas have overlapping branches (e.g. two error shapes for 409).
    pub fn validate_response(
        &self,
        schema: &Value,
        value: &Value,
        at: &str,
        errors: &mut Vec<String>,
    ) {
        self.check(schema, value, at, errors, true);
    }

    fn check(
        &self,
        schema: &Value,
        value: &Value,
        at: &str,
        errors: &mut Vec<String>,
        lenient: bool,
    ) {
        let schema = resolve(&self.doc, schema);
        let Some(obj) = schema.as_object() else {
            return;
        };
        if value.is_null() {
            if obj.get("nullable") == Some(&Value::Bool(true)) {
                return;
            }
            if obj.contains_key("type") {
                errors.push(format!("{at}: null is not allowed"));
                return;
            }
        }
        if let Some(options) = obj.get("enum").and_then(Value::as_array)
            && !options.contains(value)
        {
            errors.push(format!(
                "{at}: {value} is not one of {}",
                Value::Array(options.clone())
            ));
        }
        if let Some(ty) = obj.get("type").and_then(Value::as_str) {
            let ok = match ty {
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                "array" => value.is_array(),
                "object" => value.is_object(),
                _ => true,
            };
            if !ok {
                errors.push(format!("{at}: expected {ty}, got {}", kind(value)));
                return;
            }
        }
        if let Some(s) = value.as_str() {
            let len = s.chars().count();
            if let Some(max) = obj.get("maxLength").and_then(Value::as_u64)
                && len as u64 > max
            {
                errors.push(format!("{at}: string longer than {max}"));
            }
            if let Some(min) = obj.get("minLength").and_then(Value::as_u64)
                && (len as u64) < min
            {
                errors.push(format!("{at}: string shorter than {min}"));
            }
            if obj.get("format").and_then(Value::as_str) == Some("date-time") && !is_date_time(s) {
                errors.push(format!("{at}: {s:?} is not a date-time"));
            }
        }
        if let Some(items) = value.as_array() {
            if let Some(max) = obj.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                errors.push(format!("{at}: more than {max} items"));
            }
            if let Some(item_schema) = obj.get("items") {
                for (i, item) in items.iter().enumerate() {
                    self.check(item_schema, item, &format!("{at}[{i}]"), errors, lenient);
                }
            }
        }
        if let Some(map) = value.as_object() {
            self.validate_object(obj, map, at, errors, lenient);
        }
        if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.check(sub, value, at, errors, lenient);
            }
        }
        if let Some(any) = obj.get("anyOf").and_then(Value::as_array)
            && !any.iter().any(|sub| self.is_valid(sub, value, lenient))
        {
            errors.push(format!("{at}: matches none of anyOf"));
        }
        if let Some(one) = obj.get("oneOf").and_then(Value::as_array) {
            let matching = one
                .iter()
                .filter(|sub| self.is_valid(sub, value, lenient))
                .count();
            if matching != 1 && !(lenient && matching > 1) {
                errors.push(format!(
                    "{at}: matches {matching} of oneOf (exactly one required)"
                ));
            }
        }
    }

    fn validate_object(
        &self,
        obj: &Map<String, Value>,
        map: &Map<String, Value>,
        at: &str,
        errors: &mut Vec<String>,
        lenient: bool,
    ) {
        if let Some(required) = obj.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(name) {
                    errors.push(format!("{at}: required property `{name}` is missing"));
                }
            }
        }
        if let Some(max) = obj.get("maxProperties").and_then(Value::as_u64)
            && map.len() as u64 > max
        {
            errors.push(format!("{at}: more than {max} properties"));
        }
        let properties = obj.get("properties").and_then(Value::as_object);
        for (key, item) in map {
            let child = format!("{at}.{key}");
            if let Some(prop) = properties.and_then(|p| p.get(key)) {
                self.check(prop, item, &child, errors, lenient);
            } else {
                match obj.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        errors.push(format!("{at}: unknown property `{key}`"));
                    }
                    Some(extra @ Value::Object(_)) => {
                        self.check(extra, item, &child, errors, lenient);
                    }
                    _ => {}
                }
            }
        }
    }

    fn is_valid(&self, schema: &Value, value: &Value, lenient: bool) -> bool {
        let mut errors = Vec::new();
        self.check(schema, value, "$", &mut errors, lenient);
        errors.is_empty()
    }

    /// The JSON schema of a response status of an operation, if it declares a JSON body.
    fn response_schema<'a>(&'a self, op: &'a Operation, status: u16) -> Option<&'a Value> {
        let response = op.responses.get(status.to_string())?;
        let response = resolve(&self.doc, response);
        response
            .get("content")?
            .get("application/json")?
            .get("schema")
            .filter(|s| s.as_object().is_some_and(|o| !o.is_empty()))
    }
}

fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    let mut current = value;
    for _ in 0..16 {
        match current.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference.strip_prefix('#').expect("local $ref");
                current = doc
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("unresolved $ref {reference}"));
            }
            None => return current,
        }
    }
    panic!("$ref chain too long")
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b't')
        && b[13] == b':'
        && b[16] == b':'
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
        && (s.ends_with('Z') || s.ends_with('z') || s[19..].contains(['+', '-']))
}

fn match_template(segments: &[Segment], parts: &[&str]) -> Option<BTreeMap<String, String>> {
    let mut params = BTreeMap::new();
    let mut i = 0;
    for (n, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Literal(lit) => {
                if parts.get(i)? != lit {
                    return None;
                }
                i += 1;
            }
            Segment::Param { name, multi } => {
                let remaining_literals = segments.len() - n - 1;
                let take = if *multi {
                    parts.len().checked_sub(i + remaining_literals)?
                } else {
                    1
                };
                if take == 0 || i + take > parts.len() {
                    return None;
                }
                let raw = parts[i..i + take].join("/");
                if raw.is_empty() {
                    return None;
                }
                params.insert(name.clone(), percent_decode(&raw));
                i += take;
            }
        }
    }
    (i == parts.len()).then_some(params)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            let v = hi * 16 + lo;
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(pair), String::new()),
        })
        .collect()
}

/// Turns a path or query string into the JSON value its schema describes.
fn coerce(spec: &Spec, schema: &Value, raw: &str) -> Value {
    let schema = resolve(&spec.doc, schema);
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        for option in options {
            let value = coerce(spec, option, raw);
            if spec.is_valid(option, &value, false) {
                return value;
            }
        }
        return Value::String(raw.to_owned());
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => raw
            .parse::<i64>()
            .map_or_else(|_| Value::String(raw.to_owned()), Value::from),
        Some("boolean") => match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(raw.to_owned()),
        },
        _ => Value::String(raw.to_owned()),
    }
}

// ---------------------------------------------------------------------------------------------
// The fake server.
// ---------------------------------------------------------------------------------------------

/// A request as the fake received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub operation_id: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub status: u16,
}

/// A canned failure answered instead of the real handler.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Only requests of this operation take the fault; `None` means the next request.
    pub operation_id: Option<String>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Fault {
    /// `502 Bad Gateway` for the next request of `operation_id`.
    pub fn bad_gateway(operation_id: &str) -> Self {
        Self {
            operation_id: Some(operation_id.to_owned()),
            status: 502,
            headers: Vec::new(),
            body: json!({"message": "Server Error"}),
        }
    }

    /// A secondary rate limit (403 with `Retry-After`).
    pub fn secondary_rate_limit(operation_id: &str, retry_after_secs: u64) -> Self {
        Self {
            operation_id: Some(operation_id.to_owned()),
            status: 403,
            headers: vec![("retry-after".to_owned(), retry_after_secs.to_string())],
            body: json!({
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
            }),
        }
    }

    /// A primary rate limit (429 with `x-ratelimit-remaining: 0` and a reset time).
    pub fn rate_limited(operation_id: &str, reset_epoch_secs: u64) -> Self {
        Self {
            operation_id: Some(operation_id.to_owned()),
            status: 429,
            headers: vec![
                ("x-ratelimit-remaining".to_owned(), "0".to_owned()),
                ("x-ratelimit-reset".to_owned(), reset_epoch_secs.to_string()),
            ],
            body: json!({"message": "API rate limit exceeded", "documentation_url": "https://docs.github.com/rest"}),
        }
    }

    /// Any status with a `basic-error` body.
    pub fn status(operation_id: &str, status: u16, message: &str) -> Self {
        Self {
            operation_id: Some(operation_id.to_owned()),
            status,
            headers: Vec::new(),
            body: json!({"message": message, "documentation_url": "https://docs.github.com/rest"}),
        }
    }
}

/// A workflow run the fake knows (for stale-lock checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSeed {
    pub id: u64,
    /// `queued`, `in_progress`, `completed`, ...
    pub status: String,
    pub conclusion: Option<String>,
    pub run_attempt: u64,
    pub head_sha: String,
}

/// A job of a workflow run the fake knows (to find the numeric job id for log links).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSeed {
    pub id: u64,
    pub run_id: u64,
    pub name: String,
    pub runner_name: Option<String>,
    /// `queued`, `in_progress`, `completed`.
    pub status: String,
    pub conclusion: Option<String>,
    pub run_attempt: u64,
}

/// A pull request the fake knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSeed {
    pub number: u64,
    /// `open` or `closed`.
    pub state: String,
    pub title: String,
    pub head_sha: String,
    pub head_ref: String,
    pub base_ref: String,
    pub merged: bool,
    pub draft: bool,
    pub labels: Vec<String>,
    pub user: String,
    /// RFC 3339.
    pub updated_at: String,
}

#[derive(Debug, Clone)]
struct Deployment {
    id: u64,
    sha: String,
    git_ref: String,
    task: String,
    environment: String,
    original_environment: String,
    description: Option<String>,
    payload: Value,
    transient: bool,
    production: bool,
    created_at: String,
    updated_at: String,
}

#[derive(Debug, Clone)]
struct Status {
    id: u64,
    deployment_id: u64,
    state: String,
    description: String,
    environment: String,
    log_url: String,
    environment_url: String,
    created_at: String,
}

#[derive(Debug, Clone)]
struct CommitStatus {
    sha: String,
    state: String,
    context: String,
}

#[derive(Debug, Clone)]
struct Comment {
    id: u64,
    issue_number: u64,
    body: String,
    created_at: String,
    updated_at: String,
}

#[derive(Debug, Default)]
struct State {
    base: String,
    owner: String,
    repo: String,
    token: Option<String>,
    clock: u64,
    next_id: u64,
    deployments: Vec<Deployment>,
    statuses: Vec<Status>,
    comments: Vec<Comment>,
    runs: BTreeMap<u64, RunSeed>,
    jobs: Vec<JobSeed>,
    /// Branch name → head commit SHA.
    branches: BTreeMap<String, String>,
    /// Environment names (created by the first deployment that names them).
    environments: std::collections::BTreeSet<String>,
    /// Whether the token may administer the repository (`GITHUB_TOKEN` may not).
    admin: bool,
    commit_statuses: Vec<CommitStatus>,
    /// (branch, path) → (content, blob SHA).
    files: BTreeMap<(String, String), (Vec<u8>, String)>,
    pulls: BTreeMap<u64, PullSeed>,
    faults: VecDeque<Fault>,
    requests: Vec<RecordedRequest>,
    violations: Vec<String>,
}

impl State {
    fn now(&mut self) -> String {
        self.clock += 1;
        let t = self.clock;
        format!(
            "2026-01-{:02}T{:02}:{:02}:{:02}Z",
            1 + (t / 86_400) % 28,
            (t / 3600) % 24,
            (t / 60) % 60,
            t % 60
        )
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn repo_api(&self) -> String {
        format!("{}/repos/{}/{}", self.base, self.owner, self.repo)
    }
}

/// The fake GitHub API. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeGitHub {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGitHub {
    /// Stops the server and fails the test if violations were left unexamined.
    fn drop(&mut self) {
        self.task.abort();
        if std::thread::panicking() {
            return;
        }
        let violations = self.violations();
        assert!(
            violations.is_empty(),
            "the fake GitHub API saw violations nobody took (call take_violations):\n{}",
            violations.join("\n")
        );
    }
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<Value>,
}

impl Answer {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    fn error(status: u16, message: &str) -> Self {
        Self::json(
            status,
            json!({"message": message, "documentation_url": "https://docs.github.com/rest"}),
        )
    }

    fn validation(message: &str, field: &str) -> Self {
        Self::json(
            422,
            json!({
                "message": "Validation Failed",
                "documentation_url": "https://docs.github.com/rest",
                "errors": [{"resource": "Request", "field": field, "code": "invalid", "message": message}]
            }),
        )
    }
}

impl FakeGitHub {
    /// Starts the fake for repository `owner/repo`, accepting only `token` (if given).
    pub async fn start(owner: &str, repo: &str, token: Option<&str>) -> Self {
        let _ = spec();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake github");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State {
            base: format!("http://{addr}"),
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            token: token.map(str::to_owned),
            next_id: 1000,
            branches: BTreeMap::from([("main".to_owned(), "1".repeat(40))]),
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(handle(&state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, state, task }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake github state")
    }

    /// The base URL to use as `GITHUB_API_URL`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every contract violation seen so far.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// Returns the violations seen so far and forgets them (for tests that provoke them).
    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().violations)
    }

    /// Panics with the list of violations, if any.
    pub fn assert_no_violations(&self) {
        let violations = self.violations();
        assert!(
            violations.is_empty(),
            "requests or responses broke the GitHub API description:\n{}",
            violations.join("\n")
        );
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// The operation ids of the requests received, in order.
    pub fn operation_log(&self) -> Vec<String> {
        self.lock()
            .requests
            .iter()
            .map(|r| {
                r.operation_id
                    .clone()
                    .unwrap_or_else(|| format!("{} {}", r.method, r.path))
            })
            .collect()
    }

    /// Panics if `needle` appears in any request body, path or query.
    pub fn assert_not_sent(&self, needle: &str) {
        for r in &self.lock().requests {
            assert!(
                !r.body.contains(needle) && !r.path.contains(needle) && !r.query.contains(needle),
                "secret sent to the API in {} {}",
                r.method,
                r.path
            );
        }
    }

    /// Queues a fault.
    pub fn push_fault(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// Adds or replaces a workflow run.
    pub fn add_run(&self, run: RunSeed) {
        self.lock().runs.insert(run.id, run);
    }

    /// Adds a job to a workflow run.
    pub fn add_job(&self, job: JobSeed) {
        self.lock().jobs.push(job);
    }

    /// Lets the token administer the repository (a PAT or App token, not `GITHUB_TOKEN`), which
    /// deleting environments needs.
    pub fn set_admin(&self, admin: bool) {
        self.lock().admin = admin;
    }

    /// The environments that exist.
    pub fn environments(&self) -> Vec<String> {
        self.lock().environments.iter().cloned().collect()
    }

    /// The commit statuses posted for `sha` as (state, context), oldest first.
    pub fn commit_statuses(&self, sha: &str) -> Vec<(String, String)> {
        self.lock()
            .commit_statuses
            .iter()
            .filter(|s| s.sha == sha)
            .map(|s| (s.state.clone(), s.context.clone()))
            .collect()
    }

    /// A file's content on a branch, as the contents API last stored it.
    pub fn file(&self, branch: &str, path: &str) -> Option<Vec<u8>> {
        self.lock()
            .files
            .get(&(branch.to_owned(), path.to_owned()))
            .map(|(content, _)| content.clone())
    }

    /// The branches and their head SHAs (`main` exists from the start).
    pub fn branches(&self) -> BTreeMap<String, String> {
        self.lock().branches.clone()
    }

    /// Adds or replaces a pull request.
    pub fn add_pull(&self, pull: PullSeed) {
        self.lock().pulls.insert(pull.number, pull);
    }

    /// The deployments as the API would show them, newest first.
    pub fn deployments(&self) -> Vec<Value> {
        let state = self.lock();
        state
            .deployments
            .iter()
            .rev()
            .map(|d| deployment_json(&state, d))
            .collect()
    }

    /// The states posted to a deployment, oldest first.
    pub fn status_states(&self, deployment_id: u64) -> Vec<String> {
        self.lock()
            .statuses
            .iter()
            .filter(|s| s.deployment_id == deployment_id)
            .map(|s| s.state.clone())
            .collect()
    }

    /// The statuses of a deployment as the API shows them, oldest first.
    pub fn statuses(&self, deployment_id: u64) -> Vec<Value> {
        let state = self.lock();
        state
            .statuses
            .iter()
            .filter(|s| s.deployment_id == deployment_id)
            .map(|s| status_json(&state, s))
            .collect()
    }

    /// The comment bodies on an issue or pull request, oldest first.
    pub fn comment_bodies(&self, issue_number: u64) -> Vec<String> {
        self.lock()
            .comments
            .iter()
            .filter(|c| c.issue_number == issue_number)
            .map(|c| c.body.clone())
            .collect()
    }

    /// Adds a comment as another user would have (for pagination and marker tests).
    pub fn add_comment(&self, issue_number: u64, body: &str) -> u64 {
        let mut state = self.lock();
        let id = state.id();
        let now = state.now();
        state.comments.push(Comment {
            id,
            issue_number,
            body: body.to_owned(),
            created_at: now.clone(),
            updated_at: now,
        });
        id
    }
}

async fn handle(state: &Arc<Mutex<State>>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = match req.into_body().collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    let mut state = state.lock().expect("fake github state");
    let spec = spec();
    let mut violations = Vec::new();
    let (answer, operation_id) = match spec.route(&method, &path) {
        Err(message) => {
            violations.push(message);
            (Answer::error(404, "Not Found"), None)
        }
        Ok((op, path_params)) => {
            let (answer, problems) =
                check_and_answer(&mut state, spec, op, &path_params, &query, &headers, &body);
            let rejected = !problems.is_empty();
            violations.extend(
                problems
                    .into_iter()
                    .map(|p| format!("{} {path}: {p}", op.id)),
            );
            if let Some(body) = &answer.body
                && let Some(schema) = spec.response_schema(op, answer.status)
            {
                let mut errors = Vec::new();
                spec.validate_response(schema, body, "$", &mut errors);
                violations.extend(
                    errors
                        .into_iter()
                        .map(|e| format!("{} {path}: response {}: {e}", op.id, answer.status)),
                );
            }
            if !rejected
                && op.responses.get(answer.status.to_string()).is_none()
                && answer.status < 500
                && answer.status != 404
                && answer.status != 401
                && answer.status != 403
                && answer.status != 429
            {
                violations.push(format!(
                    "{} {path}: the fake answered {} which the description does not declare",
                    op.id, answer.status
                ));
            }
            (answer, Some(op.id.clone()))
        }
    };
    state.violations.extend(violations);
    state.requests.push(RecordedRequest {
        method,
        path,
        query,
        operation_id,
        headers,
        body,
        status: answer.status,
    });
    drop(state);
    let mut response = Response::builder()
        .status(StatusCode::from_u16(answer.status).expect("status code"))
        .header("x-github-api-version-selected", "2022-11-28");
    for (name, value) in &answer.headers {
        response = response.header(name.as_str(), value.as_str());
    }
    let bytes = match &answer.body {
        Some(body) => {
            response = response.header("content-type", "application/json; charset=utf-8");
            Bytes::from(body.to_string())
        }
        None => Bytes::new(),
    };
    response.body(Full::new(bytes)).expect("response")
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn check_query(
    spec: &Spec,
    op: &Operation,
    query: &str,
    problems: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let pairs = parse_query(query);
    let mut query_values = BTreeMap::new();
    for (name, raw) in &pairs {
        match op
            .params
            .iter()
            .find(|p| p.location == "query" && &p.name == name)
        {
            None => problems.push(format!(
                "query parameter `{name}` is not in the description"
            )),
            Some(param) => {
                let value = coerce(spec, &param.schema, raw);
                let mut errors = Vec::new();
                spec.validate(&param.schema, &value, &format!("query.{name}"), &mut errors);
                problems.extend(errors);
                if name == "per_page" && value.as_i64().is_some_and(|n| !(1..=100).contains(&n)) {
                    problems.push(format!("query.per_page: {raw} is outside 1..=100"));
                }
                if query_values.insert(name.clone(), raw.clone()).is_some() {
                    problems.push(format!("query parameter `{name}` repeated"));
                }
            }
        }
    }
    for param in op
        .params
        .iter()
        .filter(|p| p.location == "query" && p.required)
    {
        if !query_values.contains_key(&param.name) {
            problems.push(format!("required query parameter `{}` missing", param.name));
        }
    }

    query_values
}

fn check_and_answer(
    state: &mut State,
    spec: &Spec,
    op: &Operation,
    path_params: &BTreeMap<String, String>,
    query: &str,
    headers: &[(String, String)],
    body: &str,
) -> (Answer, Vec<String>) {
    let mut problems = Vec::new();

    // Headers GitHub expects from every client.
    let versions = header(headers, "x-github-api-version");
    if versions != ["2022-11-28"] {
        problems.push(format!(
            "X-GitHub-Api-Version must be sent once as 2022-11-28, got {versions:?}"
        ));
    }
    if header(headers, "user-agent").is_empty() {
        problems.push("no User-Agent header".to_owned());
    }
    if let Some(token) = &state.token {
        let auth = header(headers, "authorization");
        if auth != [format!("Bearer {token}").as_str()]
            && auth != [format!("token {token}").as_str()]
        {
            problems.push("missing or wrong Authorization header".to_owned());
            return (Answer::error(401, "Bad credentials"), problems);
        }
    }

    // Path parameters.
    for param in op.params.iter().filter(|p| p.location == "path") {
        match path_params.get(&param.name) {
            None => problems.push(format!("path parameter `{}` missing", param.name)),
            Some(raw) => {
                let value = coerce(spec, &param.schema, raw);
                let mut errors = Vec::new();
                spec.validate(
                    &param.schema,
                    &value,
                    &format!("path.{}", param.name),
                    &mut errors,
                );
                problems.extend(errors);
            }
        }
    }

    let query_values = check_query(spec, op, query, &mut problems);

    // Body.
    let json_body = if body.trim().is_empty() {
        if op.body_required {
            problems.push("request body is required".to_owned());
        }
        None
    } else {
        let content_type = header(headers, "content-type");
        if !content_type
            .iter()
            .any(|c| c.starts_with("application/json"))
        {
            problems.push(format!("body sent with content-type {content_type:?}"));
        }
        match serde_json::from_str::<Value>(body) {
            Err(e) => {
                problems.push(format!("body is not JSON: {e}"));
                None
            }
            Ok(value) => {
                match &op.body_schema {
                    Some(schema) => {
                        let mut errors = Vec::new();
                        spec.validate(schema, &value, "body", &mut errors);
                        problems.extend(errors);
                    }
                    None => problems.push("this operation takes no request body".to_owned()),
                }
                Some(value)
            }
        }
    };
    if !problems.is_empty() {
        return (
            Answer::validation(&problems.join("; "), "request"),
            problems,
        );
    }

    if let Some(index) = state
        .faults
        .iter()
        .position(|f| f.operation_id.as_deref().is_none_or(|id| id == op.id))
        && let Some(fault) = state.faults.remove(index)
    {
        return (
            Answer {
                status: fault.status,
                headers: fault.headers,
                body: Some(fault.body),
            },
            problems,
        );
    }

    let answer = dispatch(state, op, path_params, &query_values, json_body);
    (answer, problems)
}

fn dispatch(
    state: &mut State,
    op: &Operation,
    path_params: &BTreeMap<String, String>,
    query_values: &BTreeMap<String, String>,
    json_body: Option<Value>,
) -> Answer {
    let owner_ok = path_params
        .get("owner")
        .is_none_or(|o| o.eq_ignore_ascii_case(&state.owner))
        && path_params
            .get("repo")
            .is_none_or(|r| r.eq_ignore_ascii_case(&state.repo));
    if !owner_ok {
        return Answer::error(404, "Not Found");
    }
    let body = json_body.unwrap_or(Value::Null);
    let int = |name: &str| {
        path_params
            .get(name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    match op.id.as_str() {
        "repos/create-deployment" => create_deployment(state, &body),
        "repos/list-deployments" => list_deployments(state, query_values),
        "repos/get-deployment" => match state
            .deployments
            .iter()
            .find(|d| d.id == int("deployment_id"))
        {
            Some(d) => Answer::json(200, deployment_json(state, d)),
            None => Answer::error(404, "Not Found"),
        },
        "repos/delete-deployment" => delete_deployment(state, int("deployment_id")),
        "repos/create-deployment-status" => create_status(state, int("deployment_id"), &body),
        "repos/list-deployment-statuses" => {
            list_statuses(state, int("deployment_id"), query_values)
        }
        "issues/list-comments" => list_comments(state, int("issue_number"), query_values),
        "issues/create-comment" => create_comment(state, int("issue_number"), &body),
        "issues/update-comment" => update_comment(state, int("comment_id"), &body),
        "issues/delete-comment" => {
            let id = int("comment_id");
            let before = state.comments.len();
            state.comments.retain(|c| c.id != id);
            if state.comments.len() == before {
                Answer::error(404, "Not Found")
            } else {
                Answer::empty(204)
            }
        }
        "actions/get-workflow-run" => match state.runs.get(&int("run_id")) {
            Some(run) => Answer::json(200, run_json(state, run)),
            None => Answer::error(404, "Not Found"),
        },
        "actions/list-jobs-for-workflow-run" => list_jobs(state, int("run_id"), query_values),
        "repos/get-content" => get_content(state, path_params, query_values),
        "repos/create-or-update-file-contents" => put_content(state, path_params, &body),
        "git/get-ref" => get_ref(state, path_params.get("ref").map_or("", String::as_str)),
        "git/create-ref" => create_ref(state, &body),
        "repos/get-environment" => {
            let name = path_params
                .get("environment_name")
                .cloned()
                .unwrap_or_default();
            if state.environments.contains(&name) {
                Answer::json(200, environment_json(state, &name))
            } else {
                Answer::error(404, "Not Found")
            }
        }
        "repos/delete-an-environment" => {
            let name = path_params
                .get("environment_name")
                .cloned()
                .unwrap_or_default();
            if state.admin {
                state.environments.remove(&name);
                Answer::empty(204)
            } else {
                Answer::error(403, "Resource not accessible by integration")
            }
        }
        "repos/create-commit-status" => {
            let sha = path_params.get("sha").cloned().unwrap_or_default();
            create_commit_status(state, &sha, &body)
        }
        "pulls/get" => match state.pulls.get(&int("pull_number")) {
            Some(pull) => Answer::json(200, pull_json(state, pull, "pull-request")),
            None => Answer::error(404, "Not Found"),
        },
        "pulls/list" => list_pulls(state, query_values),
        other => Answer::error(501, &format!("the fake does not implement {other}")),
    }
}

fn page_params(query: &BTreeMap<String, String>) -> (usize, usize) {
    let per_page = query
        .get("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30usize)
        .clamp(1, 100);
    let page = query
        .get("page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    (per_page, page)
}

/// Slices `items` for the requested page and builds GitHub's `Link` header.
fn paginate(
    state: &State,
    path: &str,
    query: &BTreeMap<String, String>,
    items: Vec<Value>,
) -> Answer {
    let (per_page, page) = page_params(query);
    let total = items.len();
    let last = total.div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let link_for = |n: usize| {
        let mut q = query.clone();
        q.insert("page".to_owned(), n.to_string());
        q.insert("per_page".to_owned(), per_page.to_string());
        let qs: Vec<String> = q
            .iter()
            .map(|(k, v)| format!("{k}={}", url_encode(v)))
            .collect();
        format!("<{}{path}?{}>", state.base, qs.join("&"))
    };
    let mut links = Vec::new();
    if page < last {
        links.push(format!("{}; rel=\"next\"", link_for(page + 1)));
        links.push(format!("{}; rel=\"last\"", link_for(last)));
    }
    if page > 1 {
        links.push(format!("{}; rel=\"first\"", link_for(1)));
        links.push(format!("{}; rel=\"prev\"", link_for(page - 1)));
    }
    let mut answer = Answer::json(200, Value::Array(slice));
    if !links.is_empty() {
        answer.headers.push(("link".to_owned(), links.join(", ")));
    }
    answer
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn user_json(state: &State, login: &str, id: u64) -> Value {
    let base = &state.base;
    json!({
        "login": login, "id": id, "node_id": format!("U_{id}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}"),
        "gravatar_id": "", "url": format!("{base}/users/{login}"),
        "html_url": format!("https://github.com/{login}"),
        "followers_url": format!("{base}/users/{login}/followers"),
        "following_url": format!("{base}/users/{login}/following{{/other_user}}"),
        "gists_url": format!("{base}/users/{login}/gists{{/gist_id}}"),
        "starred_url": format!("{base}/users/{login}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{base}/users/{login}/subscriptions"),
        "organizations_url": format!("{base}/users/{login}/orgs"),
        "repos_url": format!("{base}/users/{login}/repos"),
        "events_url": format!("{base}/users/{login}/events{{/privacy}}"),
        "received_events_url": format!("{base}/users/{login}/received_events"),
        "type": if login.ends_with("[bot]") { "Bot" } else { "User" },
        "site_admin": false
    })
}

fn bot(state: &State) -> Value {
    user_json(state, "github-actions[bot]", 41_898_282)
}

fn deployment_json(state: &State, d: &Deployment) -> Value {
    let mut v = spec().example("deployment");
    let url = format!("{}/deployments/{}", state.repo_api(), d.id);
    let fields = json!({
        "url": url, "id": d.id, "node_id": format!("DE_{}", d.id), "sha": d.sha, "ref": d.git_ref,
        "task": d.task, "payload": d.payload, "original_environment": d.original_environment,
        "environment": d.environment, "description": d.description, "creator": bot(state),
        "created_at": d.created_at, "updated_at": d.updated_at,
        "statuses_url": format!("{url}/statuses"), "repository_url": state.repo_api(),
        "transient_environment": d.transient, "production_environment": d.production,
        "performed_via_github_app": null
    });
    merge(&mut v, fields);
    v
}

fn status_json(state: &State, s: &Status) -> Value {
    let mut v = spec().example("deployment-status");
    let deployment_url = format!("{}/deployments/{}", state.repo_api(), s.deployment_id);
    let fields = json!({
        "url": format!("{deployment_url}/statuses/{}", s.id), "id": s.id,
        "node_id": format!("DES_{}", s.id), "state": s.state, "creator": bot(state),
        "description": s.description, "environment": s.environment, "target_url": s.log_url,
        "log_url": s.log_url, "environment_url": s.environment_url,
        "created_at": s.created_at, "updated_at": s.created_at,
        "deployment_url": deployment_url, "repository_url": state.repo_api(),
        "performed_via_github_app": null
    });
    merge(&mut v, fields);
    v
}

fn comment_json(state: &State, c: &Comment) -> Value {
    let mut v = spec().example("issue-comment");
    let fields = json!({
        "id": c.id, "node_id": format!("IC_{}", c.id),
        "url": format!("{}/issues/comments/{}", state.repo_api(), c.id),
        "html_url": format!("https://github.com/{}/{}/pull/{}#issuecomment-{}", state.owner, state.repo, c.issue_number, c.id),
        "body": c.body, "user": bot(state), "created_at": c.created_at, "updated_at": c.updated_at,
        "issue_url": format!("{}/issues/{}", state.repo_api(), c.issue_number),
        "author_association": "NONE"
    });
    merge(&mut v, fields);
    v
}

fn run_json(state: &State, run: &RunSeed) -> Value {
    let mut v = spec().example("workflow-run");
    let url = format!("{}/actions/runs/{}", state.repo_api(), run.id);
    let fields = json!({
        "id": run.id, "status": run.status, "conclusion": run.conclusion,
        "run_attempt": run.run_attempt, "head_sha": run.head_sha, "url": url,
        "html_url": format!("https://github.com/{}/{}/actions/runs/{}", state.owner, state.repo, run.id)
    });
    merge(&mut v, fields);
    v
}

fn pull_json(state: &State, p: &PullSeed, example: &str) -> Value {
    let mut v = spec().example(example);
    if let Value::Array(items) = v {
        v = items.into_iter().next().unwrap_or(Value::Null);
    }
    let labels: Vec<Value> = p
        .labels
        .iter()
        .enumerate()
        .map(|(i, name)| {
            json!({"id": i + 1, "node_id": format!("LA_{i}"), "url": format!("{}/labels/{name}", state.repo_api()),
                   "name": name, "description": "", "color": "ededed", "default": false})
        })
        .collect();
    let closed = p.state == "closed";
    let fields = json!({
        "number": p.number, "id": p.number + 100_000, "state": p.state, "title": p.title,
        "url": format!("{}/pulls/{}", state.repo_api(), p.number),
        "html_url": format!("https://github.com/{}/{}/pull/{}", state.owner, state.repo, p.number),
        "draft": p.draft, "labels": labels, "updated_at": p.updated_at,
        "requested_teams": [], "requested_reviewers": [],
        "closed_at": if closed { Value::String(p.updated_at.clone()) } else { Value::Null },
        "merged_at": if p.merged { Value::String(p.updated_at.clone()) } else { Value::Null },
        "user": user_json(state, &p.user, 7),
        "head": {"ref": p.head_ref, "sha": p.head_sha},
        "base": {"ref": p.base_ref}
    });
    merge(&mut v, fields);
    if example == "pull-request" {
        merge(&mut v, json!({"merged": p.merged}));
    }
    v
}

/// Deep-merges `patch` into `target` (objects merge, everything else replaces).
fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        t.insert(k, v);
                    }
                }
            }
        }
        (t, p) => *t = p,
    }
}

fn is_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn create_deployment(state: &mut State, body: &Value) -> Answer {
    let git_ref = body["ref"].as_str().unwrap_or_default().to_owned();
    // GitHub's defaults: auto_merge true merges the default branch in and answers 202 without a
    // deployment; omitted required_contexts means every status context must be green.
    if body.get("auto_merge") != Some(&Value::Bool(false)) {
        return Answer::json(
            202,
            json!({"message": format!("Auto-merged main into {git_ref} on deployment.")}),
        );
    }
    match body.get("required_contexts").and_then(Value::as_array) {
        Some(contexts) if contexts.is_empty() => {}
        _ => {
            return Answer::json(
                409,
                json!({"message": "Conflict: Commit status checks failed for ".to_owned() + &git_ref + "."}),
            );
        }
    }
    let environment = body["environment"]
        .as_str()
        .unwrap_or("production")
        .to_owned();
    let id = state.id();
    let now = state.now();
    let deployment = Deployment {
        id,
        sha: if is_sha(&git_ref) {
            git_ref.clone()
        } else {
            "0".repeat(40)
        },
        git_ref,
        task: body["task"].as_str().unwrap_or("deploy").to_owned(),
        original_environment: environment.clone(),
        production: body["production_environment"]
            .as_bool()
            .unwrap_or(environment == "production"),
        environment,
        description: body["description"].as_str().map(str::to_owned),
        payload: match &body["payload"] {
            Value::Null => json!({}),
            Value::String(s) if s.is_empty() => json!({}),
            Value::String(s) => {
                serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))
            }
            other => other.clone(),
        },
        transient: body["transient_environment"].as_bool().unwrap_or(false),
        created_at: now.clone(),
        updated_at: now,
    };
    let answer = Answer::json(201, deployment_json(state, &deployment));
    state.environments.insert(deployment.environment.clone());
    state.deployments.push(deployment);
    answer
}

fn list_deployments(state: &State, query: &BTreeMap<String, String>) -> Answer {
    let filter = |key: &str, value: &str| query.get(key).is_none_or(|q| q == value);
    let items = state
        .deployments
        .iter()
        .rev()
        .filter(|d| {
            filter("sha", &d.sha)
                && filter("ref", &d.git_ref)
                && filter("task", &d.task)
                && filter("environment", &d.environment)
        })
        .map(|d| deployment_json(state, d))
        .collect();
    paginate(
        state,
        &format!("/repos/{}/{}/deployments", state.owner, state.repo),
        query,
        items,
    )
}

fn last_state(state: &State, deployment_id: u64) -> Option<String> {
    state
        .statuses
        .iter()
        .rev()
        .find(|s| s.deployment_id == deployment_id)
        .map(|s| s.state.clone())
}

fn delete_deployment(state: &mut State, id: u64) -> Answer {
    if !state.deployments.iter().any(|d| d.id == id) {
        return Answer::error(404, "Not Found");
    }
    let only_one = state.deployments.len() == 1;
    if !only_one && last_state(state, id).as_deref() != Some("inactive") {
        return Answer::json(
            422,
            json!({"message": "We cannot delete an active deployment unless it is the only deployment in a given environment.", "documentation_url": "https://docs.github.com/rest"}),
        );
    }
    state.deployments.retain(|d| d.id != id);
    state.statuses.retain(|s| s.deployment_id != id);
    Answer::empty(204)
}

fn create_status(state: &mut State, deployment_id: u64, body: &Value) -> Answer {
    let Some(deployment) = state
        .deployments
        .iter()
        .find(|d| d.id == deployment_id)
        .cloned()
    else {
        return Answer::error(404, "Not Found");
    };
    let description = body["description"].as_str().unwrap_or_default().to_owned();
    if description.chars().count() > 140 {
        return Answer::validation(
            "description is too long (maximum is 140 characters)",
            "description",
        );
    }
    let state_name = body["state"].as_str().unwrap_or_default().to_owned();
    let environment = body["environment"].as_str().map_or_else(
        || {
            state
                .statuses
                .iter()
                .rev()
                .find(|s| s.deployment_id == deployment_id)
                .map_or(deployment.environment.clone(), |s| s.environment.clone())
        },
        str::to_owned,
    );
    let log_url = body["log_url"]
        .as_str()
        .or_else(|| body["target_url"].as_str())
        .unwrap_or_default()
        .to_owned();
    let id = state.id();
    let now = state.now();
    let status = Status {
        id,
        deployment_id,
        state: state_name.clone(),
        description,
        environment: environment.clone(),
        log_url,
        environment_url: body["environment_url"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        created_at: now.clone(),
    };
    let answer = Answer::json(201, status_json(state, &status));
    state.statuses.push(status);
    if let Some(d) = state.deployments.iter_mut().find(|d| d.id == deployment_id) {
        d.updated_at.clone_from(&now);
    }
    // auto_inactive (default true): prior non-transient, non-production deployments of the same
    // environment whose last state was success get an inactive status.
    if state_name == "success" && body["auto_inactive"].as_bool().unwrap_or(true) {
        let targets: Vec<u64> = state
            .deployments
            .iter()
            .filter(|d| {
                d.id != deployment_id
                    && d.environment == environment
                    && !d.transient
                    && !d.production
            })
            .map(|d| d.id)
            .filter(|id| last_state(state, *id).as_deref() == Some("success"))
            .collect();
        for target in targets {
            let id = state.id();
            let now = state.now();
            state.statuses.push(Status {
                id,
                deployment_id: target,
                state: "inactive".to_owned(),
                description: String::new(),
                environment: environment.clone(),
                log_url: String::new(),
                environment_url: String::new(),
                created_at: now,
            });
        }
    }
    let location = format!(
        "{}/deployments/{deployment_id}/statuses/{id}",
        state.repo_api()
    );
    let mut answer = answer;
    answer.headers.push(("location".to_owned(), location));
    answer
}

fn list_statuses(state: &State, deployment_id: u64, query: &BTreeMap<String, String>) -> Answer {
    if !state.deployments.iter().any(|d| d.id == deployment_id) {
        return Answer::error(404, "Not Found");
    }
    let items = state
        .statuses
        .iter()
        .rev()
        .filter(|s| s.deployment_id == deployment_id)
        .map(|s| status_json(state, s))
        .collect();
    paginate(
        state,
        &format!(
            "/repos/{}/{}/deployments/{deployment_id}/statuses",
            state.owner, state.repo
        ),
        query,
        items,
    )
}

fn list_comments(state: &State, issue: u64, query: &BTreeMap<String, String>) -> Answer {
    let items = state
        .comments
        .iter()
        .filter(|c| c.issue_number == issue)
        .map(|c| comment_json(state, c))
        .collect();
    paginate(
        state,
        &format!(
            "/repos/{}/{}/issues/{issue}/comments",
            state.owner, state.repo
        ),
        query,
        items,
    )
}

const COMMENT_LIMIT: usize = 65_536;

fn create_comment(state: &mut State, issue: u64, body: &Value) -> Answer {
    let text = body["body"].as_str().unwrap_or_default().to_owned();
    if text.chars().count() > COMMENT_LIMIT {
        return Answer::validation("body is too long (maximum is 65536 characters)", "body");
    }
    let id = state.id();
    let now = state.now();
    let comment = Comment {
        id,
        issue_number: issue,
        body: text,
        created_at: now.clone(),
        updated_at: now,
    };
    let mut answer = Answer::json(201, comment_json(state, &comment));
    answer.headers.push((
        "location".to_owned(),
        format!("{}/issues/comments/{id}", state.repo_api()),
    ));
    state.comments.push(comment);
    answer
}

fn update_comment(state: &mut State, id: u64, body: &Value) -> Answer {
    let text = body["body"].as_str().unwrap_or_default().to_owned();
    if text.chars().count() > COMMENT_LIMIT {
        return Answer::validation("body is too long (maximum is 65536 characters)", "body");
    }
    let now = state.now();
    let Some(comment) = state.comments.iter_mut().find(|c| c.id == id) else {
        return Answer::error(404, "Not Found");
    };
    comment.body = text;
    comment.updated_at = now;
    let comment = comment.clone();
    Answer::json(200, comment_json(state, &comment))
}

fn list_pulls(state: &State, query: &BTreeMap<String, String>) -> Answer {
    let wanted = query.get("state").map_or("open", String::as_str);
    let items = state
        .pulls
        .values()
        .rev()
        .filter(|p| wanted == "all" || p.state == wanted)
        .map(|p| pull_json(state, p, "pull-request-simple-items"))
        .collect();
    paginate(
        state,
        &format!("/repos/{}/{}/pulls", state.owner, state.repo),
        query,
        items,
    )
}

fn job_json(state: &State, job: &JobSeed) -> Value {
    let mut v = spec().example("job-paginated")["jobs"][0].clone();
    let fields = json!({
        "id": job.id, "run_id": job.run_id, "node_id": format!("J_{}", job.id),
        "run_url": format!("{}/actions/runs/{}", state.repo_api(), job.run_id),
        "url": format!("{}/actions/jobs/{}", state.repo_api(), job.id),
        "html_url": format!("https://github.com/{}/{}/actions/runs/{}/job/{}", state.owner, state.repo, job.run_id, job.id),
        "name": job.name, "runner_name": job.runner_name, "status": job.status,
        "conclusion": job.conclusion, "run_attempt": job.run_attempt,
        "created_at": "2026-01-01T00:00:00Z",
        "completed_at": if job.status == "completed" { json!("2026-01-01T00:10:00Z") } else { Value::Null }
    });
    merge(&mut v, fields);
    v
}

fn list_jobs(state: &State, run_id: u64, query: &BTreeMap<String, String>) -> Answer {
    if !state.runs.contains_key(&run_id) {
        return Answer::error(404, "Not Found");
    }
    let latest = query.get("filter").is_none_or(|f| f == "latest");
    let newest_attempt = state
        .jobs
        .iter()
        .filter(|j| j.run_id == run_id)
        .map(|j| j.run_attempt)
        .max()
        .unwrap_or(1);
    let jobs: Vec<Value> = state
        .jobs
        .iter()
        .filter(|j| j.run_id == run_id && (!latest || j.run_attempt == newest_attempt))
        .map(|j| job_json(state, j))
        .collect();
    let total = jobs.len();
    let mut answer = paginate(
        state,
        &format!(
            "/repos/{}/{}/actions/runs/{run_id}/jobs",
            state.owner, state.repo
        ),
        query,
        jobs,
    );
    let page = answer.body.take().unwrap_or(Value::Null);
    answer.body = Some(json!({ "total_count": total, "jobs": page }));
    answer
}

/// A deterministic 40-hex stand-in for a git object id.
fn object_id(parts: &[&[u8]]) -> String {
    let mut out = String::new();
    for seed in 0u64..3 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
        for part in parts {
            for &b in *part {
                hash ^= u64::from(b);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
            hash ^= 0xff;
        }
        let _ = write!(out, "{hash:016x}");
    }
    out.truncate(40);
    out
}

fn content_links(state: &State, branch: &str, path: &str, sha: &str) -> Value {
    let url = format!("{}/contents/{path}?ref={branch}", state.repo_api());
    let git = format!("{}/git/blobs/{sha}", state.repo_api());
    let html = format!(
        "https://github.com/{}/{}/blob/{branch}/{path}",
        state.owner, state.repo
    );
    json!({
        "name": path.rsplit('/').next().unwrap_or(path), "path": path, "sha": sha,
        "url": url, "git_url": git, "html_url": html,
        "download_url": format!("https://raw.githubusercontent.com/{}/{}/{branch}/{path}", state.owner, state.repo),
        "type": "file",
        "_links": {"self": url, "git": git, "html": html}
    })
}

fn get_content(
    state: &State,
    params: &BTreeMap<String, String>,
    query: &BTreeMap<String, String>,
) -> Answer {
    let path = params.get("path").cloned().unwrap_or_default();
    let branch = query
        .get("ref")
        .cloned()
        .unwrap_or_else(|| "main".to_owned());
    if !state.branches.contains_key(&branch) {
        return Answer::error(404, &format!("No commit found for the ref {branch}"));
    }
    let Some((content, sha)) = state.files.get(&(branch.clone(), path.clone())) else {
        return Answer::error(404, "Not Found");
    };
    let encoded = BASE64.encode(content);
    let wrapped: Vec<&str> = encoded
        .as_bytes()
        .chunks(60)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    let mut v = content_links(state, &branch, &path, sha);
    merge(
        &mut v,
        json!({"size": content.len(), "encoding": "base64", "content": wrapped.join("\n") + "\n"}),
    );
    Answer::json(200, v)
}

fn put_content(state: &mut State, params: &BTreeMap<String, String>, body: &Value) -> Answer {
    let path = params.get("path").cloned().unwrap_or_default();
    let branch = body["branch"].as_str().unwrap_or("main").to_owned();
    let Some(head) = state.branches.get(&branch).cloned() else {
        return Answer::error(404, &format!("Branch {branch} not found"));
    };
    let Ok(content) = BASE64.decode(body["content"].as_str().unwrap_or_default()) else {
        return Answer::validation("content is not valid Base64", "content");
    };
    let key = (branch.clone(), path.clone());
    let existing = state.files.get(&key).map(|(_, sha)| sha.clone());
    let status = match (&existing, body["sha"].as_str()) {
        (Some(_), None) => {
            return Answer::validation("Invalid request.\n\n\"sha\" wasn't supplied.", "sha");
        }
        (Some(current), Some(given)) if current != given => {
            return Answer::error(409, &format!("{path} does not match {given}"));
        }
        (None, Some(_)) => {
            return Answer::error(409, &format!("{path} does not exist on {branch}"));
        }
        (Some(_), Some(_)) => 200,
        (None, None) => 201,
    };
    let sha = object_id(&[path.as_bytes(), &content]);
    let message = body["message"].as_str().unwrap_or_default().to_owned();
    let commit = object_id(&[head.as_bytes(), sha.as_bytes(), message.as_bytes()]);
    state.branches.insert(branch.clone(), commit.clone());
    let size = content.len();
    state.files.insert(key, (content, sha.clone()));
    let now = state.now();
    let mut content_json = content_links(state, &branch, &path, &sha);
    merge(&mut content_json, json!({"size": size}));
    Answer::json(
        status,
        json!({
            "content": content_json,
            "commit": {
                "sha": commit, "node_id": format!("C_{commit}"),
                "url": format!("{}/git/commits/{commit}", state.repo_api()),
                "html_url": format!("https://github.com/{}/{}/commit/{commit}", state.owner, state.repo),
                "author": {"date": now, "name": "github-actions[bot]", "email": "41898282+github-actions[bot]@users.noreply.github.com"},
                "committer": {"date": now, "name": "github-actions[bot]", "email": "41898282+github-actions[bot]@users.noreply.github.com"},
                "message": message,
                "tree": {"url": format!("{}/git/trees/{sha}", state.repo_api()), "sha": sha},
                "parents": [{"url": format!("{}/git/commits/{head}", state.repo_api()), "html_url": format!("https://github.com/{}/{}/commit/{head}", state.owner, state.repo), "sha": head}],
                "verification": {"verified": false, "reason": "unsigned", "signature": null, "payload": null, "verified_at": null}
            }
        }),
    )
}

fn ref_json(state: &State, full_ref: &str, sha: &str) -> Value {
    json!({
        "ref": full_ref, "node_id": format!("REF_{}", object_id(&[full_ref.as_bytes()])),
        "url": format!("{}/git/{full_ref}", state.repo_api()),
        "object": {"type": "commit", "sha": sha, "url": format!("{}/git/commits/{sha}", state.repo_api())}
    })
}

fn get_ref(state: &State, short_ref: &str) -> Answer {
    match short_ref
        .strip_prefix("heads/")
        .and_then(|branch| state.branches.get(branch))
    {
        Some(sha) => Answer::json(200, ref_json(state, &format!("refs/{short_ref}"), sha)),
        None => Answer::error(404, "Not Found"),
    }
}

fn create_ref(state: &mut State, body: &Value) -> Answer {
    let full_ref = body["ref"].as_str().unwrap_or_default().to_owned();
    let sha = body["sha"].as_str().unwrap_or_default().to_owned();
    let Some(branch) = full_ref
        .strip_prefix("refs/heads/")
        .filter(|b| !b.is_empty())
        .map(str::to_owned)
    else {
        return Answer::validation("ref must be refs/heads/<name>", "ref");
    };
    if !is_sha(&sha) {
        return Answer::validation("Object does not exist", "sha");
    }
    if state.branches.contains_key(&branch) {
        return Answer::validation("Reference already exists", "ref");
    }
    state.branches.insert(branch, sha.clone());
    let mut answer = Answer::json(201, ref_json(state, &full_ref, &sha));
    answer.headers.push((
        "location".to_owned(),
        format!("{}/git/{full_ref}", state.repo_api()),
    ));
    answer
}

fn environment_json(state: &State, name: &str) -> Value {
    let mut v = spec().example("environment");
    let fields = json!({
        "id": object_id(&[name.as_bytes()]).len(), "node_id": format!("EN_{name}"), "name": name,
        "url": format!("{}/environments/{}", state.repo_api(), url_encode(name)),
        "html_url": format!("https://github.com/{}/{}/deployments/activity_log?environments_filter={}", state.owner, state.repo, url_encode(name)),
        "protection_rules": []
    });
    merge(&mut v, fields);
    v
}

fn create_commit_status(state: &mut State, sha: &str, body: &Value) -> Answer {
    let id = state.id();
    let now = state.now();
    let context = body["context"].as_str().unwrap_or("default").to_owned();
    let status_state = body["state"].as_str().unwrap_or_default().to_owned();
    let target_url = body["target_url"].as_str().map(str::to_owned);
    let description = body["description"].as_str().map(str::to_owned);
    state.commit_statuses.push(CommitStatus {
        sha: sha.to_owned(),
        state: status_state.clone(),
        context: context.clone(),
    });
    let mut v = spec().example("status");
    let fields = json!({
        "url": format!("{}/statuses/{sha}", state.repo_api()), "id": id,
        "node_id": format!("ST_{id}"), "state": status_state, "description": description,
        "target_url": target_url, "context": context, "created_at": now, "updated_at": now,
        "creator": bot(state)
    });
    merge(&mut v, fields);
    let mut answer = Answer::json(201, v);
    answer.headers.push((
        "location".to_owned(),
        format!("{}/statuses/{sha}", state.repo_api()),
    ));
    answer
}
