//! `swing-sim`: run one simulated B Series appliance from the command line.
//!
//! Owns: argument parsing (clap), printing the one JSON ready line on stdout, and waiting for
//! Ctrl-C / SIGTERM. Everything else is the library.
//!
//! Must not: print anything else on stdout (tools parse the ready line); print secrets.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use swing_sim::{
    Dialect, FAULT_NAMES, Faults, JumpClientGroup, RateLimit, Role, SimConfig, Simulator,
};

const FAULT_HELP: &str = "Fault injection, repeatable: install-fails, install-hangs, http-5xx=RATE, \
latency=MS, reset=RATE, token-down, token-expiry=SECONDS, clock-skew=SECONDS, cert-expiring=DAYS, \
key-mismatch, slow-sync=FACTOR, clients-never-return. Change at run time with POST /_sim/faults.";

/// A simulated BeyondTrust PRA B Series appliance: the vendor's HTTPS APIs (OAuth, command
/// API, backup, configuration API), failover pair behaviour, shared IPs, installs and fault
/// injection, plus /_sim automation endpoints (see docs/simulator.md).
///
/// When listening it prints one line on stdout:
/// {"ready":true,"name":"a","url":"https://127.0.0.11:8443"}
#[derive(Parser, Debug)]
#[command(name = "swing-sim", after_help = FAULT_HELP)]
struct Args {
    /// Short name of this appliance (appears in the ready line, state and action log).
    #[arg(long)]
    name: String,
    /// Address to listen on (port 0 picks a free port; the ready line shows the bound one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Public site hostname (certificate SAN, check_health hostname).
    #[arg(long, default_value = "access.example.test")]
    site: String,
    /// The appliance's own host name (check_health's <appliance> text); default ip-A-B-C-D
    /// from the listen address.
    #[arg(long)]
    hostname: Option<String>,
    /// Command API dialect: bomgar (as recorded: <health_check>, bomgar.com namespace) or
    /// beyondtrust (newer: <check_health>, beyondtrust.com namespace).
    #[arg(long, default_value = "bomgar")]
    dialect: String,
    /// Change the API account's permissions, NAME=VALUE[,NAME=VALUE...] on top of the full
    /// recorded set, e.g. perm_command=read_only,perm_backup=0 (an empty value removes one).
    #[arg(long)]
    permissions: Option<String>,
    /// Requests per API account, PER_SECOND/PER_HOUR (vendor: 20/15000), or off.
    #[arg(long, default_value = "20/15000")]
    rate_limit: String,
    /// Installed software version.
    #[arg(long, default_value = "24.3.1")]
    version: String,
    /// Offer an update chain to this version: the base package, which unlocks the site package pra-VERSION.
    #[arg(long)]
    update_to: Option<String>,
    /// Name of the base package of the update chain.
    #[arg(long, default_value = "base-7.2.1")]
    base_package: String,
    /// Directory with ca.pem + ca.key; created when missing, reused when present (simulators sharing it share one CA).
    #[arg(long)]
    ca_dir: PathBuf,
    /// OAuth client id of the API account.
    #[arg(long)]
    client_id: String,
    /// OAuth client secret of the API account (prefer --client-secret-env).
    #[arg(
        long,
        conflicts_with = "client_secret_env",
        required_unless_present = "client_secret_env"
    )]
    client_secret: Option<String>,
    /// Read the client secret from this environment variable instead.
    #[arg(long)]
    client_secret_env: Option<String>,
    /// Start in a failover relationship with this role (needs --peer and --key).
    #[arg(long, value_parser = ["none", "primary", "backup"], default_value = "none")]
    role: String,
    /// The other appliance of the pair (IP:PORT).
    #[arg(long)]
    peer: Option<SocketAddr>,
    /// Inter-appliance communication pre-shared key.
    #[arg(long)]
    key: Option<String>,
    /// This appliance has this shared IP enabled: it also listens there, on the same port.
    #[arg(long)]
    shared_ip: Option<IpAddr>,
    /// Real seconds per simulated second (0.001: a 45-minute install takes 2.7 s).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Number of Jump Clients.
    #[arg(long, default_value_t = 0)]
    jump_clients: u32,
    /// More Jump Clients of a kind, KIND=COUNT[:needs-update] with KIND active-offline,
    /// passive, uninstalled or lost; repeatable.
    #[arg(long = "jump-client-group", value_name = "KIND=COUNT")]
    jump_client_groups: Vec<String>,
    /// Initial maximum number of concurrent Jump Client upgrades.
    #[arg(long, default_value_t = 100)]
    jump_client_throttle: u32,
    /// Days the served certificate stays valid (negative: already expired).
    #[arg(long, default_value_t = 365, allow_hyphen_values = true)]
    cert_valid_days: i64,
    /// Simulated duration of the site package install, seconds.
    #[arg(long, default_value_t = 2700.0)]
    install_seconds: f64,
    /// Simulated duration of the base package install, seconds.
    #[arg(long, default_value_t = 900.0)]
    base_install_seconds: f64,
    /// Data a sync transfers, MB (sync time is proportional).
    #[arg(long, default_value_t = 500.0)]
    data_mb: f64,
    /// Fault to inject, NAME[=VALUE]; repeatable. See below.
    #[arg(long = "fault", value_name = "NAME[=VALUE]")]
    faults: Vec<String>,
}

fn config(args: Args) -> Result<SimConfig, String> {
    let secret = match (args.client_secret, args.client_secret_env) {
        (Some(s), _) => s,
        (None, Some(var)) => {
            std::env::var(&var).map_err(|_| format!("environment variable {var} is not set"))?
        }
        (None, None) => return Err("--client-secret or --client-secret-env is required".into()),
    };
    let faults =
        Faults::parse_all(args.faults.iter().map(String::as_str)).map_err(|e| e.to_string())?;
    let mut c = SimConfig::new(args.name, args.ca_dir);
    c.listen = args.listen;
    c.site = args.site;
    c.hostname = args.hostname;
    c.dialect = args.dialect.parse::<Dialect>().map_err(|e| e.to_string())?;
    if let Some(p) = &args.permissions {
        c.permissions.apply_spec(p).map_err(|e| e.to_string())?;
    }
    c.rate_limit = parse_rate_limit(&args.rate_limit)?;
    c.jump_client_groups = args
        .jump_client_groups
        .iter()
        .map(|g| g.parse::<JumpClientGroup>().map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    c.version = args.version;
    c.update_to = args.update_to;
    c.base_package = args.base_package;
    c.client_id = args.client_id;
    c.client_secret = secret;
    c.role = args.role.parse::<Role>().map_err(|e| e.to_string())?;
    c.peer = args.peer;
    c.key = args.key;
    c.shared_ip = args.shared_ip;
    c.time_scale = args.time_scale;
    c.faults = faults;
    c.jump_clients = args.jump_clients;
    c.jump_client_throttle = args.jump_client_throttle;
    c.cert_valid_days = args.cert_valid_days;
    c.install_s = args.install_seconds;
    c.base_install_s = args.base_install_seconds;
    c.data_mb = args.data_mb;
    Ok(c)
}

fn parse_rate_limit(s: &str) -> Result<Option<RateLimit>, String> {
    if s == "off" {
        return Ok(None);
    }
    let bad = || format!("--rate-limit {s:?}: expected PER_SECOND/PER_HOUR or off");
    let (a, b) = s.split_once('/').ok_or_else(bad)?;
    Ok(Some(RateLimit {
        per_second: a.trim().parse().map_err(|_| bad())?,
        per_hour: b.trim().parse().map_err(|_| bad())?,
    }))
}

#[derive(serde::Serialize)]
struct Ready<'a> {
    ready: bool,
    name: &'a str,
    url: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("swing-sim: {e} (faults: {})", FAULT_NAMES.join(", "));
            return ExitCode::from(2);
        }
    };
    let sim = match Simulator::start(cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("swing-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    let line = serde_json::to_string(&Ready {
        ready: true,
        name: sim.name(),
        url: sim.url(),
    });
    match line {
        Ok(l) => println!("{l}"),
        Err(e) => {
            eprintln!("swing-sim: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("swing-sim: cannot watch SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    sim.shutdown().await;
    ExitCode::SUCCESS
}
