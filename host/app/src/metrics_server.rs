//! `/metrics` (Prometheus/OpenMetrics text) and `/health` over plain HTTP/1.1. `/health`
//! says the process is up (200; 503 once shutting down), how many shards it holds, and each
//! sink's endpoints with their state, so a dead indexer or collector shows there before
//! anyone reads the metrics.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Serves until `shutdown`; `/health` answers 503 once shutdown began.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics listener accept failed");
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let metrics = metrics.clone();
                let shutdown = shutdown.clone();
                async move { Ok::<_, std::convert::Infallible>(respond(&req, &metrics, &shutdown)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The `/health` body: `{"status":"ok","shards":N,"sinks":[{"name",…,"endpoints":[…]}]}`.
fn health(metrics: &Metrics) -> String {
    let shards = metrics
        .totals
        .shards
        .load(std::sync::atomic::Ordering::Relaxed);
    let sinks: Vec<serde_json::Value> = metrics
        .sinks()
        .iter()
        .map(|v| {
            let endpoints: Vec<serde_json::Value> = v
                .sink
                .endpoints()
                .into_iter()
                .map(|e| {
                    serde_json::json!({
                        "endpoint": e.endpoint,
                        "state": e.state.as_str(),
                        "in_flight": e.in_flight,
                    })
                })
                .collect();
            serde_json::json!({ "name": v.name, "endpoints": endpoints })
        })
        .collect();
    serde_json::json!({ "status": "ok", "shards": shards, "sinks": sinks }).to_string()
}

fn respond(
    req: &Request<Incoming>,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        (&Method::GET, "/health") if shutdown.is_cancelled() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "application/json",
            r#"{"status":"shutting_down"}"#.to_owned(),
        ),
        (&Method::GET, "/health") => (StatusCode::OK, "application/json", health(metrics)),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "try /metrics or /health\n".to_owned(),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}
