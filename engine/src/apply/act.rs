//! Step → provider call: what the executor does to perform a step, chosen by its
//! [`StepOp`].
//!
//! Auto steps call the appliance/DNS/NAT providers (configuration backup, DNS TTL lowering
//! and restoring, the switch, promotion); operator steps go to the appliance's operator
//! bridge. Checks and waits do nothing here: their postcondition is observed afterwards.
//!
//! Owns: the mapping step → provider call or [`OperatorAction`]. Must not: judge whether a
//! step's postcondition holds (verify observes and asks the judge) or decide order.

use std::path::PathBuf;

use swing_schema::output::StepKind as OutKind;
use swing_schema::{Plan, Switch};

use super::journal::Artifact;
use super::site::SiteExecutor;
use super::spec::operator_appliance;
use super::walker::{StepError, StepSpec};
use crate::compile::StepOp;
use crate::provider::{FailoverRole, OperatorAction};
use crate::refresh::plan_switch;

impl SiteExecutor {
    /// Performs the step's action (the walker's `act`).
    pub(super) async fn perform(&self, spec: &StepSpec) -> Result<Vec<Artifact>, StepError> {
        let s = self.step(&spec.id)?.clone();
        self.mark_acted(&s.id);
        let plan = self.plan().clone();
        let id = s.id.as_str();
        match &s.op {
            StepOp::BackupConfig => return self.backup_config(&plan).await.map(|a| vec![a]),
            StepOp::SwitchTo(to) => {
                self.act_switch(&s, to).await?;
                self.mark_done_once(id);
                return Ok(Vec::new());
            }
            StepOp::Promote(x) => {
                let p = self.providers.appliances.get(x).ok_or_else(|| {
                    StepError::fatal(format!("no provider is wired for appliance {x}"))
                })?;
                p.set_failover_role(FailoverRole::Primary, true).await?;
                return Ok(Vec::new());
            }
            StepOp::LowerTtl => {
                if let Some(Switch::Dns { record, ttl, .. }) = plan_switch(&plan) {
                    self.lower_dns_ttl(spec, record, *ttl).await?;
                }
                return Ok(Vec::new());
            }
            StepOp::RestoreTtl => {
                self.set_dns_ttl(self.restore_ttl()).await?;
                return Ok(Vec::new());
            }
            _ => {}
        }
        if s.kind != OutKind::Operator {
            // Checks and waits: nothing to do, verify observes.
            return Ok(Vec::new());
        }
        let appliance = operator_appliance(&self.compiled, &s)
            .ok_or_else(|| StepError::fatal(format!("{id}: no appliance to perform it on")))?;
        let action = match &s.op {
            StepOp::Install(_) => install_action(&plan),
            StepOp::BackupCertificates | StepOp::CertsExport => {
                // The export holds the private key: it goes only into a backup directory that
                // is safe to hold it (made private when missing, refused when others could
                // write there), checked here as `backup.config` checks it — the two run at once.
                let directory = self.backup_dir(&plan);
                super::statefs::ensure_dir(&directory)
                    .map_err(|e| StepError::fatal(e.to_string()))?;
                OperatorAction::ExportCertificate { directory }
            }
            StepOp::VaultKey => OperatorAction::VaultKey,
            StepOp::Throttle => OperatorAction::ClientThrottle {
                max_concurrent_upgrades: plan.policy.jump_clients.max_concurrent_upgrades,
            },
            StepOp::ClientsFollowup => OperatorAction::ClientFollowup,
            StepOp::Sync => OperatorAction::SyncNow,
            StepOp::Break => OperatorAction::BreakFailover,
            StepOp::Keys => OperatorAction::ConfirmKeys,
            StepOp::Establish => {
                let backup = self.switch_from(&appliance);
                let addr = plan
                    .appliances
                    .get(&backup)
                    .map(|a| a.address.clone())
                    .unwrap_or_default();
                let peer_port = plan.failover.as_ref().map(|f| f.peer_port).unwrap_or(443);
                OperatorAction::EstablishFailover {
                    backup_address: addr,
                    peer_port,
                }
            }
            StepOp::CertsImport => OperatorAction::ImportCertificate {
                from_appliance: self.compiled.roles.serving.clone(),
            },
            StepOp::CertsDefault => OperatorAction::DefaultCertificate,
            StepOp::Restore(_) => {
                let path = self
                    .backups
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .last()
                    .map(|b| b.path.clone());
                let backup_path =
                    path.ok_or_else(|| StepError::fatal("no configuration backup to restore"))?;
                OperatorAction::RestoreBackup { backup_path }
            }
            _ => {
                return Err(StepError::fatal(format!(
                    "{id}: no operator automation exists for this step"
                )));
            }
        };
        self.operator(&s, &appliance, action).await?;
        Ok(Vec::new())
    }

    /// The plan's backup directory (`./backups` next to the plan), written without the `./`
    /// in reports: configuration backups and exported certificates go there.
    pub(super) fn backup_dir(&self, plan: &Plan) -> PathBuf {
        self.base_dir
            .join(&plan.backup.directory)
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect()
    }

    /// The configuration backup of the serving appliance, written under the plan's backup
    /// directory and remembered for a later restore.
    async fn backup_config(&self, plan: &Plan) -> Result<Artifact, StepError> {
        let x = self.compiled.roles.serving.clone();
        let p =
            self.providers.appliances.get(&x).ok_or_else(|| {
                StepError::fatal(format!("no provider is wired for appliance {x}"))
            })?;
        let dir = self.backup_dir(plan);
        // Made private when missing; refused when another user could swap the backup.
        super::statefs::ensure_dir(&dir).map_err(|e| StepError::fatal(e.to_string()))?;
        let stem = format!("{}-{x}-{}", plan.name, self.clock.now_ms());
        let info = p.backup(&dir, &stem).await?;
        let a = Artifact {
            path: info.path,
            sha256: info.sha256,
            bytes: info.bytes,
        };
        self.backups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(a.clone());
        Ok(a)
    }
}

/// The operator action of an install step: the plan's target packages (or version).
pub(super) fn install_action(plan: &Plan) -> OperatorAction {
    OperatorAction::Install {
        packages: plan.target.packages.clone(),
        version: plan.target.version.to_string(),
    }
}
