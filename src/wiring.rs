//! Wiring: the one place that builds concrete providers from a plan, and the one place that
//! resolves secret references (`${env:NAME}`, `${file:PATH}`) — into
//! [`swing_schema::SecretValue`] only, only when a provider or notifier is built (refresh,
//! apply).
//!
//! Owns: which provider type serves which resource, and secret resolution. Must not: print a
//! resolved secret or put one in an error (errors name the reference, never the value), act
//! on the world, or be called by `validate` / `plan --offline` (they need no secrets).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use swing_engine::refresh::Providers;
use swing_schema::{
    Notify, OperatorMode, Plan, Provider, SecretRef, SecretValue, Switch, ValueOrRef,
};

/// Why providers could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WiringError {
    #[error("secret {reference} (for {used_for}): environment variable {name} is not set")]
    EnvMissing {
        reference: String,
        used_for: String,
        name: String,
    },
    #[error("secret {reference} (for {used_for}): {source}")]
    FileUnreadable {
        reference: String,
        used_for: String,
        #[source]
        source: swing_engine::input_file::InputFileError,
    },
    #[error(
        "secret {reference} (for {used_for}): {path} is not UTF-8 text: a secret file holds the secret as text"
    )]
    FileNotText {
        reference: String,
        used_for: String,
        path: PathBuf,
    },
    #[error("secret {reference} (for {used_for}) is empty")]
    Empty { reference: String, used_for: String },
    #[error("provider `{name}` is not defined under `providers`")]
    UnknownProvider { name: String },
    #[error("provider `{name}` is of type {found}, but {used_for} needs {expected}")]
    WrongType {
        name: String,
        found: &'static str,
        expected: &'static str,
        used_for: String,
    },
    #[error("provider `{name}`: {message}")]
    Provider { name: String, message: String },
    #[error("{message}")]
    Notify { message: String },
    #[error("the client prober: {message} (`--no-probe` applies without measuring)")]
    Probe { message: String },
    #[error("the state store: {message}")]
    State { message: String },
}

/// What `--state` or the plan's `state` chose.
enum StateChoice {
    Local(Option<String>),
    Postgres {
        url: SecretValue,
        namespace: Option<String>,
        ca_file: Option<PathBuf>,
    },
}

/// The state store a command uses: `--state` over the plan's `state`, else the local files
/// (journal in `state_dir`, the site lock in the host-wide lock directory). With no plan
/// (`apply --resume` without a file) only `--state` can choose, in the default namespace.
pub fn store(
    plan: Option<&Plan>,
    base_dir: &Path,
    args: &crate::target::StateArgs,
    state_dir: &Path,
) -> Result<Arc<dyn swing_engine::apply::Store>, WiringError> {
    open_store(choose_store(plan, base_dir, args)?, state_dir)
}

/// The state stores of many sites (`swing fleet`): a local store per site (its own journal
/// directory), and one PostgreSQL store — one connection — shared by every site that names
/// the same database and namespace.
pub struct Stores {
    args: crate::target::StateArgs,
    /// SHA-256 of (URL, namespace, CA file) → the open store; the URL itself is not kept.
    shared: std::sync::Mutex<Vec<([u8; 32], SharedStore)>>,
}

type SharedStore = Arc<dyn swing_engine::apply::Store>;

impl Stores {
    pub fn new(args: crate::target::StateArgs) -> Stores {
        Stores {
            args,
            shared: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The store of one site.
    pub fn for_target(
        &self,
        t: &crate::target::Target,
    ) -> Result<Arc<dyn swing_engine::apply::Store>, WiringError> {
        let choice = choose_store(Some(&t.plan), &t.base_dir, &self.args)?;
        let StateChoice::Postgres {
            url,
            namespace,
            ca_file,
        } = &choice
        else {
            return open_store(choice, &t.state_dir);
        };
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(url.expose().as_bytes());
        h.update([0]);
        h.update(namespace.as_deref().unwrap_or_default().as_bytes());
        h.update([0]);
        h.update(
            ca_file
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        );
        let key: [u8; 32] = h.finalize().into();
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, s)) = shared.iter().find(|(k, _)| *k == key) {
            return Ok(s.clone());
        }
        let store = open_store(choice, &t.state_dir)?;
        shared.push((key, store.clone()));
        Ok(store)
    }
}

/// What `--state` or the plan's `state` chooses, its secret resolved.
fn choose_store(
    plan: Option<&Plan>,
    base_dir: &Path,
    args: &crate::target::StateArgs,
) -> Result<StateChoice, WiringError> {
    use swing_schema::StateBackend;
    let state_err = |message: String| WiringError::State { message };
    let from_plan = plan.and_then(|p| p.state.as_ref());
    let namespace = from_plan.and_then(|s| s.namespace()).map(str::to_owned);
    Ok(match args.state.as_deref().map(str::trim) {
        Some("local") => StateChoice::Local(namespace),
        Some(given) => {
            let url = if given.starts_with("${") {
                let r = SecretRef::parse(given).map_err(|e| state_err(format!("--state: {e}")))?;
                resolve(&r, Path::new("."), "--state")?
            } else if given.starts_with("postgres://") || given.starts_with("postgresql://") {
                SecretValue::new(given)
            } else {
                return Err(state_err(
                    "--state takes `local`, a `postgres://…` URL, or a secret reference to one (`${env:SWING_STATE_URL}`)".into(),
                ));
            };
            let ca_file = match from_plan {
                Some(StateBackend::Postgres { ca_file, .. }) => {
                    ca_file.as_ref().map(|c| base_dir.join(c))
                }
                _ => None,
            };
            StateChoice::Postgres {
                url,
                namespace,
                ca_file,
            }
        }
        None => match from_plan {
            None | Some(StateBackend::Local { .. }) => StateChoice::Local(namespace),
            Some(StateBackend::Postgres { url, ca_file, .. }) => StateChoice::Postgres {
                url: resolve(url, base_dir, "state.url")?,
                namespace,
                ca_file: ca_file.as_ref().map(|c| base_dir.join(c)),
            },
        },
    })
}

/// Opens the chosen store (a PostgreSQL store connects and migrates its schema).
fn open_store(
    choice: StateChoice,
    state_dir: &Path,
) -> Result<Arc<dyn swing_engine::apply::Store>, WiringError> {
    let state_err = |message: String| WiringError::State { message };
    let default_ns = swing_engine::apply::LockKey::DEFAULT_NAMESPACE;
    Ok(match choice {
        StateChoice::Local(namespace) => {
            let lock_dir = crate::target::lock_dir().map_err(state_err)?;
            Arc::new(swing_engine::apply::LocalStore {
                state_dir: state_dir.to_owned(),
                lock_dir,
                namespace: namespace.unwrap_or_else(|| default_ns.to_owned()),
            })
        }
        StateChoice::Postgres {
            url,
            namespace,
            ca_file,
        } => Arc::new(
            swing_providers::pg_state::PgStore::connect(
                &url,
                namespace.as_deref().unwrap_or(default_ns),
                ca_file.as_deref(),
            )
            .map_err(|e| state_err(e.to_string()))?,
        ),
    })
}

/// Resolves one secret reference. Relative `file:` paths are relative to `base_dir`;
/// one trailing newline is dropped. Errors never contain the value.
pub fn resolve(r: &SecretRef, base_dir: &Path, used_for: &str) -> Result<SecretValue, WiringError> {
    let reference = r.to_string();
    let value = match r {
        SecretRef::Env(name) => std::env::var(name).map_err(|_| WiringError::EnvMissing {
            reference: reference.clone(),
            used_for: used_for.to_owned(),
            name: name.clone(),
        })?,
        SecretRef::File(p) => {
            let path = base_dir.join(p);
            let file = swing_engine::input_file::read(&path).map_err(|source| {
                WiringError::FileUnreadable {
                    reference: reference.clone(),
                    used_for: used_for.to_owned(),
                    source,
                }
            })?;
            if file.readable_by_others() {
                // Like ssh with a private key: the secret works, but say so, with the fix.
                eprintln!(
                    "warning: secret {reference} (for {used_for}): {} is readable by others \
                     (mode {:04o}); run: chmod 600 {}",
                    path.display(),
                    file.mode,
                    path.display()
                );
            }
            let mut s = String::from_utf8(file.bytes).map_err(|_| WiringError::FileNotText {
                reference: reference.clone(),
                used_for: used_for.to_owned(),
                path: path.clone(),
            })?;
            if s.ends_with('\n') {
                s.pop();
                if s.ends_with('\r') {
                    s.pop();
                }
            }
            s
        }
    };
    if value.is_empty() {
        return Err(WiringError::Empty {
            reference,
            used_for: used_for.to_owned(),
        });
    }
    Ok(SecretValue::new(value))
}

fn provider<'a>(plan: &'a Plan, name: &str) -> Result<&'a Provider, WiringError> {
    plan.providers
        .get(name)
        .ok_or_else(|| WiringError::UnknownProvider {
            name: name.to_owned(),
        })
}

fn perr(name: &str, e: swing_engine::provider::ProviderError) -> WiringError {
    WiringError::Provider {
        name: name.to_owned(),
        message: e.message,
    }
}

/// How long an `operator: exec` command may take for one step (an install can take an hour).
pub const OPERATOR_EXEC_TIMEOUT: Duration = Duration::from_secs(3 * 3600);

/// Builds every provider the plan needs. `base_dir`: the plan file's directory.
pub fn build(plan: &Plan, base_dir: &Path) -> Result<Providers, WiringError> {
    use swing_providers::beyondtrust::{BeyondTrustAppliance, BeyondTrustConfig};
    let mut out = Providers::default();
    let backup_password = resolve(&plan.backup.password, base_dir, "backup.password")?;
    let mut sim_operator: Option<Arc<dyn swing_engine::provider::OperatorBridge>> = None;
    for (name, app) in &plan.appliances {
        let pname = app.provider.as_str();
        let Provider::Beyondtrust(bt) = provider(plan, pname)? else {
            return Err(WiringError::WrongType {
                name: pname.to_owned(),
                found: provider(plan, pname)?.type_name(),
                expected: "beyondtrust",
                used_for: format!("appliance {name}"),
            });
        };
        let (client_id, secret) = api_account(bt, pname, base_dir)?;
        let mut cfg = BeyondTrustConfig::new(app.address.clone(), client_id, secret);
        cfg.port = app.port;
        cfg.site_hostname = Some(plan.site.clone());
        cfg.ca_file = bt.ca_file.as_ref().map(|f| base_dir.join(f));
        cfg.backup_password = Some(backup_password.clone());
        cfg.include_reporting_data = plan.backup.include_reporting_data;
        cfg.include_passive_jump_clients = plan.policy.jump_clients.include_passive;
        if let Some(l) = bt.rate_limit {
            cfg.rate_limit = swing_providers::beyondtrust::RateLimit {
                per_second: l.per_second,
                per_hour: l.per_hour,
            };
        }
        let appliance = BeyondTrustAppliance::new(cfg).map_err(|e| perr(pname, e))?;
        out.appliances.insert(name.clone(), Arc::new(appliance));
        match bt.operator {
            OperatorMode::Prompt => {}
            OperatorMode::Exec => {
                let cmd = bt
                    .operator_command
                    .as_deref()
                    .ok_or_else(|| WiringError::Provider {
                        name: pname.to_owned(),
                        message: "operator: exec needs operator_command".to_owned(),
                    })?;
                let program = if cmd.contains('/') {
                    base_dir.join(cmd)
                } else {
                    PathBuf::from(cmd)
                };
                let bridge = swing_providers::operator::ExecOperator::new(
                    program,
                    Vec::new(),
                    OPERATOR_EXEC_TIMEOUT,
                )
                .without_env(secret_env_names(plan));
                out.bridges.insert(name.clone(), Arc::new(bridge));
            }
            OperatorMode::Sim => {
                // One bridge for all appliances: a certificate exported from one is imported
                // into the other through the bridge's memory (migration).
                let bridge = match &sim_operator {
                    Some(b) => Arc::clone(b),
                    None => {
                        let b = sim_bridge(plan, name, base_dir, bt).map_err(|e| perr(pname, e))?;
                        sim_operator = Some(Arc::clone(&b));
                        b
                    }
                };
                out.bridges.insert(name.clone(), bridge);
            }
        }
    }
    let switch = plan
        .failover
        .as_ref()
        .and_then(|f| f.switch.as_ref())
        .or(plan.migration.as_ref().map(|m| &m.switch));
    match switch {
        Some(Switch::Dns {
            provider: pname, ..
        }) => {
            out.dns = Some(match provider(plan, pname)? {
                Provider::Rfc2136(cfg) => {
                    let tsig = match &cfg.tsig {
                        Some(t) => Some(resolve(
                            &t.secret,
                            base_dir,
                            &format!("providers.{pname}.tsig.secret"),
                        )?),
                        None => None,
                    };
                    let c = swing_providers::rfc2136::Rfc2136Config::from_plan(cfg, tsig)
                        .map_err(|e| perr(pname, e))?;
                    Arc::new(
                        swing_providers::rfc2136::Rfc2136Provider::new(c)
                            .map_err(|e| perr(pname, e))?,
                    )
                }
                Provider::Exec(e) => Arc::new(exec_plugin(e, base_dir, plan)),
                other => {
                    return Err(WiringError::WrongType {
                        name: pname.clone(),
                        found: other.type_name(),
                        expected: "rfc2136 or exec",
                        used_for: "the dns switch".into(),
                    });
                }
            });
        }
        Some(Switch::Nat {
            provider: pname, ..
        }) => {
            out.nat = Some(match provider(plan, pname)? {
                Provider::Nftables(cfg) => Arc::new(
                    swing_providers::nftables::NftablesNat::new(cfg, &plan.name)
                        .map_err(|e| perr(pname, e))?,
                ),
                Provider::Iptables(cfg) => Arc::new(
                    swing_providers::iptables::IptablesNat::new(cfg, &plan.name)
                        .map_err(|e| perr(pname, e))?,
                ),
                Provider::Exec(e) => Arc::new(exec_plugin(e, base_dir, plan)),
                other => {
                    return Err(WiringError::WrongType {
                        name: pname.clone(),
                        found: other.type_name(),
                        expected: "nftables, iptables or exec",
                        used_for: "the nat switch".into(),
                    });
                }
            });
        }
        Some(Switch::SharedIp { .. }) | None => {}
    }
    Ok(out)
}

/// An appliance provider's API account: the client id and the resolved secret.
fn api_account(
    bt: &swing_schema::BeyondtrustProvider,
    pname: &str,
    base_dir: &Path,
) -> Result<(String, SecretValue), WiringError> {
    let client_id = match &bt.client_id {
        ValueOrRef::Literal(s) => s.clone(),
        ValueOrRef::Ref(r) => resolve(r, base_dir, &format!("providers.{pname}.client_id"))?
            .expose()
            .to_owned(),
    };
    let secret = resolve(
        &bt.client_secret,
        base_dir,
        &format!("providers.{pname}.client_secret"),
    )?;
    Ok((client_id, secret))
}

/// The client's-eye prober of `swing apply`: the site reached as the plan's clients reach it
/// (`probe::route_for`), over verified TLS with the serving appliance's CA, identifying the
/// answering appliance with that appliance's API account.
pub fn probe(
    plan: &Plan,
    base_dir: &Path,
) -> Result<Arc<dyn swing_engine::provider::ClientProbe>, WiringError> {
    use swing_providers::probe::{Credentials, ProbeConfig, SiteProbe, route_for};
    let site = route_for(plan).map_err(|message| WiringError::Probe { message })?;
    let mut config = ProbeConfig::new(plan.site.clone(), site.port, site.route);
    if let Some(app) = plan.appliances.get(&site.serving) {
        let pname = app.provider.as_str();
        if let Provider::Beyondtrust(bt) = provider(plan, pname)? {
            let (client_id, client_secret) = api_account(bt, pname, base_dir)?;
            config.credentials = Some(Credentials {
                client_id,
                client_secret,
            });
            config.ca_file = bt.ca_file.as_ref().map(|f| base_dir.join(f));
        }
    }
    Ok(Arc::new(SiteProbe::new(config)))
}

/// The notifiers of the plan's `notify`, in its order: a webhook's URL reference and signing
/// key are resolved here (a resolved URL is checked like a literal one), a command loses the
/// plan's secret variables like every other command.
pub fn notifiers(
    plan: &Plan,
    base_dir: &Path,
) -> Result<Vec<Arc<dyn swing_engine::notify::Notifier>>, WiringError> {
    use swing_providers::notify::{ExecNotifier, Webhook, WebhookConfig};
    let mut out: Vec<Arc<dyn swing_engine::notify::Notifier>> = Vec::new();
    for (i, n) in plan.notify.iter().enumerate() {
        let used_for = format!("notify #{}", i + 1);
        match n {
            Notify::Webhook {
                url,
                secret,
                events,
                format,
                ca_file,
            } => {
                let (url, url_is_secret) = match url {
                    ValueOrRef::Literal(u) => (SecretValue::new(u.as_str()), false),
                    ValueOrRef::Ref(r) => (resolve(r, base_dir, &format!("{used_for} url"))?, true),
                };
                let secret = match secret {
                    Some(r) => Some(resolve(r, base_dir, &format!("{used_for} secret"))?),
                    None => None,
                };
                let hook = Webhook::new(WebhookConfig {
                    index: i + 1,
                    url,
                    url_is_secret,
                    secret,
                    events: events.clone(),
                    format: *format,
                    ca_file: ca_file.as_ref().map(|f| base_dir.join(f)),
                })
                .map_err(|e| WiringError::Notify { message: e.message })?;
                out.push(Arc::new(hook));
            }
            Notify::Exec {
                command,
                args,
                events,
            } => out.push(Arc::new(ExecNotifier::new(
                i + 1,
                command,
                args,
                events.clone(),
                base_dir,
                secret_env_names(plan),
            ))),
        }
    }
    Ok(out)
}

/// An exec provider that never sees the plan's secrets: every environment variable a
/// `${env:NAME}` reference of the plan names is removed from the command's environment.
fn exec_plugin(
    e: &swing_schema::ExecProvider,
    base_dir: &Path,
    plan: &Plan,
) -> swing_providers::exec::ExecPlugin {
    swing_providers::exec::ExecPlugin::new(e, base_dir, &plan.name)
        .without_env(secret_env_names(plan))
}

/// Names of the environment variables the plan's secret references point at.
fn secret_env_names(plan: &Plan) -> Vec<String> {
    let mut refs: Vec<&SecretRef> = vec![&plan.backup.password];
    for p in plan.providers.values() {
        match p {
            Provider::Beyondtrust(bt) => {
                refs.push(&bt.client_secret);
                if let ValueOrRef::Ref(r) = &bt.client_id {
                    refs.push(r);
                }
            }
            Provider::Rfc2136(d) => {
                if let Some(t) = &d.tsig {
                    refs.push(&t.secret);
                }
            }
            Provider::Nftables(_) | Provider::Iptables(_) | Provider::Exec(_) => {}
        }
    }
    for n in &plan.notify {
        if let Notify::Webhook { url, secret, .. } = n {
            if let ValueOrRef::Ref(r) = url {
                refs.push(r);
            }
            refs.extend(secret.iter());
        }
    }
    let mut names: Vec<String> = refs
        .into_iter()
        .filter_map(|r| match r {
            SecretRef::Env(n) => Some(n.clone()),
            SecretRef::File(_) => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The `operator: sim` bridge (the simulator's `/_sim` automation), reaching every appliance
/// of the plan at `https://address:port`, verified with the provider's CA file.
fn sim_bridge(
    plan: &Plan,
    _appliance: &str,
    base_dir: &Path,
    bt: &swing_schema::BeyondtrustProvider,
) -> Result<Arc<dyn swing_engine::provider::OperatorBridge>, swing_engine::provider::ProviderError>
{
    use swing_providers::operator::{SimOperator, SimTarget};
    let targets = plan
        .appliances
        .iter()
        .map(|(name, app)| SimTarget {
            name: name.clone(),
            url: format!("https://{}", host_port(&app.address, app.port)),
        })
        .collect();
    let password = resolve(&plan.backup.password, base_dir, "backup.password").map_err(|e| {
        swing_engine::provider::ProviderError::new(
            swing_engine::provider::ErrorKind::Invalid,
            e.to_string(),
        )
    })?;
    let ca_file = bt.ca_file.as_ref().map(|f| base_dir.join(f));
    Ok(Arc::new(SimOperator::new(
        targets,
        ca_file,
        Some(password),
        Duration::from_secs(30),
    )?))
}

/// `host:port`, bracketing an IPv6 literal.
fn host_port(address: &str, port: u16) -> String {
    if address.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_commands_lose_every_secret_variable_the_plan_names() {
        let checked = swing_engine::validate::check_file(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/plans/examples/failover-async-dns.yaml"
        )));
        let plan = checked.plan.expect("example is valid");
        let names = secret_env_names(&plan);
        for expected in [
            "BT_CLIENT_ID",
            "BT_CLIENT_SECRET",
            "SWING_BACKUP_PASSWORD",
            "SWING_TSIG_SECRET",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
        }
    }

    #[test]
    fn exec_commands_lose_the_notify_secret_variables_too() {
        let base = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/plans/examples/failover-async-dns.yaml"
        ))
        .unwrap();
        let text = format!(
            "{base}\nnotify:\n  - {{ type: webhook, url: '${{env:HOOK_URL_X}}', secret: '${{env:HOOK_KEY_X}}' }}\n"
        );
        let plan = swing_engine::validate::check_source("n.yaml", &text)
            .plan
            .expect("valid");
        let names = secret_env_names(&plan);
        for expected in ["HOOK_URL_X", "HOOK_KEY_X"] {
            assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
        }
    }

    #[test]
    fn resolves_env_and_file_references_without_leaking() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), "s3cr3t-file\n").unwrap();
        let v = resolve(&SecretRef::File("k".into()), dir.path(), "x").unwrap();
        assert_eq!(v.expose(), "s3cr3t-file");
        let e = resolve(
            &SecretRef::Env("SWING_TEST_SURELY_UNSET_VAR".into()),
            dir.path(),
            "backup.password",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("${env:SWING_TEST_SURELY_UNSET_VAR}") && e.contains("backup.password"),
            "{e}"
        );
        std::fs::write(dir.path().join("empty"), "").unwrap();
        assert!(matches!(
            resolve(&SecretRef::File("empty".into()), dir.path(), "x"),
            Err(WiringError::Empty { .. })
        ));
        let e = resolve(&SecretRef::File("missing".into()), dir.path(), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing"));
    }
}
