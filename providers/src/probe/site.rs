//! The apply's own prober: the engine's [`ClientProbe`] over [`Prober`], and how a plan's
//! clients reach its site ([`route_for`]).
//!
//! `swing apply` watches every step that can take the site down (a switch, a promotion, the
//! install of the appliance that serves the site) from its start until it is verified; each
//! watch is one [`Prober`] run, so its report is that step's outage alone. When a step is
//! verified while the client still sees the site down (the appliance answers the API before
//! the client's route reaches it), the watch goes on until the site answers again, bounded by
//! [`SETTLE`], so the outage is measured to its end.
//!
//! Owns: the route a plan's clients take, the watch per step. Must not: send anything but the
//! prober's read-only health and identification calls, or fail an apply (a watch that cannot
//! start is reported by the engine as unprobed, the step runs as it would have).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use swing_engine::provider::{
    ClientDowntime, ClientProbe, ErrorKind, ProbeSpan, ProviderError, ProviderResult,
};
use swing_schema::{Plan, Provider, Switch};

use super::{ProbeConfig, ProbeHandle, Prober, Route};

/// How long a watch goes on after its step was verified while the client still sees the site
/// down.
pub const SETTLE: Duration = Duration::from_secs(10);

/// How a plan's clients reach its site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRoute {
    pub route: Route,
    pub port: u16,
    /// The appliance serving the site before the change (its CA and API account identify
    /// the answering appliance).
    pub serving: String,
}

/// How the plan's clients reach the site, and on which port: the shared IP; the DNS record
/// through the `rfc2136` provider's server (with the client's TTL cache); the NAT rule's
/// public address; for a single appliance or an unnamed server, the appliance's address or
/// the system resolver.
pub fn route_for(plan: &Plan) -> Result<SiteRoute, String> {
    let serving = plan
        .failover
        .as_ref()
        .map(|f| f.primary.as_str())
        .or(plan.migration.as_ref().map(|m| m.from.as_str()))
        .or(plan.appliances.keys().next().map(String::as_str))
        .ok_or("the plan names no appliance")?;
    let app = plan
        .appliances
        .get(serving)
        .ok_or_else(|| format!("appliance {serving} is not defined"))?;
    let switch = plan
        .failover
        .as_ref()
        .and_then(|f| f.switch.as_ref())
        .or(plan.migration.as_ref().map(|m| &m.switch));
    let own = || match app.address.parse::<IpAddr>() {
        Ok(ip) => Route::Address(ip),
        Err(_) => Route::System,
    };
    let (route, port) = match switch {
        Some(Switch::SharedIp { address }) => {
            let ip = address
                .parse::<IpAddr>()
                .map_err(|_| format!("the shared IP `{address}` is not an IP address"))?;
            (Route::Address(ip), app.port)
        }
        Some(Switch::Nat { public, .. }) => {
            let sa = public
                .parse::<SocketAddr>()
                .map_err(|_| format!("the NAT public address `{public}` is not address:port"))?;
            (Route::Address(sa.ip()), sa.port())
        }
        Some(Switch::Dns { provider, .. }) => {
            let server = match plan.providers.get(provider) {
                Some(Provider::Rfc2136(c)) => c
                    .server
                    .parse::<SocketAddr>()
                    .ok()
                    .or_else(|| c.server.parse::<IpAddr>().ok().map(|ip| (ip, 53).into())),
                _ => None,
            };
            match server {
                Some(server) => (Route::Dns { server }, app.port),
                None => (Route::System, app.port),
            }
        }
        None => (own(), app.port),
    };
    Ok(SiteRoute {
        route,
        port,
        serving: serving.to_owned(),
    })
}

/// The engine's prober: one [`Prober`] run per watched step, with this configuration.
#[derive(Debug, Clone)]
pub struct SiteProbe {
    config: ProbeConfig,
    settle: Duration,
}

impl SiteProbe {
    pub fn new(config: ProbeConfig) -> SiteProbe {
        SiteProbe {
            config,
            settle: SETTLE,
        }
    }

    /// The configuration each watch starts with.
    pub fn config(&self) -> &ProbeConfig {
        &self.config
    }
}

#[async_trait]
impl ClientProbe for SiteProbe {
    async fn start(&self, labels: &BTreeMap<String, String>) -> ProviderResult<Box<dyn ProbeSpan>> {
        let mut config = self.config.clone();
        config
            .labels
            .extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        let interval = config.interval;
        let handle = Prober::start(config)
            .map_err(|e| ProviderError::new(ErrorKind::Invalid, format!("the prober: {e}")))?;
        Ok(Box::new(Watch {
            handle,
            settle: self.settle,
            interval,
        }))
    }
}

/// One step's watch.
struct Watch {
    handle: ProbeHandle,
    settle: Duration,
    interval: Duration,
}

#[async_trait]
impl ProbeSpan for Watch {
    async fn stop(self: Box<Self>, settle: bool) -> ClientDowntime {
        let until = tokio::time::Instant::now() + self.settle;
        // The site still down for the client: wait for its next healthy answer (each probe
        // is bounded by its timeout, so this ends), at most `settle`.
        while settle
            && self.handle.last().is_some_and(|r| !r.ok)
            && tokio::time::Instant::now() < until
        {
            tokio::time::sleep(self.interval).await;
        }
        self.handle.stop().await.client_downtime()
    }
}
