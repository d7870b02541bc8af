//! `swing probe`: watch a site the way a client reaches it and report outages.
//!
//! `swing probe SITE (--address IP | --dns SERVER:PORT) [--port 443] [--ca-file PEM]
//! [--client-id ID --client-secret REF] [--interval-ms 50] [--duration 60s] [--output text|json]`
//!
//! Parses, starts the prober library (`swing_providers::probe`), stops after `--duration`
//! or Ctrl-C, and prints the report through the run's progress printer (measured downtime = longest outage, who answered).
//! The client secret is a reference (`${env:NAME}` or `${file:PATH}`), resolved by the
//! wiring like every other secret. Exit codes: 0 no failed probe; 1 failures or an error.
//! Must not: hold probing logic (the library does).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use swing_providers::probe::{Credentials, ProbeConfig, Prober, Route};
use swing_schema::{DurationSpec, SecretRef};

use crate::exit::{CliError, CliResult, Exit};
use crate::views::Output;
use crate::views::progress::Progress;

/// Arguments of `swing probe`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// The site hostname (URL host, TLS server name).
    pub site: String,
    /// Connect to this address (a shared IP or a NAT public address).
    #[arg(long, conflicts_with = "dns", required_unless_present = "dns")]
    pub address: Option<IpAddr>,
    /// Resolve the site through this DNS server (IP:PORT), caching answers for their TTL.
    #[arg(long)]
    pub dns: Option<SocketAddr>,
    #[arg(long, default_value_t = 443)]
    pub port: u16,
    /// CA certificate (PEM) to trust instead of the system roots.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// API account to identify the answering appliance (needs --client-secret).
    #[arg(long, requires = "client_secret")]
    pub client_id: Option<String>,
    /// Secret reference of the API account: `${env:NAME}` or `${file:PATH}`.
    #[arg(long, requires = "client_id")]
    pub client_secret: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub interval_ms: u64,
    /// How long to probe (`30s`, `5m`); default until Ctrl-C.
    #[arg(long)]
    pub duration: Option<String>,
    /// `text` or `json`.
    #[arg(long, default_value = "text")]
    pub output: String,
}

/// Runs `swing probe`.
pub fn run(args: &ProbeArgs) -> CliResult {
    run_inner(args).map_err(CliError::msg)
}

fn run_inner(args: &ProbeArgs) -> Result<Exit, String> {
    let output = match args.output.as_str() {
        "text" => Output::Human,
        "json" => Output::Json,
        other => return Err(format!("--output must be text or json, not {other:?}")),
    };
    let route = match (args.address, args.dns) {
        (Some(ip), _) => Route::Address(ip),
        (None, Some(server)) => Route::Dns { server },
        (None, None) => return Err("give --address or --dns".into()),
    };
    let duration = match &args.duration {
        Some(d) => Some(
            DurationSpec::parse(d)
                .map_err(|e| format!("--duration {d:?}: {e}"))?
                .as_std(),
        ),
        None => None,
    };
    let mut cfg = ProbeConfig::new(args.site.clone(), args.port, route);
    cfg.ca_file = args.ca_file.clone();
    cfg.interval = Duration::from_millis(args.interval_ms.max(1));
    if let (Some(id), Some(secret)) = (&args.client_id, &args.client_secret) {
        let r = SecretRef::parse(secret).map_err(|_| {
            "--client-secret must be a reference: ${env:NAME} or ${file:PATH}".to_string()
        })?;
        let value = crate::wiring::resolve(&r, std::path::Path::new("."), "--client-secret")
            .map_err(|e| e.to_string())?;
        cfg.credentials = Some(Credentials {
            client_id: id.clone(),
            client_secret: value,
        });
    }
    let rt = crate::runtime().map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let report = rt.block_on(async move {
        let probe = Prober::start(cfg).map_err(|e| e.to_string())?;
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        Ok::<_, String>(probe.stop().await)
    })?;
    Progress::new(output, false)
        .result(&report, || report.summary())
        .map_err(|e| e.to_string())?;
    Ok(if report.failures == 0 {
        Exit::Ok
    } else {
        Exit::Error
    })
}
