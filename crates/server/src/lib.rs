//! mamori's service: the HTTP API and console, Prometheus `/metrics`, and the scheduler that
//! expires, lapses and sweeps on time.
//!
//! Governance and the store are synchronous (SQLite); handlers and the scheduler call them on
//! tokio's blocking pool so the listener stays responsive.
#![deny(missing_docs)]

pub mod auth;
mod console;
mod controllers;
mod imports;
pub mod metrics_names;
mod notice;
mod openapi;
mod public;
mod scheduler;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use mamori_core::actuator::Actuator;
use mamori_core::governance::Governance;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub use scheduler::{Scheduler, reconcile};

use mamori_notify::{NoticePages, Notifier};

/// Errors starting or running the service.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address couldn't be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("server error: {0}")]
    Serve(#[from] std::io::Error),
    /// Governance failed at startup (reconciliation).
    #[error(transparent)]
    Governance(#[from] mamori_core::governance::GovernanceError),
    /// Notifications couldn't be set up (SMTP relay, link secret, templates).
    #[error("notifications: {0}")]
    Notify(#[from] mamori_notify::NotifyError),
}

/// Shared state of handlers.
#[derive(Clone)]
pub struct AppState {
    pub(crate) gov: Arc<Governance>,
    pub(crate) metrics: PrometheusHandle,
    /// API tokens (bearer token → person). Tokens are secrets: never logged, never rendered.
    pub(crate) tokens: Arc<BTreeMap<String, String>>,
    /// The subscriber notice page (absent when the link secret is unusable: the page answers 503).
    pub(crate) notice: Option<Arc<NoticePages>>,
    /// People and their sessions.
    pub(crate) accounts: auth::Accounts,
    /// Failed logins, per name and address.
    pub(crate) limiter: Arc<auth::LoginLimiter>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("tokens", &format_args!("<{} redacted>", self.tokens.len()))
            .finish_non_exhaustive()
    }
}

/// The process-wide Prometheus recorder (installed once).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed already (tests running several
            // servers in one process); the handle then renders what this recorder has.
            let _ = metrics::set_global_recorder(recorder);
            metrics_names::describe();
            handle
        })
        .clone()
}

/// Builds the router. The notice page's link secret comes from `[notify]` (the default file is
/// created on first use); if it is unusable the page answers 503 and the rest serves on.
pub fn router(gov: Arc<Governance>, tokens: BTreeMap<String, String>) -> Router {
    let notice = match NoticePages::from_config(gov.config()) {
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            tracing::error!(error = %e, "the subscriber notice page is unavailable");
            None
        }
    };
    let accounts = auth::Accounts::new(gov.clone(), gov.config().server.session_ttl);
    let max_body = gov.config().server.max_body_bytes;
    let max_upload = gov.config().server.max_upload_bytes;
    let limiter = Arc::new(auth::LoginLimiter::new(std::time::Duration::from_secs(15 * 60), 5, 20));
    let state = AppState { gov, metrics: metrics_handle(), tokens: Arc::new(tokens), notice, accounts, limiter };
    console::routes()
        .route("/openapi.json", get(openapi::document))
        .route("/healthz", get(controllers::healthz))
        .route("/metrics", get(controllers::metrics))
        .route("/public/phone/advice", get(public::advice))
        .route("/public/phone/fraud-destinations", get(public::fraud_destinations_html))
        .route("/public/phone/fraud-destinations.json", get(public::fraud_destinations_json))
        .route("/s/{token}", get(notice::page).post(notice::submit))
        .merge(controllers::routes(max_upload))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Binds the listen address.
pub async fn bind(listen: SocketAddr) -> Result<tokio::net::TcpListener, ServerError> {
    tokio::net::TcpListener::bind(listen).await.map_err(|source| ServerError::Bind { addr: listen, source })
}

/// Runs the service on a bound listener until `shutdown` resolves: reconciles actuators with the store, starts the
/// scheduler, serves HTTP.
pub async fn serve(
    gov: Arc<Governance>,
    actuators: Vec<Arc<dyn Actuator>>,
    listener: tokio::net::TcpListener,
    tokens: BTreeMap<String, String>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let local = listener.local_addr()?;
    {
        let gov = gov.clone();
        let acts = actuators.clone();
        tokio::task::spawn_blocking(move || reconcile(&gov, &acts))
            .await
            .map_err(|e| ServerError::Serve(std::io::Error::other(e)))??;
    }
    // The link secret must be usable before subscribers are sent links to the page.
    NoticePages::from_config(gov.config()).map_err(ServerError::Notify)?;
    let notifier = Notifier::from_config(gov.clone())?;
    let scheduler = Scheduler::new(gov.clone(), actuators);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let notify_task = match notifier {
        Some(n) => Some(tokio::spawn(scheduler::run_notifier(n, gov.config().notify.poll, stop_rx.clone()))),
        None => {
            tracing::info!("no [notify] smtp_host: messages to subscribers wait in the outbox");
            None
        }
    };
    let sched = tokio::spawn(scheduler.run(stop_rx));
    tracing::info!(%local, "mamori listening (console at http://{local}/, metrics at /metrics)");
    let app = router(gov, tokens);
    let result = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop_tx.send(true);
    let _ = sched.await;
    if let Some(t) = notify_task {
        let _ = t.await;
    }
    result.map_err(ServerError::Serve)
}
