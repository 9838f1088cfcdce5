//! Prometheus metrics, served as OpenMetrics text at `/metrics`.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `augur_switches_connected` | | switches past the OpenFlow handshake now |
//! | `augur_switch_connections_total` | `transport` | connections accepted (`tcp`, `ssl`) |
//! | `augur_switch_disconnects_total` | `reason` | connections ended, by why |
//! | `augur_openflow_messages_sent_total` | `type` | messages augur sent for policy work (`flow_mod`, `bundle_add`, ...) |
//! | `augur_openflow_messages_received_total` | `type` | replies and asynchronous messages augur handled |
//! | `augur_errors_total` | `type` | OpenFlow errors by OpenFlow error type (`bad_match`, ...) and local failures (`timeout`, `tls_handshake`, ...) |
//! | `augur_flows_installed` | `bridge` | augur's flows on the bridge after the last update |
//! | `augur_meters_installed` | `bridge` | augur's meters on the bridge after the last update |
//! | `augur_flow_changes_total` | `bridge`, `change` | flows added and deleted |
//! | `augur_apply_seconds` | `bridge` | time to bring a bridge to a policy version: dump, diff, bundle (histogram) |
//! | `augur_policy_version` | | the policy version in force |
//! | `augur_policy_loads_total` | `source`, `result` | reloads of the policy and inventory, and compilations |
//! | `augur_denied_packets_sampled_total` | `bridge`, `reason` | denied packets the switches sampled to augur |

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A label set of one label, `type`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    /// The type.
    pub r#type: String,
}

/// A label set of one label, `bridge`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BridgeLabel {
    /// The bridge's name.
    pub bridge: String,
}

/// `bridge` and `change` (`add`, `delete`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChangeLabels {
    /// The bridge's name.
    pub bridge: String,
    /// `add` or `delete`.
    pub change: String,
}

/// `bridge` and `reason`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DenyLabels {
    /// The bridge's name.
    pub bridge: String,
    /// The deny reason (`no_rule`, `spoofed`, ...).
    pub reason: String,
}

/// `source` and `result`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoadLabels {
    /// `policy`, `inventory` or `compile`.
    pub source: String,
    /// `ok` or `error`.
    pub result: String,
}

/// `transport`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabel {
    /// `tcp` or `ssl`.
    pub transport: String,
}

/// `reason`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why.
    pub reason: String,
}

type HistogramFamily = Family<BridgeLabel, Histogram, fn() -> Histogram>;

/// Every metric the daemon keeps.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Switches past the handshake.
    pub switches_connected: Gauge,
    /// Connections accepted.
    pub connections: Family<TransportLabel, Counter>,
    /// Connections ended.
    pub disconnects: Family<ReasonLabel, Counter>,
    /// Messages sent.
    pub messages_sent: Family<TypeLabel, Counter>,
    /// Messages received.
    pub messages_received: Family<TypeLabel, Counter>,
    /// Errors.
    pub errors: Family<TypeLabel, Counter>,
    /// augur's flows per bridge.
    pub flows_installed: Family<BridgeLabel, Gauge>,
    /// augur's meters per bridge.
    pub meters_installed: Family<BridgeLabel, Gauge>,
    /// Flow adds and deletes.
    pub flow_changes: Family<ChangeLabels, Counter>,
    /// Time to apply a version.
    pub apply_seconds: HistogramFamily,
    /// The version in force.
    pub policy_version: Gauge,
    /// Loads and compilations.
    pub policy_loads: Family<LoadLabels, Counter>,
    /// Sampled denied packets.
    pub denied_sampled: Family<DenyLabels, Counter>,
}

fn apply_histogram() -> Histogram {
    // 1 ms to about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh set, registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("augur");
        let m = Metrics {
            switches_connected: Gauge::default(),
            connections: Family::default(),
            disconnects: Family::default(),
            messages_sent: Family::default(),
            messages_received: Family::default(),
            errors: Family::default(),
            flows_installed: Family::default(),
            meters_installed: Family::default(),
            flow_changes: Family::default(),
            apply_seconds: Family::new_with_constructor(apply_histogram),
            policy_version: Gauge::default(),
            policy_loads: Family::default(),
            denied_sampled: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "switches_connected",
            "Switches past the OpenFlow handshake",
            m.switches_connected.clone(),
        );
        registry.register(
            "switch_connections",
            "Switch connections accepted",
            m.connections.clone(),
        );
        registry.register(
            "switch_disconnects",
            "Switch connections ended, by reason",
            m.disconnects.clone(),
        );
        registry.register(
            "openflow_messages_sent",
            "OpenFlow messages sent for policy work, by type",
            m.messages_sent.clone(),
        );
        registry.register(
            "openflow_messages_received",
            "OpenFlow replies and asynchronous messages handled, by type",
            m.messages_received.clone(),
        );
        registry.register(
            "errors",
            "Errors: OpenFlow errors by OpenFlow error type, and local failures",
            m.errors.clone(),
        );
        registry.register(
            "flows_installed",
            "augur's flows on each bridge after its last update",
            m.flows_installed.clone(),
        );
        registry.register(
            "meters_installed",
            "augur's meters on each bridge after its last update",
            m.meters_installed.clone(),
        );
        registry.register(
            "flow_changes",
            "Flows added and deleted",
            m.flow_changes.clone(),
        );
        registry.register_with_unit(
            "apply",
            "Time to bring a bridge to a policy version (dump, diff, apply)",
            prometheus_client::registry::Unit::Seconds,
            m.apply_seconds.clone(),
        );
        registry.register(
            "policy_version",
            "The policy version in force",
            m.policy_version.clone(),
        );
        registry.register(
            "policy_loads",
            "Policy and inventory loads and compilations, by result",
            m.policy_loads.clone(),
        );
        registry.register(
            "denied_packets_sampled",
            "Denied packets sampled to the controller, by bridge and deny reason",
            m.denied_sampled.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts an error of `kind`.
    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&TypeLabel {
                r#type: kind.to_owned(),
            })
            .inc();
    }

    /// Counts `n` messages of `kind` sent.
    pub fn sent(&self, kind: &str, n: usize) {
        self.messages_sent
            .get_or_create(&TypeLabel {
                r#type: kind.to_owned(),
            })
            .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
    }

    /// Counts one message of `kind` received.
    pub fn received(&self, kind: &str) {
        self.messages_received
            .get_or_create(&TypeLabel {
                r#type: kind.to_owned(),
            })
            .inc();
    }

    /// Counts a load of `source` with its result.
    pub fn load(&self, source: &str, ok: bool) {
        self.policy_loads
            .get_or_create(&LoadLabels {
                source: source.to_owned(),
                result: if ok { "ok" } else { "error" }.to_owned(),
            })
            .inc();
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            // Writing to a String cannot fail; if the encoder does, say so
            // in the exposition rather than serving half of it.
            text.clear();
            let _ = writeln!(text, "# augur: the metrics could not be encoded");
        }
        text
    }
}

/// Keeps `augur_switches_connected` counting one switch while it lives.
#[derive(Debug)]
pub struct ConnectedGuard(Arc<Metrics>);

impl ConnectedGuard {
    /// Counts a switch in.
    pub fn new(metrics: Arc<Metrics>) -> ConnectedGuard {
        metrics.switches_connected.inc();
        ConnectedGuard(metrics)
    }
}

impl Drop for ConnectedGuard {
    fn drop(&mut self) {
        self.0.switches_connected.dec();
    }
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `/metrics` (and `/healthz`) on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                tracing::warn!("metrics endpoint: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let service = hyper::service::service_fn(move |request| {
                let metrics = metrics.clone();
                async move { Ok::<_, std::convert::Infallible>(respond(&request, &metrics)) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(io, service);
            tokio::select! {
                result = connection => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, "metrics connection: {e}");
                    }
                }
                () = shutdown.cancelled() => {}
            }
        });
    }
}

fn respond<B>(request: &Request<B>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, kind: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = hyper::header::HeaderValue::from_str(kind) {
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, value);
        }
        response
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET\n".into(),
        );
    }
    match request.uri().path() {
        "/metrics" => reply(StatusCode::OK, OPENMETRICS, metrics.encode()),
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "augur serves /metrics and /healthz\n".into(),
        ),
    }
}

/// Binds the metrics endpoint.
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_in_the_exposition() {
        let m = Metrics::new();
        m.error("timeout");
        m.sent("flow_mod", 3);
        m.flows_installed
            .get_or_create(&BridgeLabel {
                bridge: "br0".into(),
            })
            .set(12);
        m.apply_seconds
            .get_or_create(&BridgeLabel {
                bridge: "br0".into(),
            })
            .observe(0.02);
        let text = m.encode();
        for needle in [
            "augur_switches_connected 0",
            "augur_errors_total{type=\"timeout\"} 1",
            "augur_openflow_messages_sent_total{type=\"flow_mod\"} 3",
            "augur_flows_installed{bridge=\"br0\"} 12",
            "augur_apply_seconds_count{bridge=\"br0\"} 1",
            "augur_apply_seconds_bucket{le=\"0.032\",bridge=\"br0\"} 1",
            "# EOF",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
    }
}
