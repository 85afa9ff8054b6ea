//! `/metrics` (Prometheus/OpenMetrics text) and `/health` over plain HTTP/1.1.

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
        (&Method::GET, "/health") => {
            let shards = metrics
                .totals
                .shards
                .load(std::sync::atomic::Ordering::Relaxed);
            (
                StatusCode::OK,
                "application/json",
                format!(r#"{{"status":"ok","shards":{shards}}}"#),
            )
        }
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
