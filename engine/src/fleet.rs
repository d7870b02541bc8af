//! Fleets: many sites, each its own plan, changed in waves (`swing fleet`). The first wave is
//! the canary; a wave starts only when every site of the waves before it has finished and a
//! person passed its gate (`--confirm wave-N`); once more sites have failed than the failure
//! budget allows (`--max-failures N`) no site starts any more. Each site keeps its own lock
//! and journal in the state store, so what a fleet has done is what its sites' journals say —
//! several runners given the same fleet and store judge it alike.
//!
//! Owns: the waves `--waves` makes of the sites, each site's state from its records, the
//! judgement of which sites may start or go on and what the fleet waits for, and the fleet
//! view. Must not: read a store or a clock, run anything, or render.

use std::collections::BTreeSet;
use std::ops::Range;

use swing_schema::fleet::{FleetSite, FleetView, FleetWave};
use swing_schema::status::StatusView;

use crate::apply::history::History;
use crate::apply::{LockHolder, Record};
use crate::compile::CompiledPlan;

/// One entry of `--waves`: a number of sites, or a share of the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaveSize {
    Sites(usize),
    /// 1–100 % of the sites, rounded up.
    Percent(usize),
}

/// `--waves 1,10%,100%`: how many sites have been started by the end of each wave (a count
/// or a share of the fleet, rounded up). Sites beyond the last entry form one more wave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waves(Vec<WaveSize>);

impl Default for Waves {
    /// One wave of every site.
    fn default() -> Self {
        Waves(vec![WaveSize::Percent(100)])
    }
}

impl std::str::FromStr for Waves {
    type Err = String;

    fn from_str(s: &str) -> Result<Waves, String> {
        let mut sizes = Vec::new();
        for part in s.split(',').map(str::trim) {
            let size = if let Some(p) = part.strip_suffix('%') {
                match p.trim().parse::<usize>() {
                    Ok(p @ 1..=100) => WaveSize::Percent(p),
                    _ => {
                        return Err(format!(
                            "`{part}`: a share of the fleet is 1% to 100%, e.g. --waves 1,10%,100%"
                        ));
                    }
                }
            } else {
                match part.parse::<usize>() {
                    Ok(n @ 1..) => WaveSize::Sites(n),
                    _ => {
                        return Err(format!(
                            "`{part}`: each wave is a number of sites (at least 1) or a share such as 10%, e.g. --waves 1,10%,100%"
                        ));
                    }
                }
            };
            sizes.push(size);
        }
        Ok(Waves(sizes))
    }
}

impl Waves {
    /// The waves of a fleet of `n` sites, as ranges of site indexes in order; none empty.
    pub fn split(&self, n: usize) -> Vec<Range<usize>> {
        let mut waves = Vec::new();
        let mut started = 0;
        for size in &self.0 {
            let upto = match *size {
                WaveSize::Sites(c) => c,
                WaveSize::Percent(p) => (n * p).div_ceil(100),
            }
            .min(n);
            if upto > started {
                waves.push(started..upto);
                started = upto;
            }
        }
        if started < n {
            waves.push(started..n);
        }
        waves
    }
}

/// The gate a person confirms to start wave `number` (1 is the first).
pub fn gate(number: usize) -> String {
    format!("wave-{number}")
}

/// The wave numbers `--confirm` values name (`wave-2` → 2); other values are not gates.
pub fn gates_confirmed<'a>(confirmed: impl IntoIterator<Item = &'a String>) -> BTreeSet<usize> {
    confirmed
        .into_iter()
        .filter_map(|c| c.strip_prefix("wave-")?.parse().ok())
        .collect()
}

/// Where one site's change stands, as its records and lock say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteState {
    /// No journal.
    NotStarted,
    /// A live apply holds the site's lock.
    Running,
    /// Its last run paused for a person or a window.
    Paused,
    /// Its last run ended without a record (killed, or its host was lost): a resume goes on.
    Interrupted,
    /// Its last run failed, or a person abandoned the change. Not retried by a fleet.
    Failed,
    Done,
}

impl SiteState {
    /// Of a change whose journal holds `records`; `running`: a live apply of it holds the
    /// site's lock.
    pub fn of(records: &[Record], running: bool) -> SiteState {
        if records.is_empty() {
            return SiteState::NotStarted;
        }
        if running {
            return SiteState::Running;
        }
        let h = History::fold(records);
        Self::of_history(&h)
    }

    fn of_history(h: &History) -> SiteState {
        if h.abandoned.is_some() {
            return SiteState::Failed;
        }
        match h.last_outcome.as_deref() {
            Some("done") => SiteState::Done,
            Some("paused") => SiteState::Paused,
            Some(_) => SiteState::Failed,
            None => SiteState::Interrupted,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SiteState::NotStarted => "not-started",
            SiteState::Running => "running",
            SiteState::Paused => "paused",
            SiteState::Interrupted => "interrupted",
            SiteState::Failed => "failed",
            SiteState::Done => "done",
        }
    }

    /// Nothing more happens to it in this fleet: done, or failed.
    pub fn finished(self) -> bool {
        matches!(self, SiteState::Done | SiteState::Failed)
    }
}

/// What is on record of one site: its status, its state and the client downtime measured.
#[derive(Debug, Clone)]
pub struct SiteFacts {
    /// The plan file or saved plan, as given.
    pub source: String,
    pub status: StatusView,
    pub state: SiteState,
    pub downtime_s: Option<f64>,
}

impl SiteFacts {
    /// From the compiled plan (offline), the change's records and the site's lock holder.
    pub fn of(
        c: &CompiledPlan,
        records: &[Record],
        lock: Option<&LockHolder>,
        source: &str,
        now_ms: i64,
    ) -> SiteFacts {
        let status = crate::status::status(c, records, lock, now_ms);
        let h = History::fold(records);
        let state = if records.is_empty() {
            SiteState::NotStarted
        } else if status.outcome == "running" {
            SiteState::Running
        } else {
            SiteState::of_history(&h)
        };
        let downtime_s = crate::report::measured_downtime(c, &h)
            .iter()
            .map(|d| d.longest_outage_s)
            .reduce(f64::max);
        SiteFacts {
            source: source.to_owned(),
            status,
            state,
            downtime_s,
        }
    }
}

/// How a fleet is run: its waves, failure budget and the gates passed.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub waves: Waves,
    /// Stop starting sites once more than this many have failed (`None`: never stop).
    pub max_failures: Option<usize>,
    /// Wave numbers whose gate a person confirmed (`--confirm wave-N`).
    pub gates: BTreeSet<usize>,
}

/// What may happen to one site now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not started, its wave is open and the budget allows: start it.
    Start,
    /// Paused or interrupted: go on with it.
    Resume,
    /// Another apply (another runner) holds it.
    Busy,
    Done,
    Failed,
    /// Its wave waits for the gate of wave N.
    Gate(usize),
    /// Wave N (an earlier one) has not finished yet.
    EarlierWave(usize),
    /// Not started: the failure budget is spent.
    Budget,
}

/// What the fleet as a whole waits for, or how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetOutcome {
    Done,
    /// Sites may start or go on, or another runner works on one.
    Running,
    /// A site waits for a person or a window.
    WaitingForSites,
    /// Nothing waits, but sites of an open wave have not started: the next `fleet apply`
    /// starts them (what a reader, `fleet status`, sees before or between runs).
    Ready,
    /// The next wave waits for its gate.
    WaitingForGate(usize),
    /// More sites failed than `--max-failures` allows.
    BudgetSpent,
    /// Every site finished; some failed, within the budget.
    Failed,
}

impl FleetOutcome {
    pub fn name(self) -> &'static str {
        match self {
            FleetOutcome::Done => "done",
            FleetOutcome::Running => "running",
            FleetOutcome::WaitingForSites | FleetOutcome::WaitingForGate(_) => "waiting",
            FleetOutcome::Ready => "ready",
            FleetOutcome::BudgetSpent => "budget-spent",
            FleetOutcome::Failed => "failed",
        }
    }
}

/// The judgement of a fleet: its waves, each site's verdict, the failures counted.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub waves: Vec<Range<usize>>,
    /// Per site, in order.
    pub verdicts: Vec<Verdict>,
    pub failures: usize,
    pub budget_spent: bool,
}

/// Judges a fleet whose sites stand at `states` (in the order the plans were given).
pub fn judge(states: &[SiteState], rules: &Rules) -> Judgement {
    let waves = rules.waves.split(states.len());
    let failures = states.iter().filter(|s| **s == SiteState::Failed).count();
    let budget_spent = rules.max_failures.is_some_and(|m| failures > m);
    let mut verdicts = vec![Verdict::Done; states.len()];
    // Whether every site of the waves so far has finished.
    let mut earlier_finished = true;
    for (k, range) in waves.iter().enumerate() {
        let number = k + 1;
        let started = range.clone().any(|i| states[i] != SiteState::NotStarted);
        let open = number == 1 || started || (earlier_finished && rules.gates.contains(&number));
        for i in range.clone() {
            verdicts[i] = match states[i] {
                SiteState::Done => Verdict::Done,
                SiteState::Failed => Verdict::Failed,
                SiteState::Running => Verdict::Busy,
                SiteState::Paused | SiteState::Interrupted => Verdict::Resume,
                SiteState::NotStarted if budget_spent => Verdict::Budget,
                SiteState::NotStarted if open => Verdict::Start,
                SiteState::NotStarted if earlier_finished => Verdict::Gate(number),
                SiteState::NotStarted => Verdict::EarlierWave(k),
            };
        }
        earlier_finished &= range.clone().all(|i| states[i].finished());
    }
    Judgement {
        waves,
        verdicts,
        failures,
        budget_spent,
    }
}

impl Judgement {
    /// The fleet's outcome once nothing more can be started or resumed by this runner:
    /// `tried` says, per site, whether this runner already ran it (a site that paused in this
    /// run waits for a person or a window rather than being run again).
    pub fn outcome(&self, tried: &[bool]) -> FleetOutcome {
        let v = &self.verdicts;
        let untried = |i: usize| !tried.get(i).copied().unwrap_or(false);
        if v.iter().all(|v| *v == Verdict::Done) {
            return FleetOutcome::Done;
        }
        if v.iter().enumerate().any(|(i, v)| {
            *v == Verdict::Busy || (matches!(v, Verdict::Start | Verdict::Resume) && untried(i))
        }) {
            return FleetOutcome::Running;
        }
        if self.budget_spent {
            return FleetOutcome::BudgetSpent;
        }
        if v.contains(&Verdict::Resume) {
            return FleetOutcome::WaitingForSites;
        }
        if v.contains(&Verdict::Start) {
            return FleetOutcome::Ready;
        }
        if let Some(n) = v.iter().find_map(|v| match v {
            Verdict::Gate(n) => Some(*n),
            _ => None,
        }) {
            return FleetOutcome::WaitingForGate(n);
        }
        FleetOutcome::Failed
    }

    /// The sentence a table ends with.
    fn summary(&self, outcome: FleetOutcome, rules: &Rules, n: usize) -> String {
        let done = self
            .verdicts
            .iter()
            .filter(|v| **v == Verdict::Done)
            .count();
        let waves = self.waves.len();
        match outcome {
            FleetOutcome::Done => format!("Done: all {n} sites in {waves} wave(s)."),
            FleetOutcome::Running => format!("Running: {done} of {n} sites done."),
            FleetOutcome::WaitingForSites => format!(
                "Waiting: {done} of {n} sites done; some wait for a person or a window — run `swing fleet apply` again once they can go on."
            ),
            FleetOutcome::Ready => format!(
                "Ready: {done} of {n} sites done; `swing fleet apply` starts the sites of the open wave."
            ),
            FleetOutcome::WaitingForGate(k) => format!(
                "Waiting for the gate of wave {k}: {done} of {n} sites done; check them, then `swing fleet apply --confirm {}` starts wave {k}.",
                gate(k)
            ),
            FleetOutcome::BudgetSpent => format!(
                "Stopped: {} site(s) failed, more than --max-failures {} allows; no further site starts. {done} of {n} sites done.",
                self.failures,
                rules.max_failures.unwrap_or_default()
            ),
            FleetOutcome::Failed => format!(
                "Finished with failures: {done} of {n} sites done, {} failed.",
                self.failures
            ),
        }
    }
}

/// What a site waits for, or why it did not start.
fn waiting_for(f: &SiteFacts, verdict: Verdict, j: &Judgement, rules: &Rules) -> Option<String> {
    match verdict {
        Verdict::Start => Some("starts in this wave".to_owned()),
        Verdict::Gate(k) => Some(format!("the gate of wave {k}: --confirm {}", gate(k))),
        Verdict::EarlierWave(k) => Some(format!("wave {k} to finish")),
        Verdict::Budget => Some(format!(
            "not started: {} site(s) failed, more than --max-failures {} allows",
            j.failures,
            rules.max_failures.unwrap_or_default()
        )),
        Verdict::Busy => Some(match &f.status.lock {
            Some(l) => format!("applied by {} (pid {} on {})", l.holder, l.pid, l.host),
            None => "applied by another runner".to_owned(),
        }),
        Verdict::Resume if f.state == SiteState::Interrupted => Some(
            "its last run stopped without finishing: the next `swing fleet apply` resumes it"
                .to_owned(),
        ),
        Verdict::Resume => {
            let waits: Vec<String> = f
                .status
                .waiting
                .iter()
                .map(|w| format!("{} ({}): {}", w.step, w.kind, w.reason))
                .collect();
            Some(waits.join("; ")).filter(|s| !s.is_empty())
        }
        Verdict::Done | Verdict::Failed => None,
    }
}

/// The waves as the views list them.
pub fn wave_views(waves: &[Range<usize>]) -> Vec<FleetWave> {
    waves
        .iter()
        .enumerate()
        .map(|(k, w)| FleetWave {
            number: k + 1,
            gate: (k > 0).then(|| gate(k + 1)),
            sites: w.len(),
        })
        .collect()
}

/// The number (1 for the first) of the wave holding site `i`.
pub fn wave_of(waves: &[Range<usize>], i: usize) -> usize {
    waves
        .iter()
        .position(|w| w.contains(&i))
        .map_or(0, |k| k + 1)
}

/// The fleet view of `sites` (in order) judged by `j`, with its `outcome`.
pub fn view(sites: &[SiteFacts], j: &Judgement, outcome: FleetOutcome, rules: &Rules) -> FleetView {
    FleetView {
        format_version: 1,
        outcome: outcome.name().to_owned(),
        summary: j.summary(outcome, rules, sites.len()),
        failures: j.failures,
        max_failures: rules.max_failures,
        waves: wave_views(&j.waves),
        sites: sites
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let verdict = j.verdicts.get(i).copied().unwrap_or(Verdict::Done);
                FleetSite {
                    site: f.status.site.clone(),
                    change: f.status.change.clone(),
                    plan: f.source.clone(),
                    wave: wave_of(&j.waves, i),
                    state: f.state.name().to_owned(),
                    phase: f.status.phase,
                    steps_done: f.status.steps_done,
                    steps_total: f.status.steps_total,
                    waiting_for: waiting_for(f, verdict, j, rules),
                    downtime_s: f.downtime_s,
                    unprotected_s: f.status.unprotected_s,
                    lock: f
                        .status
                        .lock
                        .as_ref()
                        .filter(|l| l.live)
                        .map(|l| format!("{} (pid {} on {})", l.holder, l.pid, l.host)),
                    problem: f.status.problem.clone(),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SiteState::*;

    fn waves(s: &str) -> Waves {
        s.parse().unwrap()
    }

    #[test]
    fn waves_count_the_sites_started_by_the_end_of_each() {
        assert_eq!(waves("1,50%,100%").split(6), vec![0..1, 1..3, 3..6]);
        assert_eq!(waves("1,10%,100%").split(50), vec![0..1, 1..5, 5..50]);
        // Entries that add no site make no wave; sites beyond the last entry are one more.
        assert_eq!(waves("1,1,2").split(5), vec![0..1, 1..2, 2..5]);
        assert_eq!(waves("100%").split(3), vec![0..3]);
        assert_eq!(waves("10").split(3), vec![0..3]);
        assert!(waves("1").split(0).is_empty());
        assert_eq!(Waves::default().split(4), vec![0..4]);
        for bad in ["0", "0%", "101%", "", "1,,2", "a", "-1", "5.5%"] {
            let e = bad.parse::<Waves>().unwrap_err();
            assert!(e.contains("--waves 1,10%,100%"), "{bad}: {e}");
        }
    }

    #[test]
    fn gates_are_the_wave_numbers_confirmed() {
        let c = [
            "wave-2".to_owned(),
            "backup.config".to_owned(),
            "wave-x".to_owned(),
        ];
        assert_eq!(gates_confirmed(&c), BTreeSet::from([2]));
    }

    fn rules(w: &str, max_failures: Option<usize>, gates: &[usize]) -> Rules {
        Rules {
            waves: waves(w),
            max_failures,
            gates: gates.iter().copied().collect(),
        }
    }

    #[test]
    fn the_canary_starts_alone_and_a_wave_needs_its_gate_and_the_waves_before() {
        let r = rules("1,50%,100%", Some(0), &[]);
        let j = judge(&[NotStarted; 6], &r);
        assert_eq!(j.verdicts[0], Verdict::Start);
        assert_eq!(j.verdicts[1], Verdict::EarlierWave(1));
        assert_eq!(j.verdicts[5], Verdict::EarlierWave(2));
        assert_eq!(j.outcome(&[false; 6]), FleetOutcome::Running);
        // Canary done, no gate: the fleet waits for wave 2's gate.
        let s = [
            Done, NotStarted, NotStarted, NotStarted, NotStarted, NotStarted,
        ];
        let j = judge(&s, &r);
        assert_eq!(j.verdicts[1], Verdict::Gate(2));
        assert_eq!(j.outcome(&[true; 6]), FleetOutcome::WaitingForGate(2));
        // With the gate: wave 2 starts, wave 3 waits for wave 2.
        let r2 = rules("1,50%,100%", Some(0), &[2, 3]);
        let j = judge(&s, &r2);
        assert_eq!(
            &j.verdicts[1..4],
            &[Verdict::Start, Verdict::Start, Verdict::EarlierWave(2)]
        );
        // A wave already started needs no gate to go on.
        let s = [Done, Paused, NotStarted, NotStarted, NotStarted, NotStarted];
        let j = judge(&s, &r);
        assert_eq!(&j.verdicts[1..3], &[Verdict::Resume, Verdict::Start]);
    }

    #[test]
    fn once_the_budget_is_spent_no_site_starts_but_started_ones_go_on() {
        let r = rules("1,50%,100%", Some(0), &[2, 3]);
        let s = [Done, Failed, Paused, NotStarted, NotStarted, NotStarted];
        let j = judge(&s, &r);
        assert!(j.budget_spent);
        assert_eq!(j.verdicts[2], Verdict::Resume);
        assert!(j.verdicts[3..].iter().all(|v| *v == Verdict::Budget));
        let tried = [true; 6];
        assert_eq!(j.outcome(&tried), FleetOutcome::BudgetSpent);
        let f = SiteFacts {
            source: "s.yaml".into(),
            status: StatusView {
                format_version: 1,
                change: "c".into(),
                site: "s".into(),
                outcome: "not-started".into(),
                phase: None,
                steps_done: 0,
                steps_total: 3,
                waiting: vec![],
                unprotected_s: 0,
                lock: None,
                next_window: None,
                confirmations: vec![],
                last_events: vec![],
                problem: None,
            },
            state: NotStarted,
            downtime_s: None,
        };
        let v = view(&vec![f; 6], &j, j.outcome(&tried), &r);
        assert_eq!(v.outcome, "budget-spent");
        let why = v.sites[4].waiting_for.as_deref().unwrap();
        assert!(why.contains("--max-failures 0"), "{why}");
        assert_eq!(v.sites[4].wave, 3);
        assert!(
            v.summary.contains("no further site starts"),
            "{}",
            v.summary
        );
        // Within the budget the next wave goes on; all finished with a failure is `failed`.
        let r1 = rules("1,50%,100%", Some(1), &[2, 3]);
        assert_eq!(judge(&s, &r1).verdicts[3], Verdict::EarlierWave(2));
        let j = judge(&[Done, Failed, Done], &r1);
        assert_eq!(j.outcome(&[true; 3]), FleetOutcome::Failed);
    }

    #[test]
    fn sites_another_runner_holds_are_waited_for_and_paused_ones_wait_for_people() {
        let r = rules("100%", None, &[]);
        let j = judge(&[Done, Running, Paused], &r);
        assert_eq!(
            j.verdicts,
            vec![Verdict::Done, Verdict::Busy, Verdict::Resume]
        );
        assert_eq!(j.outcome(&[true; 3]), FleetOutcome::Running);
        let j = judge(&[Done, Done, Paused], &r);
        assert_eq!(j.outcome(&[true; 3]), FleetOutcome::WaitingForSites);
        // A reader sees sites that may start as ready, not as waiting for people.
        let j = judge(&[Done, NotStarted], &r);
        assert_eq!(j.outcome(&[true; 2]), FleetOutcome::Ready);
        assert_eq!(j.outcome(&[false; 3]), FleetOutcome::Running);
        assert_eq!(judge(&[Done; 2], &r).outcome(&[]), FleetOutcome::Done);
        // An interrupted run is resumed, like a paused one.
        assert_eq!(judge(&[Interrupted], &r).verdicts, vec![Verdict::Resume]);
    }
}
