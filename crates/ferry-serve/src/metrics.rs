//! `GET /metrics` ([`Metrics`]): what `ferry serve` does, in the Prometheus text format
//! (0.0.4), through the Prometheus project's `prometheus-client`.
//!
//! Every label value comes from a small fixed set, never from a client: the route is one of
//! [`ROUTES`] (not the path, which is untrusted and unbounded), the method one of
//! [`METHODS`] (anything else is `other`), the status a code the server itself answered. So
//! the number of series is bounded however many distinct paths clients send.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `ferry_serve_http_requests_total` | counter | `method`, `route`, `status` |
//! | `ferry_serve_http_sent_bytes_total` | counter | `route` (body bytes sent) |
//! | `ferry_serve_http_request_duration_seconds` | histogram | `route` (until the body is sent) |
//! | `ferry_serve_connections_open` | gauge | `state`: `pending` (no request yet), `active` |
//! | `ferry_serve_connections_refused_total` | counter | `reason`: `per_client`, `busy` (503) |
//! | `ferry_serve_connections_closed_total` | counter | `reason`: `evicted_pending`, `evicted_idle`, `timeout_pending`, `timeout_idle` |
//! | `ferry_serve_blobs` | gauge | `state`: `verified`, `pending`, `withdrawn` |
//! | `ferry_serve_blob_bytes` | gauge | `state`: `verified`, `pending`, `withdrawn` |
//! | `ferry_serve_images` | gauge | (images served) |
//!
//! With `--htpasswd`, `/metrics` asks for the same login as the registry API.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::check::Checks;
use super::conns::Table;

/// The route labels: one per kind of request, whatever its path.
pub const ROUTES: [&str; 10] = [
    "base",
    "catalog",
    "tags",
    "manifest",
    "referrers",
    "blob",
    "upload",
    "status",
    "metrics",
    "other",
];

/// The method labels; any other method is `other`.
pub const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "other"];

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The method's label: one of [`METHODS`].
pub fn method_label(method: &hyper::Method) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == method.as_str())
        .copied()
        .unwrap_or("other")
}

/// The metrics of one server.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    sent: Family<RouteLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
    table: Arc<OnceLock<Arc<Table>>>,
}

/// What is read at each scrape: the connection table and the checks.
struct Live {
    checks: Arc<Checks>,
    images: usize,
    table: Arc<OnceLock<Arc<Table>>>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Live")
    }
}

fn gauges(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: &[(&'static str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Gauge,
    )?;
    for (state, v) in values {
        let labels = StateLabels { state };
        let g = ConstGauge::new(i64::try_from(*v).unwrap_or(i64::MAX));
        g.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn counters(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: &[(&'static str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for (reason, v) in values {
        let labels = ReasonLabels { reason };
        ConstCounter::new(*v).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let p = self.checks.progress();
        gauges(
            &mut encoder,
            "ferry_serve_blobs",
            "Blobs served, by the state of their check against the digest.",
            &[
                ("verified", p.verified_blobs),
                ("pending", p.pending_blobs()),
                ("withdrawn", p.withdrawn_blobs),
            ],
        )?;
        gauges(
            &mut encoder,
            "ferry_serve_blob_bytes",
            "Bytes of the blobs served, by the state of their check.",
            &[
                ("verified", p.verified_bytes),
                ("pending", p.total_bytes.saturating_sub(p.checked_bytes())),
                ("withdrawn", p.withdrawn_bytes),
            ],
        )?;
        let images = ConstGauge::new(i64::try_from(self.images).unwrap_or(i64::MAX));
        images.encode(encoder.encode_descriptor(
            "ferry_serve_images",
            "Images served.",
            None,
            images.metric_type(),
        )?)?;
        let Some(table) = self.table.get() else {
            return Ok(());
        };
        let (pending, active) = table.open();
        gauges(
            &mut encoder,
            "ferry_serve_connections_open",
            "Connections open: pending (no request yet) and active.",
            &[("pending", pending as u64), ("active", active as u64)],
        )?;
        let c = &table.counters;
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        counters(
            &mut encoder,
            "ferry_serve_connections_refused",
            "Connections refused for lack of slots: per_client (--max-connections-per-client), busy (503, every --max-connections slot transferring).",
            &[
                ("per_client", n(&c.refused_per_client)),
                ("busy", n(&c.busy)),
            ],
        )?;
        counters(
            &mut encoder,
            "ferry_serve_connections_closed",
            "Connections closed by the server: evicted to make room, or past their deadline.",
            &[
                ("evicted_pending", n(&c.evicted_pending)),
                ("evicted_idle", n(&c.evicted_idle)),
                ("timeout_pending", n(&c.timed_out_pending)),
                ("timeout_idle", n(&c.timed_out_idle)),
            ],
        )?;
        Ok(())
    }
}

impl Metrics {
    /// The metrics of a server whose checks are `checks`, serving `images` images.
    pub fn new(checks: Arc<Checks>, images: usize) -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let sent = Family::<RouteLabels, Counter>::default();
        // 1 ms to about 65 s: a manifest takes milliseconds, a layer over a slow link minutes.
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 4.0, 9))
        });
        registry.register(
            "ferry_serve_http_requests",
            "Requests answered, by method, route and status.",
            requests.clone(),
        );
        registry.register(
            "ferry_serve_http_sent_bytes",
            "Body bytes sent, by route.",
            sent.clone(),
        );
        registry.register(
            "ferry_serve_http_request_duration_seconds",
            "From the request to the end of its response body, by route.",
            duration.clone(),
        );
        let table = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(Live {
            checks,
            images,
            table: table.clone(),
        }));
        Metrics {
            registry,
            requests,
            sent,
            duration,
            table,
        }
    }

    /// Reads the open connections and the refusals from `table` from now on.
    pub fn watch(&self, table: Arc<Table>) {
        let _ = self.table.set(table);
    }

    /// Counts one request whose response body is done.
    pub fn observe(
        &self,
        method: &'static str,
        route: &'static str,
        status: u16,
        bytes: u64,
        seconds: f64,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
        let by_route = RouteLabels { route };
        self.sent.get_or_create(&by_route).inc_by(bytes);
        self.duration.get_or_create(&by_route).observe(seconds);
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String does not fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests;
