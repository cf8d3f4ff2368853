//! The router: the set of services and their routing table, the control operations (deploy,
//! remove, pause, stop, resume, rollouts, list), state persistence, and the per-request entry point
//! (request ID/start headers, lookup, error pages, access log and metrics).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::{Body as HttpBody, Frame, SizeHint};
use rustls::sign::CertifiedKey;
use serde_json::Value;

use crate::acme::{Acme, CHALLENGE_PREFIX, Issuer};
use crate::body::{self, Body, BoxError};
use crate::commands::{
    Call, DeployArgs, PauseArgs, Reply, RolloutDeployArgs, RolloutSetArgs, ServiceDescription,
    StopArgs,
};
use crate::error::ProxyError;
use crate::load_balancer::{LoadBalancer, parse_targets};
use crate::log;
use crate::metrics;
use crate::options::ServiceOptions;
use crate::pages::{self, ErrorPages, proxy_error};
use crate::pause::PauseSnapshot;
use crate::rollout::RolloutController;
use crate::service::{Service, ServiceState, Slots, request_host};
use crate::service_map::ServiceMap;
use crate::target::{ConnInfo, IpText, Target};

#[derive(Debug, Default)]
struct Inner {
    services: BTreeMap<String, Arc<Service>>,
    map: Arc<ServiceMap>,
}

// Header names built at compile time: a lookup by `&str` parses the name on every request.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_REQUEST_START: HeaderName = HeaderName::from_static("x-request-start");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

#[derive(Debug)]
pub struct Router {
    state_path: Option<PathBuf>,
    inner: RwLock<Inner>,
    acme: Arc<Acme>,
}

type Resources = (
    Option<Arc<ErrorPages>>,
    Option<Arc<CertifiedKey>>,
    Option<Arc<Issuer>>,
);

/// Error pages, a custom certificate, or the ACME issuer of a TLS service without one.
fn load_resources(acme: &Acme, options: &ServiceOptions) -> Result<Resources, ProxyError> {
    let pages = if options.error_page_path.is_empty() {
        None
    } else {
        Some(Arc::new(ErrorPages::load(Path::new(
            &options.error_page_path,
        ))?))
    };
    let certificate = if options.tls_enabled && options.has_custom_certificate() {
        Some(crate::tls::load_certificate(
            Path::new(&options.tls_certificate_path),
            Path::new(&options.tls_private_key_path),
        )?)
    } else {
        None
    };
    let issuer =
        (options.tls_enabled && !options.has_custom_certificate()).then(|| acme.issuer(options));
    Ok((pages, certificate, issuer))
}

impl Router {
    pub fn new(state_path: Option<PathBuf>) -> Arc<Self> {
        Self::with_acme(state_path, Acme::new(Vec::new()))
    }

    /// A router whose automatic certificates come through `acme`.
    pub fn with_acme(state_path: Option<PathBuf>, acme: Arc<Acme>) -> Arc<Self> {
        Arc::new(Self {
            state_path,
            inner: RwLock::new(Inner::default()),
            acme,
        })
    }

    fn map(&self) -> Arc<ServiceMap> {
        self.inner
            .read()
            .map(|i| Arc::clone(&i.map))
            .unwrap_or_default()
    }

    fn service(&self, name: &str) -> Result<Arc<Service>, ProxyError> {
        self.inner
            .read()
            .ok()
            .and_then(|i| i.services.get(name).cloned())
            .ok_or(ProxyError::ServiceNotFound)
    }

    fn rebuild(inner: &mut Inner) {
        inner.map = Arc::new(ServiceMap::build(inner.services.values()));
    }

    /// Writes the state file atomically (temp file + rename), in kamal-proxy's format.
    fn save(&self, inner: &Inner) {
        let Some(path) = &self.state_path else {
            return;
        };
        let states: Vec<ServiceState> = inner.services.values().map(|s| s.to_state()).collect();
        let result = serde_json::to_vec(&states)
            .map_err(std::io::Error::other)
            .and_then(|json| {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let tmp = path.with_extension("state.tmp");
                std::fs::write(&tmp, json)?;
                std::fs::rename(&tmp, path)
            });
        if let Err(e) = result {
            log::error(
                "Unable to save state",
                &[
                    ("path", path.display().to_string().into()),
                    ("error", e.to_string().into()),
                ],
            );
        }
    }

    fn save_now(&self) {
        if let Ok(inner) = self.inner.read() {
            self.save(&inner);
        }
    }

    /// Restores services from the state file, service by service.
    pub fn restore(&self) {
        let Some(path) = &self.state_path else {
            return;
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                log::info(
                    "No previous state to restore",
                    &[("path", path.display().to_string().into())],
                );
                return;
            }
            Err(e) => {
                log::error(
                    "Failed to decode saved state",
                    &[("error", e.to_string().into())],
                );
                return;
            }
        };
        let entries: Vec<Value> = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                log::error(
                    "Failed to decode saved state",
                    &[("error", e.to_string().into())],
                );
                return;
            }
        };
        let mut restored = Vec::new();
        for entry in entries {
            match serde_json::from_value::<ServiceState>(entry)
                .map_err(|e| e.to_string())
                .and_then(|state| self.restore_one(state).map_err(|e| e.to_string()))
            {
                Ok(service) => restored.push(service),
                Err(e) => log::error("Failed to restore service", &[("error", e.into())]),
            }
        }
        if let Ok(mut inner) = self.inner.write() {
            for service in restored {
                inner.services.insert(service.name.clone(), service);
            }
            Self::rebuild(&mut inner);
        }
        log::info(
            "Restored saved state",
            &[("path", path.display().to_string().into())],
        );
    }

    fn restore_one(&self, mut state: ServiceState) -> Result<Arc<Service>, ProxyError> {
        state.upgrade_legacy();
        let (pages, certificate, acme) = load_resources(&self.acme, &state.options)?;
        let build =
            |writers: &[String], readers: &[String]| -> Result<Arc<LoadBalancer>, ProxyError> {
                let lb = LoadBalancer::new(
                    parse_targets(writers)?,
                    parse_targets(readers)?,
                    state.options.writer_affinity_timeout.0,
                    state.options.read_targets_accept_websockets,
                );
                lb.mark_all_healthy();
                lb.start_health_checks(&state.target_options.health_check_config);
                Ok(lb)
            };
        let active = if state.active_targets.is_empty() {
            None
        } else {
            Some(build(&state.active_targets, &state.active_readers)?)
        };
        let rollout = match &state.rollout_targets {
            Some(t) if !t.is_empty() => Some(build(
                t,
                state.rollout_readers.as_deref().unwrap_or_default(),
            )?),
            _ => None,
        };
        Ok(Service::new(
            &state.name,
            Slots {
                options: state.options,
                target_options: state.target_options,
                active,
                rollout,
                rollout_controller: state.rollout_controller,
                pages,
                certificate,
                acme,
            },
            state.pause_controller,
        ))
    }

    /// The current slots of a service (options and load balancers), if it exists.
    pub fn slots(&self, name: &str) -> Option<Arc<Slots>> {
        self.service(name).ok().map(|s| s.slots())
    }

    /// The certificate for a TLS server name: the custom one of the host's root-path service, or
    /// its ACME certificate when one is in memory.
    pub fn certificate_for(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        let service = self.map().root_service(host)?;
        if !service.tls_enabled() {
            return None;
        }
        let slots = service.slots();
        slots
            .certificate
            .clone()
            .or_else(|| slots.acme.as_ref()?.cached(host))
    }

    /// The service serving `/` for a host (exact, wildcard or catch-all).
    pub fn root_service(&self, host: &str) -> Option<Arc<Service>> {
        self.map().root_service(host)
    }

    /// Before a TLS handshake completes: when the server name belongs to a service with automatic
    /// TLS and may have a certificate (`on_demand::approve`), loads its certificate from the cache
    /// or obtains it from the ACME directory.
    pub async fn prepare_certificate(&self, server_name: Option<&str>) {
        let Some(host) = server_name
            .map(|n| n.trim_end_matches('.').to_string())
            .or_else(|| self.default_tls_host())
        else {
            return;
        };
        if let Ok(issuer) = crate::on_demand::approve(self, &host).await {
            let _ = issuer.ensure(&self.acme, &host).await;
        }
    }

    /// The ACME side: pending challenges, issuers.
    pub fn acme(&self) -> &Acme {
        &self.acme
    }

    pub fn default_tls_host(&self) -> Option<String> {
        self.map().default_tls_host()
    }

    /// Deploys targets to a service: health wait, atomic switch, drain of the old targets.
    pub async fn deploy(&self, args: DeployArgs) -> Result<(), ProxyError> {
        let mut options = args.service_options;
        options.normalize();
        options.validate()?;
        if options.tls_enabled
            && !options.has_custom_certificate()
            && options.hosts.iter().any(|h| h.contains('*'))
        {
            return Err(ProxyError::AutomaticTlsDoesNotSupportWildcards);
        }
        let writers = parse_targets(&args.target_urls)?;
        let readers = parse_targets(&args.reader_urls)?;
        log::info(
            "Deploying",
            &[
                ("service", args.service.as_str().into()),
                ("targets", args.target_urls.clone().into()),
                ("hosts", options.hosts.clone().into()),
                ("paths", options.path_prefixes.clone().into()),
                ("tls", options.tls_enabled.into()),
            ],
        );
        let lb = LoadBalancer::new(
            writers,
            readers,
            options.writer_affinity_timeout.0,
            options.read_targets_accept_websockets,
        );
        lb.start_health_checks(&args.target_options.health_check_config);
        let deployment = args.deployment_options;
        if !deployment.force
            && let Err(e) = lb.wait_until_healthy(deployment.deploy_timeout.0).await
        {
            lb.dispose();
            return Err(e);
        }
        let (pages, certificate, acme) = match load_resources(&self.acme, &options) {
            Ok(r) => r,
            Err(e) => {
                lb.dispose();
                return Err(e);
            }
        };
        let old = {
            let Ok(mut inner) = self.inner.write() else {
                lb.dispose();
                return Err(ProxyError::Message("router lock poisoned".into()));
            };
            if inner
                .map
                .conflict(&args.service, &options.hosts, &options.path_prefixes)
                .is_some()
            {
                lb.dispose();
                self.save(&inner);
                return Err(ProxyError::HostInUse);
            }
            let old = if let Some(service) = inner.services.get(&args.service) {
                let mut old = None;
                service.update(|slots| {
                    slots.options = options.clone();
                    slots.target_options = args.target_options.clone();
                    slots.pages = pages;
                    slots.certificate = certificate;
                    slots.acme = acme;
                    old = slots.active.replace(Arc::clone(&lb));
                });
                old
            } else {
                let service = Service::new(
                    &args.service,
                    Slots {
                        options: options.clone(),
                        target_options: args.target_options.clone(),
                        active: Some(Arc::clone(&lb)),
                        pages,
                        certificate,
                        acme,
                        ..Slots::default()
                    },
                    PauseSnapshot::default(),
                );
                inner.services.insert(args.service.clone(), service);
                None
            };
            Self::rebuild(&mut inner);
            self.save(&inner);
            old
        };
        if let Some(old) = old {
            old.dispose();
            old.drain(deployment.drain_timeout.0).await;
        }
        log::info("Deployed", &[("service", args.service.as_str().into())]);
        Ok(())
    }

    /// Removes a service at once (no draining).
    pub fn remove(&self, name: &str) -> Result<(), ProxyError> {
        let service = {
            let mut inner = self
                .inner
                .write()
                .map_err(|_| ProxyError::Message("router lock poisoned".into()))?;
            let service = inner
                .services
                .remove(name)
                .ok_or(ProxyError::ServiceNotFound)?;
            Self::rebuild(&mut inner);
            self.save(&inner);
            service
        };
        let slots = service.slots();
        for lb in [slots.active.clone(), slots.rollout.clone()]
            .into_iter()
            .flatten()
        {
            lb.dispose();
        }
        log::info("Removed", &[("service", name.into())]);
        Ok(())
    }

    pub async fn pause(&self, args: PauseArgs) -> Result<(), ProxyError> {
        let service = self.service(&args.service)?;
        service.pause.pause(args.pause_timeout.0);
        self.save_now();
        log::info(
            "Service paused",
            &[("service", args.service.as_str().into())],
        );
        service.drain(args.drain_timeout.0).await;
        log::info(
            "Service drained",
            &[("service", args.service.as_str().into())],
        );
        Ok(())
    }

    pub async fn stop(&self, args: StopArgs) -> Result<(), ProxyError> {
        let service = self.service(&args.service)?;
        service.pause.stop(&args.message);
        self.save_now();
        log::info(
            "Service stopped",
            &[("service", args.service.as_str().into())],
        );
        service.drain(args.drain_timeout.0).await;
        log::info(
            "Service drained",
            &[("service", args.service.as_str().into())],
        );
        Ok(())
    }

    pub fn resume(&self, name: &str) -> Result<(), ProxyError> {
        let service = self.service(name)?;
        service.pause.resume();
        self.save_now();
        log::info("Service resumed", &[("service", name.into())]);
        Ok(())
    }

    pub async fn rollout_deploy(&self, args: RolloutDeployArgs) -> Result<(), ProxyError> {
        let service = self.service(&args.service)?;
        let slots = service.slots();
        let lb = LoadBalancer::new(
            parse_targets(&args.target_urls)?,
            parse_targets(&args.reader_urls)?,
            slots.options.writer_affinity_timeout.0,
            slots.options.read_targets_accept_websockets,
        );
        lb.start_health_checks(&slots.target_options.health_check_config);
        if !args.deployment_options.force
            && let Err(e) = lb
                .wait_until_healthy(args.deployment_options.deploy_timeout.0)
                .await
        {
            lb.dispose();
            return Err(e);
        }
        let mut old = None;
        service.update(|slots| old = slots.rollout.replace(Arc::clone(&lb)));
        self.save_now();
        if let Some(old) = old {
            old.dispose();
            old.drain(args.deployment_options.drain_timeout.0).await;
        }
        Ok(())
    }

    pub fn rollout_set(&self, args: RolloutSetArgs) -> Result<(), ProxyError> {
        let service = self.service(&args.service)?;
        if service.slots().rollout.is_none() {
            return Err(ProxyError::RolloutTargetNotSet);
        }
        service.update(|slots| {
            slots.rollout_controller =
                Some(RolloutController::new(args.percentage, args.allowlist));
        });
        self.save_now();
        Ok(())
    }

    pub fn rollout_stop(&self, name: &str) -> Result<(), ProxyError> {
        let service = self.service(name)?;
        service.update(|slots| slots.rollout_controller = None);
        self.save_now();
        Ok(())
    }

    /// Services with an active load balancer, for `list`.
    pub fn list(&self) -> BTreeMap<String, ServiceDescription> {
        let services: Vec<Arc<Service>> = self
            .inner
            .read()
            .map(|i| i.services.values().cloned().collect())
            .unwrap_or_default();
        services
            .into_iter()
            .filter_map(|service| {
                let slots = service.slots();
                let lb = slots.active.clone()?;
                let hosts: Vec<&str> = slots
                    .options
                    .hosts
                    .iter()
                    .map(|h| if h.is_empty() { "*" } else { h.as_str() })
                    .collect();
                let targets: Vec<String> = lb.targets().map(|t| t.address.clone()).collect();
                Some((
                    service.name.clone(),
                    ServiceDescription {
                        host: hosts.join(","),
                        path: slots.options.path_prefixes.join(","),
                        tls: slots.options.tls_enabled,
                        target: targets.join(","),
                        state: service.pause.state().as_str().to_string(),
                    },
                ))
            })
            .collect()
    }

    /// Runs one control call.
    pub async fn dispatch(&self, call: Call) -> Reply {
        let result = match call {
            Call::Deploy(args) => self.deploy(args).await,
            Call::Remove { service } => self.remove(&service),
            Call::Pause(args) => self.pause(args).await,
            Call::Stop(args) => self.stop(args).await,
            Call::Resume { service } => self.resume(&service),
            Call::List => {
                return Reply {
                    error: None,
                    services: Some(self.list()),
                };
            }
            Call::RolloutDeploy(args) => self.rollout_deploy(args).await,
            Call::RolloutSet(args) => self.rollout_set(args),
            Call::RolloutStop { service } => self.rollout_stop(&service),
        };
        Reply {
            error: result.err().map(|e| e.to_string()),
            services: None,
        }
    }

    /// Handles one inbound request.
    pub async fn handle<B>(&self, req: Request<B>, conn: &ConnInfo) -> Response<Body>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let started = Instant::now();
        if let Some(response) = self.acme_challenge(req.uri().path()) {
            return response;
        }
        // A body that has ended already (most requests have none) needs no box of its own.
        let mut req = if req.body().is_end_stream() {
            req.map(|_| body::empty())
        } else {
            req.map(body::boxed)
        };
        let headers = req.headers_mut();
        let request_id =
            if let Some(existing) = headers.get(X_REQUEST_ID).filter(|v| v.to_str().is_ok()) {
                RequestId::Header(existing.clone())
            } else {
                let mut text = [0u8; 36];
                uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
                if let Ok(value) = HeaderValue::from_bytes(&text) {
                    headers.insert(X_REQUEST_ID, value);
                }
                RequestId::Generated(text)
            };
        if !headers.contains_key(X_REQUEST_START) {
            let millis = crate::timefmt::unix_millis(SystemTime::now());
            let mut digits = itoa::Buffer::new();
            let digits = digits.format(millis).as_bytes();
            let mut text = [0u8; 42];
            text[..2].copy_from_slice(b"t=");
            text[2..2 + digits.len()].copy_from_slice(digits);
            if let Ok(v) = HeaderValue::from_bytes(&text[..2 + digits.len()]) {
                headers.insert(X_REQUEST_START, v);
            }
        }
        let map = self.map();
        let binding = map.lookup(request_host(&req), req.uri().path());
        let slots = binding.map(|b| b.service.slots());
        let metrics_excluded = match (&slots, binding) {
            (Some(slots), Some(binding)) => {
                apply_request_options(&mut req, &slots.options, &binding.prefix)
            }
            _ => false,
        };
        let mut record = RequestRecord::new(
            &req,
            conn,
            request_id,
            binding.map(|b| Arc::clone(&b.service)),
            started,
        );
        record.metrics_excluded = metrics_excluded;
        if let Some(slots) = &slots {
            record.add_headers(
                "req",
                req.headers(),
                &slots.target_options.log_request_headers,
            );
        }
        if !metrics_excluded {
            metrics::global().in_flight(record.service_name(), 1);
        }
        // Logged as 499 if the client goes away before the response starts.
        let mut pending = PendingLog(Some(record));
        let host = pending.0.as_ref().map_or("", RequestRecord::host);

        let (mut response, service, target) = match binding {
            None => (proxy_error(StatusCode::NOT_FOUND, ""), None, None),
            Some(binding) => {
                // Boxed: the state of forwarding is large, and the server moves this request's
                // future (of which it would be part) into place by copying it whole.
                let (response, target) =
                    Box::pin(binding.service.serve(req, &binding.prefix, host, conn)).await;
                (response, Some(&binding.service), target)
            }
        };
        let pages = service.as_ref().and_then(|s| s.pages());
        pages::render(&mut response, pages.as_deref());
        let Some(mut record) = pending.0.take() else {
            return response;
        };
        record.target = target;
        record.status = response.status().as_u16();
        record.resp_content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        if let Some(slots) = &slots {
            record.add_headers(
                "resp",
                response.headers(),
                &slots.target_options.log_response_headers,
            );
        }
        let (parts, inner) = response.into_parts();
        Response::from_parts(
            parts,
            body::boxed(LoggedBody {
                inner,
                bytes: 0,
                record: Some(record),
            }),
        )
    }
}

impl Router {
    /// The answer to a pending ACME HTTP-01 challenge, before any routing or redirect.
    fn acme_challenge(&self, path: &str) -> Option<Response<Body>> {
        let token = path.strip_prefix(CHALLENGE_PREFIX)?;
        let authorization = self.acme.challenge_response(token)?;
        let mut response = Response::new(body::full(authorization));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        Some(response)
    }
}

/// The client-IP header replaces `X-Forwarded-For`; returns whether the (stripped) path is
/// excluded from metrics.
fn apply_request_options(req: &mut Request<Body>, options: &ServiceOptions, prefix: &str) -> bool {
    if !options.client_ip_header.is_empty()
        && let Some(value) = req
            .headers()
            .get(options.client_ip_header.as_str())
            .cloned()
    {
        req.headers_mut()
            .insert(HeaderName::from_static("x-forwarded-for"), value);
    }
    if options.exclude_metrics_paths.is_empty() {
        return false;
    }
    let path = req.uri().path();
    let stripped = if options.strip_prefix && prefix != "/" {
        path.strip_prefix(prefix)
            .map_or(path, |rest| if rest.is_empty() { "/" } else { rest })
    } else {
        path
    };
    options.exclude_metrics_paths.iter().any(|p| p == stripped)
}

/// What the access log line and the metrics of one request need, gathered as the request goes
/// (header values are kept as they came, and rendered only when the line is written).
#[derive(Debug)]
struct RequestRecord {
    started: Instant,
    /// The `Host` header as it came (a reference, not a copy); without one the host is the
    /// URI's authority (`uri` below).
    host_header: Option<HeaderValue>,
    port: u16,
    uri: Uri,
    request_id: RequestId,
    method: Method,
    req_content_length: i64,
    req_content_type: Option<HeaderValue>,
    remote_addr: Option<HeaderValue>,
    client_ip: IpText,
    client_port: u16,
    user_agent: Option<HeaderValue>,
    version: Version,
    scheme: &'static str,
    /// `req_<name>` / `resp_<name>` fields for the configured headers.
    headers: Vec<(String, String)>,
    service: Option<Arc<Service>>,
    target: Option<Arc<Target>>,
    status: u16,
    resp_content_type: Option<HeaderValue>,
    metrics_excluded: bool,
}

/// The request's ID: the client's `X-Request-ID`, or the one made for it.
#[derive(Debug)]
enum RequestId {
    Header(HeaderValue),
    Generated([u8; 36]),
}

impl RequestId {
    fn as_str(&self) -> &str {
        match self {
            Self::Header(value) => header_str(Some(value)),
            Self::Generated(text) => std::str::from_utf8(text).unwrap_or_default(),
        }
    }
}

fn header_str(value: Option<&HeaderValue>) -> &str {
    value.and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// `HTTP/1.1` etc., as `Version`'s `Debug` writes it.
fn proto(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

impl RequestRecord {
    /// The request's host, port removed.
    fn host(&self) -> &str {
        crate::service::host_of(self.host_header.as_ref(), &self.uri)
    }

    fn new(
        req: &Request<Body>,
        conn: &ConnInfo,
        request_id: RequestId,
        service: Option<Arc<Service>>,
        started: Instant,
    ) -> Self {
        let headers = req.headers();
        let content_length: i64 = header_str(headers.get(header::CONTENT_LENGTH))
            .parse()
            .unwrap_or_else(|_| {
                if headers.contains_key(header::TRANSFER_ENCODING) {
                    -1
                } else {
                    0
                }
            });
        Self {
            started,
            host_header: headers.get(header::HOST).cloned(),
            port: conn.port,
            uri: req.uri().clone(),
            request_id,
            method: req.method().clone(),
            req_content_length: content_length,
            req_content_type: headers.get(header::CONTENT_TYPE).cloned(),
            remote_addr: headers.get(X_FORWARDED_FOR).cloned(),
            client_ip: conn.client_ip_rendered(),
            client_port: conn.client_port,
            user_agent: headers.get(header::USER_AGENT).cloned(),
            version: req.version(),
            scheme: conn.scheme(),
            headers: Vec::new(),
            service,
            target: None,
            status: 0,
            resp_content_type: None,
            metrics_excluded: false,
        }
    }

    fn service_name(&self) -> &str {
        self.service.as_ref().map_or("", |s| s.name.as_str())
    }

    fn add_headers(&mut self, prefix: &str, headers: &http::HeaderMap, names: &[String]) {
        for name in names {
            let values: Vec<&str> = headers
                .get_all(name.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            self.headers
                .push((log::header_field(prefix, name), values.join(",")));
        }
    }

    fn finish(self, status: u16, bytes: u64) {
        let duration = self.started.elapsed();
        if log::active() {
            let client_addr = self.client_ip.as_str();
            let remote_addr = match header_str(self.remote_addr.as_ref()) {
                "" => client_addr,
                xff => xff,
            };
            let mut line = log::Line::new("INFO", "Request");
            line.str_at(b",\"host\":", self.host())
                .int_at(b",\"port\":", u64::from(self.port))
                .str_at(b",\"path\":", self.uri.path())
                .str_at(b",\"request_id\":", self.request_id.as_str())
                .str_at(b",\"method\":", self.method.as_str())
                .int_at(b",\"req_content_length\":", self.req_content_length)
                .str_at(
                    b",\"req_content_type\":",
                    header_str(self.req_content_type.as_ref()),
                )
                .str_at(b",\"remote_addr\":", remote_addr)
                .str_at(b",\"client_addr\":", client_addr)
                .str_at(
                    b",\"client_port\":",
                    itoa::Buffer::new().format(self.client_port),
                )
                .str_at(b",\"user_agent\":", header_str(self.user_agent.as_ref()))
                .str_at(b",\"proto\":", proto(self.version))
                .str_at(b",\"scheme\":", self.scheme)
                .str_at(b",\"query\":", self.uri.query().unwrap_or_default());
            for (key, value) in &self.headers {
                line.str(key, value);
            }
            line.int_at(b",\"status\":", u64::from(status))
                .str_at(b",\"service\":", self.service_name())
                .str_at(
                    b",\"target\":",
                    self.target.as_ref().map_or("", |t| t.address.as_str()),
                )
                .int_at(
                    b",\"duration\":",
                    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX),
                )
                .int_at(b",\"resp_content_length\":", bytes)
                .str_at(
                    b",\"resp_content_type\":",
                    header_str(self.resp_content_type.as_ref()),
                );
            line.emit();
        }
        if !self.metrics_excluded {
            let m = metrics::global();
            let service = self.service_name();
            m.in_flight(service, -1);
            m.observe(service, self.method.as_str(), status, duration);
        }
    }
}

/// Logs 499 when the client goes away before the response starts.
struct PendingLog(Option<RequestRecord>);

impl Drop for PendingLog {
    fn drop(&mut self) {
        if let Some(record) = self.0.take() {
            record.finish(499, 0);
        }
    }
}

/// Counts the bytes sent and logs the request when the response body ends or is dropped.
struct LoggedBody {
    inner: Body,
    bytes: u64,
    record: Option<RequestRecord>,
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            let status = record.status;
            record.finish(status, self.bytes);
        }
    }
}

impl HttpBody for LoggedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let result = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &result
            && let Some(data) = frame.data_ref()
        {
            self.bytes += data.len() as u64;
        }
        result
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
