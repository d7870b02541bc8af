//! Compile: a validated plan → a DAG of steps (petgraph), one scenario of the vendor guide.
//!
//! Owns the step model (id, title, kind, phase, resource, dependencies, pre/postconditions,
//! operator instructions, estimate, downtime, protection, window) and the pipeline of small
//! ordered passes that builds it (`passes`), one per concern, from the step catalogue
//! (`catalogue`, the vendor's English UI paths and labels). The last pass runs the invariants
//! checker of `procedures.md`.
//!
//! Must not: do IO, call providers, read the clock, or re-check raw YAML or the plan's
//! cross-field rules (the [`ValidPlan`] arriving here passed `validate`). It is a pure, deterministic function of its input.

mod catalogue;
mod estimate;
mod passes;

pub use catalogue::{ASSUMED_OLD_TTL_S, INSTALL_FAILURE, StepOp, old_ttl};

use std::collections::BTreeMap;

use petgraph::graph::{DiGraph, NodeIndex};
use swing_schema::Plan;

use crate::validate::ValidPlan;
use swing_schema::output::{Condition, Phase, Scenario, StepKind};

pub use estimate::{EXTRA_PACKAGE_S, Schedule, WindowSlot, default_estimate};

/// Options of one compilation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompileOptions {
    /// No live state: versions come from `current_version` or are unknown.
    pub offline: bool,
    /// The plan file as the user named it, shown in the output.
    pub file: Option<String>,
}

/// Why a plan could not be compiled: the steps compile built break the structure or the
/// invariants of `procedures.md` — a bug in compile, never a problem of the plan, whose rules
/// validation guarantees through [`ValidPlan`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    #[error("step `{step}` depends on `{missing}`, which is not in the plan")]
    UnknownDependency { step: String, missing: String },
    #[error("step id `{0}` occurs twice")]
    DuplicateStep(String),
    #[error("the steps form a cycle through `{0}`")]
    Cycle(String),
    #[error("step `{step}` is listed before `{dependency}`, which it depends on")]
    OutOfOrder { step: String, dependency: String },
    #[error("compiled plan breaks invariant {number}: {message}")]
    Invariant { number: u8, message: String },
}

/// One step of the compiled plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Id from `procedures.md` (`b.install`, `switch.to-b`, …).
    pub id: String,
    pub title: String,
    pub kind: StepKind,
    pub phase: Phase,
    /// What the step does; behaviour is decided on it, never on `id`.
    pub op: StepOp,
    /// The resource it touches (`appliance b`, `dns access.example.com`, …).
    pub resource: String,
    pub appliance: Option<String>,
    pub depends_on: Vec<String>,
    pub preconditions: Vec<Condition>,
    /// What the engine verifies after the step (a later diff pass drops steps whose
    /// postcondition already holds).
    pub postcondition: Condition,
    /// Exact operator instructions (operator steps and gates).
    pub instructions: Vec<String>,
    pub on_failure: Option<String>,
    pub estimate_s: u64,
    pub downtime: bool,
    pub downtime_s: u64,
    pub unprotected: bool,
    pub window: Option<String>,
    pub window_bound: bool,
}

/// Which appliance plays which part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    pub scenario: Scenario,
    /// Appliance upgraded first (single: the only one; sync: primary; async: backup;
    /// migration: the new one).
    pub first: String,
    /// Appliance upgraded second (pair only).
    pub second: Option<String>,
    /// Current primary (pair), the only appliance (single), the old one (migration).
    pub serving: String,
    /// Primary once the plan is done (pair).
    pub final_primary: Option<String>,
}

/// The result of [`compile`].
#[derive(Debug, Clone)]
pub struct CompiledPlan {
    pub plan: Plan,
    pub options: CompileOptions,
    pub roles: Roles,
    /// Steps in a valid execution order; `graph` node weights index into it.
    pub steps: Vec<Step>,
    /// Edge `a → b`: `b` depends on `a`.
    pub graph: DiGraph<usize, ()>,
    pub schedule: Schedule,
}

impl CompiledPlan {
    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The first step doing `op`.
    pub fn step_by_op(&self, op: &StepOp) -> Option<&Step> {
        self.steps.iter().find(|s| s.op == *op)
    }

    /// Whether this is the appliance the plan takes out of service (migration).
    pub fn is_decommissioned(&self, name: &str) -> bool {
        self.roles.scenario == Scenario::Migration && self.roles.serving == name
    }

    /// The appliance's part before the plan: `primary`, `backup`, `old`, `new` or `none`.
    pub fn role_before(&self, name: &str) -> &'static str {
        match (&self.plan.failover, self.roles.scenario) {
            (_, Scenario::Migration) => {
                if self.roles.serving == name {
                    "old"
                } else {
                    "new"
                }
            }
            (Some(f), _) if f.primary == name => "primary",
            (Some(_), _) => "backup",
            _ => "none",
        }
    }

    /// The facts the invariants checker reads, taken from the compiled steps and schedule.
    pub fn invariant_subject(&self) -> crate::invariants::Subject<'_> {
        use crate::invariants::{ApplianceFacts, StepFacts, Subject};
        let dns_old_ttl_s = match passes::site_switch(&self.plan, &self.roles) {
            Some(swing_schema::Switch::Dns { .. }) => Some(old_ttl(&self.plan)),
            _ => None,
        };
        Subject {
            scenario: self.roles.scenario,
            dns_old_ttl_s,
            steps: self
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| StepFacts {
                    id: &s.id,
                    depends_on: &s.depends_on,
                    start_s: self.schedule.start.get(i).copied().unwrap_or(0),
                    downtime: s.downtime,
                })
                .collect(),
            appliances: self
                .plan
                .appliances
                .keys()
                .map(|name| ApplianceFacts {
                    name,
                    role_before: self.role_before(name),
                    upgraded: !self.is_decommissioned(name),
                })
                .collect(),
            windows: self
                .schedule
                .windows
                .iter()
                .map(|w| (w.start_s, w.end_s - w.start_s))
                .collect(),
        }
    }
}

/// Compiles a validated plan into its step DAG, estimates it and checks the invariants.
pub fn compile(plan: &ValidPlan, options: &CompileOptions) -> Result<CompiledPlan, CompileError> {
    let plan: &Plan = plan;
    let roles = passes::classify(plan);
    let mut b = Builder::default();
    passes::preflight(&mut b, plan, &roles);
    passes::backup(&mut b, plan, &roles);
    passes::certificates(&mut b, plan, &roles);
    passes::break_failover(&mut b, plan, &roles);
    passes::upgrade_first(&mut b, plan, &roles);
    passes::switch(&mut b, plan, &roles);
    passes::upgrade_second(&mut b, plan, &roles);
    passes::reestablish(&mut b, plan, &roles);
    passes::switch_back(&mut b, plan, &roles);
    passes::restore_ttl(&mut b, plan, &roles);
    passes::clients(&mut b, plan, &roles);
    passes::decommission(&mut b, plan, &roles);
    let mut steps = b.steps;
    passes::api_needs(&mut steps, &roles);
    estimate::durations(&mut steps, plan);
    estimate::assign_windows(&mut steps, plan, &roles);
    let graph = build_graph(&steps)?;
    let mut schedule = estimate::schedule(&mut steps, plan);
    estimate::protection(&mut steps, &mut schedule);
    let compiled = CompiledPlan {
        plan: plan.clone(),
        options: options.clone(),
        roles,
        steps,
        graph,
        schedule,
    };
    check_invariants(&compiled)?;
    Ok(compiled)
}

/// Invariants 1–7 are about the order compile produces: a violation is a bug here, an error.
/// Invariant 8 (downtime inside windows) depends on the user's windows and estimates; it
/// becomes an error-level finding in the view instead.
fn check_invariants(compiled: &CompiledPlan) -> Result<(), CompileError> {
    match crate::invariants::check_subject(&compiled.invariant_subject())
        .into_iter()
        .find(|v| v.number != 8)
    {
        Some(v) => Err(CompileError::Invariant {
            number: v.number,
            message: v.message,
        }),
        None => Ok(()),
    }
}

fn build_graph(steps: &[Step]) -> Result<DiGraph<usize, ()>, CompileError> {
    let mut graph = DiGraph::with_capacity(steps.len(), steps.len() * 2);
    let mut index: BTreeMap<&str, NodeIndex> = BTreeMap::new();
    for (i, s) in steps.iter().enumerate() {
        let n = graph.add_node(i);
        if index.insert(s.id.as_str(), n).is_some() {
            return Err(CompileError::DuplicateStep(s.id.clone()));
        }
    }
    for (i, s) in steps.iter().enumerate() {
        let to = NodeIndex::new(i);
        for d in &s.depends_on {
            let from = *index
                .get(d.as_str())
                .ok_or_else(|| CompileError::UnknownDependency {
                    step: s.id.clone(),
                    missing: d.clone(),
                })?;
            if from.index() >= i {
                return Err(CompileError::OutOfOrder {
                    step: s.id.clone(),
                    dependency: d.clone(),
                });
            }
            graph.add_edge(from, to, ());
        }
    }
    petgraph::algo::toposort(&graph, None)
        .map_err(|c| CompileError::Cycle(steps[graph[c.node_id()]].id.clone()))?;
    Ok(graph)
}

/// Collects steps while the passes run. Steps are appended in execution order; `tail` is the
/// step the next one of the main sequence follows.
#[derive(Debug, Default)]
pub(crate) struct Builder {
    pub(crate) steps: Vec<Step>,
    pub(crate) tail: Vec<String>,
}

impl Builder {
    /// Appends a step after the current tail and makes it the new tail.
    pub(crate) fn then(&mut self, mut step: Step) {
        let mut deps = std::mem::take(&mut self.tail);
        deps.append(&mut step.depends_on);
        dedup_keep_order(&mut deps);
        step.depends_on = deps;
        self.tail = vec![step.id.clone()];
        self.steps.push(step);
    }

    /// Appends a step with exactly the dependencies it carries; the tail is unchanged.
    pub(crate) fn beside(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// Appends several steps that may run in parallel after the tail; they become the tail.
    pub(crate) fn parallel(&mut self, steps: Vec<Step>) {
        let deps = std::mem::take(&mut self.tail);
        for mut s in steps {
            let mut d = deps.clone();
            d.append(&mut s.depends_on);
            dedup_keep_order(&mut d);
            s.depends_on = d;
            self.tail.push(s.id.clone());
            self.steps.push(s);
        }
    }

    pub(crate) fn has(&self, id: &str) -> bool {
        self.steps.iter().any(|s| s.id == id)
    }
}

fn dedup_keep_order(v: &mut Vec<String>) {
    let mut seen = std::collections::BTreeSet::new();
    v.retain(|x| seen.insert(x.clone()));
}
