//! The PostgreSQL state store (`state: {backend: postgres}` or `--state postgres://…`): the
//! journal, the site lock and the saved-plan records of every runner in one database, so a
//! change paused on one machine is resumed from another.
//!
//! - **Schema**: created and migrated by swing ([`MIGRATIONS`], the version in
//!   `swing_schema`), under a transaction-level advisory lock so runners starting together
//!   do not race; a database migrated by a newer swing is refused.
//! - **Lock**: a session-level advisory lock keyed by 64 bits of SHA-256 over
//!   (namespace, site) — advisory locks are per database, so the key carries the namespace
//!   instead of a row id that could collide — plus a holder row (change, pid, host, since,
//!   heartbeat). A runner that dies, even by `kill -9`, ends its session and the server frees
//!   the lock; a holder row whose advisory lock nobody holds is not a lock.
//! - **Journal**: append-only rows `(namespace, site, change, generation, seq)`, one
//!   autocommitted `INSERT` per record, the same records as the local journal. A finished
//!   journal is kept; the next apply writes generation + 1.
//! - **One connection, one session**: the lock and every journal write go through the same
//!   connection, owned by one thread (the rest of swing calls it synchronously, as it fsyncs
//!   a file). When the connection is lost (server stopped or restarted, network gone) the
//!   session's lock is gone too, so nothing more is written: every later call fails at once,
//!   the walker stops before its next action, and `apply --resume` continues once the server
//!   is back. An append is never retried, so no record is written twice. A call that gets
//!   no answer within [`ANSWER_WITHIN`] counts as a lost connection, so a hung server never
//!   hangs the apply. (Connect directly or through a session-pooling proxy: a
//!   transaction-pooling proxy would break the session the lock lives in.)
//! - **TLS**: plain TCP only to a loopback address or a Unix socket; any other host is reached
//!   over TLS verified against the system roots or `ca_file` (an `sslmode` that would allow
//!   plain text is raised to `require`).
//!
//! Owns: the SQL, the connection thread and the lock key. Must not: log or return the URL's
//! password (messages name `host:port/db` only), decide what a record means, or print.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use postgres::config::{Host, SslMode};
use postgres::{Client, Config, NoTls};
use sha2::{Digest, Sha256};
use swing_engine::apply::history::History;
use swing_engine::apply::journal::JournalSink;
use swing_engine::apply::{
    Journal, JournalError, LockError, LockGuard, LockHolder, LockOptions, Record, SavedPlanRecord,
    Store,
};
use swing_schema::secret::SecretValue;

/// The schema, one migration per version (index + 1). Never edit one that has shipped; add.
pub const MIGRATIONS: &[&str] = &[
    // 1: journal rows, holder rows, saved-plan records.
    "CREATE TABLE swing_journal (
        namespace text NOT NULL,
        site text NOT NULL,
        change text NOT NULL,
        generation integer NOT NULL,
        seq integer NOT NULL,
        ts_ms bigint NOT NULL,
        event text NOT NULL,
        record jsonb NOT NULL,
        PRIMARY KEY (namespace, site, change, generation, seq)
    );
    CREATE TABLE swing_locks (
        namespace text NOT NULL,
        site text NOT NULL,
        change text NOT NULL,
        pid bigint NOT NULL,
        host text NOT NULL,
        started_ms bigint NOT NULL,
        heartbeat_ms bigint NOT NULL,
        PRIMARY KEY (namespace, site)
    );
    CREATE TABLE swing_saved_plans (
        namespace text NOT NULL,
        site text NOT NULL,
        change text NOT NULL,
        digest text NOT NULL,
        signer text,
        recorded_ms bigint NOT NULL,
        PRIMARY KEY (namespace, site, change, digest)
    );",
];

/// How long a call waits for the server before the connection counts as lost.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(30);
/// How often a held lock's holder row gets a new heartbeat.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// The transaction-level advisory lock migrations run under.
const MIGRATION_LOCK: i64 = 0x7377_696e_675f_6d67; // "swing_mg"

/// The PostgreSQL store. See the module doc.
#[derive(Debug, Clone)]
pub struct PgStore {
    conn: Arc<Conn>,
    /// `postgres host:port/db`, for messages.
    at: String,
    namespace: String,
}

/// Work for the connection thread.
type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// The connection thread's state.
struct Session {
    client: Client,
    /// Held locks (namespace, site, pid, host) whose rows get heartbeats.
    held: Vec<(String, String, i64, String)>,
    /// The reads prepared once on this connection (a fleet status reads every site's journal
    /// and lock: one round trip each instead of a parse and an execute).
    prepared: std::collections::HashMap<&'static str, postgres::Statement>,
}

impl Session {
    fn prepared(&mut self, sql: &'static str) -> Result<postgres::Statement, postgres::Error> {
        if let Some(st) = self.prepared.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(sql)?;
        self.prepared.insert(sql, st.clone());
        Ok(st)
    }
}

/// The handle of the connection thread.
#[derive(Debug)]
struct Conn {
    tx: Mutex<mpsc::Sender<Job>>,
    lost: AtomicBool,
    at: String,
}

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("state store {at}: {message}")]
pub struct PgStoreError {
    pub at: String,
    pub message: String,
}

fn is_loopback(host: &Host) -> bool {
    match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name == "localhost"
                || name
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    }
}

/// `host:port/db` of a configuration: what messages name (never the user or password).
fn describe(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("postgres {host}:{port}/{db}")
}

impl PgStore {
    /// Connects, creates or migrates the schema, and keeps the connection on its own thread.
    pub fn connect(
        url: &SecretValue,
        namespace: &str,
        ca_file: Option<&Path>,
    ) -> Result<PgStore, PgStoreError> {
        let mut config: Config = url.expose().parse().map_err(|e| PgStoreError {
            // The parse error names the part that is wrong, never the value.
            at: "postgres".into(),
            message: format!("the state URL is not a PostgreSQL connection URL: {e}"),
        })?;
        let at = describe(&config);
        let err = |message: String| PgStoreError {
            at: at.clone(),
            message,
        };
        config
            .connect_timeout(Duration::from_secs(10))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(15))
            .application_name("swing");
        let plain = config.get_hosts().iter().all(is_loopback) && !config.get_hosts().is_empty();
        let tls = if plain {
            None
        } else {
            if matches!(config.get_ssl_mode(), SslMode::Disable | SslMode::Prefer) {
                config.ssl_mode(SslMode::Require);
            }
            let mut tls = crate::beyondtrust::tls::client_config(ca_file)
                .map_err(|e| err(e.message.clone()))?;
            tls.alpn_protocols.clear();
            Some(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), String>>(1);
        std::thread::Builder::new()
            .name("swing-state".into())
            .spawn(move || {
                let client = match tls {
                    None => config.connect(NoTls),
                    Some(tls) => config.connect(tls),
                };
                let mut session = match client.map_err(|e| message(&e)).and_then(|mut c| {
                    migrate(&mut c)?;
                    Ok(c)
                }) {
                    Ok(client) => Session {
                        client,
                        held: Vec::new(),
                        prepared: std::collections::HashMap::new(),
                    },
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                serve(&mut session, &rx);
            })
            .map_err(|e| err(format!("cannot start the connection thread: {e}")))?;
        match ready_rx.recv_timeout(ANSWER_WITHIN) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(err(format!("cannot connect: {e}"))),
            Err(_) => return Err(err("no answer while connecting".into())),
        }
        Ok(PgStore {
            conn: Arc::new(Conn {
                tx: Mutex::new(tx),
                lost: AtomicBool::new(false),
                at: at.clone(),
            }),
            at,
            namespace: namespace.to_owned(),
        })
    }

    fn lock_key(&self, site: &str) -> i64 {
        let mut h = Sha256::new();
        h.update(b"swing-site-lock\0");
        h.update(self.namespace.as_bytes());
        h.update([0u8]);
        h.update(site.as_bytes());
        let d = h.finalize();
        i64::from_be_bytes(d[..8].try_into().unwrap_or([0; 8]))
    }

    fn key_of(&self, site: &str, change: &str) -> (String, String, String) {
        (self.namespace.clone(), site.to_owned(), change.to_owned())
    }

    fn read_err(&self) -> impl Fn(String) -> JournalError + '_ {
        move |message| JournalError::Store {
            doing: "read",
            at: self.at.clone(),
            message,
        }
    }
}

/// The connection thread: runs jobs in order; between them, beats the held locks' rows.
fn serve(session: &mut Session, rx: &mpsc::Receiver<Job>) {
    loop {
        match rx.recv_timeout(HEARTBEAT_EVERY) {
            Ok(job) => job(session),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = swing_engine::time::now_ms();
                for (ns, site, pid, host) in session.held.clone() {
                    // A failed heartbeat only makes the holder look stale sooner.
                    let _ = session.client.execute(
                        "UPDATE swing_locks SET heartbeat_ms = $1
                         WHERE namespace = $2 AND site = $3 AND pid = $4 AND host = $5",
                        &[&now, &ns, &site, &pid, &host],
                    );
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
}

/// Creates the schema or brings it to this swing's version. A schema already at this version
/// is only read (so `swing status` works against a read-only server).
fn migrate(client: &mut Client) -> Result<(), String> {
    let ours = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
    let e = |e: postgres::Error| message(&e);
    let exists: bool = client
        .query_one("SELECT to_regclass('swing_schema') IS NOT NULL", &[])
        .map_err(e)?
        .get(0);
    if exists {
        let current: Option<i32> = client
            .query_one("SELECT max(version) FROM swing_schema", &[])
            .map_err(e)?
            .get(0);
        if current == Some(ours) {
            return Ok(());
        }
    }
    let mut tx = client.transaction().map_err(e)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(e)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS swing_schema (version integer NOT NULL)")
        .map_err(e)?;
    let version: i32 = tx
        .query_opt("SELECT version FROM swing_schema", &[])
        .map_err(e)?
        .map_or(0, |r| r.get(0));
    if version > ours {
        return Err(format!(
            "the database holds swing state schema version {version}, newer than this swing's ({ours}); use a newer swing"
        ));
    }
    for m in &MIGRATIONS[usize::try_from(version).unwrap_or(0)..] {
        tx.batch_execute(m).map_err(e)?;
    }
    if version < ours {
        tx.execute("DELETE FROM swing_schema", &[]).map_err(e)?;
        tx.execute("INSERT INTO swing_schema (version) VALUES ($1)", &[&ours])
            .map_err(e)?;
    }
    tx.commit().map_err(e)
}

impl Conn {
    /// Runs `f` on the connection thread and waits for its answer. After a lost connection
    /// every call fails at once: the session (and with it the lock) is gone.
    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<R, postgres::Error> + Send + 'static,
    ) -> Result<R, String> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(format!(
                "the connection to {} was lost earlier in this run, and the site lock with it",
                self.at
            ));
        }
        let (rtx, rrx) = mpsc::sync_channel(1);
        let sent = self
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(Box::new(move |s: &mut Session| {
                let _ = rtx.send(f(s));
            }));
        if sent.is_err() {
            self.lost.store(true, Ordering::SeqCst);
            return Err(format!("the connection to {} has ended", self.at));
        }
        match rrx.recv_timeout(ANSWER_WITHIN) {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                if e.is_closed() || e.as_db_error().is_none() {
                    self.lost.store(true, Ordering::SeqCst);
                }
                Err(message(&e))
            }
            Err(_) => {
                self.lost.store(true, Ordering::SeqCst);
                Err(format!(
                    "{} did not answer within {} s",
                    self.at,
                    ANSWER_WITHIN.as_secs()
                ))
            }
        }
    }
}

/// A PostgreSQL error in a sentence (the server's message, or what happened to the
/// connection); never the URL.
fn message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None if e.is_closed() => "the connection was closed (is the server running?)".into(),
        None => e.to_string(),
    }
}

/// One change's journal rows.
#[derive(Debug)]
struct PgJournal {
    conn: Arc<Conn>,
    key: (String, String, String),
    generation: i32,
    next: Mutex<i32>,
    at: String,
}

impl JournalSink for PgJournal {
    fn append(&self, record: &Record) -> Result<(), JournalError> {
        let err = |message| JournalError::Store {
            doing: "write",
            at: self.at.clone(),
            message,
        };
        let value = serde_json::to_value(record).map_err(|e| err(e.to_string()))?;
        let event = value
            .get("event")
            .and_then(|e| e.as_str())
            .unwrap_or("")
            .to_owned();
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let (ns, site, change) = self.key.clone();
        let (generation, seq, ts) = (self.generation, *next, record.ts_ms);
        self.conn
            .call(move |s| {
                s.client.execute(
                    "INSERT INTO swing_journal
                     (namespace, site, change, generation, seq, ts_ms, event, record)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[&ns, &site, &change, &generation, &seq, &ts, &event, &value],
                )
            })
            .map_err(err)?;
        *next += 1;
        Ok(())
    }

    fn read(&self) -> Result<Vec<Record>, JournalError> {
        read_generation(&self.conn, &self.key, self.generation).map_err(|message| {
            JournalError::Store {
                doing: "read",
                at: self.at.clone(),
                message,
            }
        })
    }
}

/// The latest generation of a change's journal and its next sequence number (`None`: none).
fn current(conn: &Conn, key: &(String, String, String)) -> Result<Option<(i32, i32)>, String> {
    let (ns, site, change) = key.clone();
    conn.call(move |s| {
        let row = s.client.query_opt(
            "SELECT generation, max(seq) + 1 FROM swing_journal
             WHERE namespace = $1 AND site = $2 AND change = $3
             GROUP BY generation ORDER BY generation DESC LIMIT 1",
            &[&ns, &site, &change],
        )?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    })
}

fn read_generation(
    conn: &Conn,
    key: &(String, String, String),
    generation: i32,
) -> Result<Vec<Record>, String> {
    let (ns, site, change) = key.clone();
    let rows = conn.call(move |s| {
        s.client.query(
            "SELECT record FROM swing_journal
             WHERE namespace = $1 AND site = $2 AND change = $3 AND generation = $4
             ORDER BY seq",
            &[&ns, &site, &change, &generation],
        )
    })?;
    parse_records(rows)
}

/// Journal rows (`record`, in order) → records.
fn parse_records(rows: Vec<postgres::Row>) -> Result<Vec<Record>, String> {
    rows.into_iter()
        .enumerate()
        .map(|(i, r)| {
            let v: serde_json::Value = r.get(0);
            serde_json::from_value(v).map_err(|e| format!("record {i} is damaged: {e}"))
        })
        .collect()
}

/// Lets a store's lock go when dropped: the holder row and the advisory lock.
#[derive(Debug)]
struct Release {
    conn: Arc<Conn>,
    namespace: String,
    site: String,
    key: i64,
    pid: i64,
    host: String,
}

impl Drop for Release {
    fn drop(&mut self) {
        let (ns, site, key, pid, host) = (
            self.namespace.clone(),
            self.site.clone(),
            self.key,
            self.pid,
            self.host.clone(),
        );
        // Best effort: when the session is gone, the server has freed the lock already.
        let _ = self.conn.call(move |s| {
            s.held
                .retain(|(n, st, p, h)| !(n == &ns && st == &site && *p == pid && h == &host));
            s.client.execute(
                "DELETE FROM swing_locks WHERE namespace = $1 AND site = $2 AND pid = $3 AND host = $4",
                &[&ns, &site, &pid, &host],
            )?;
            s.client.execute("SELECT pg_advisory_unlock($1)", &[&key])?;
            Ok(())
        });
    }
}

/// The holder row of a site, and whether anyone holds its advisory lock.
fn holder_row(
    conn: &Conn,
    namespace: &str,
    site: &str,
    key: i64,
) -> Result<(Option<LockHolder>, bool), String> {
    let (ns, site) = (namespace.to_owned(), site.to_owned());
    // A bigint advisory key shows in pg_locks as classid (high 32 bits), objid (low 32 bits).
    let (hi, lo) = ((key >> 32) & 0xffff_ffff, key & 0xffff_ffff);
    conn.call(move |s| {
        let st = s.prepared(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
               AND classid = $1::bigint::oid AND objid = $2::bigint::oid
               AND objsubid = 1 AND granted),
             l.change, l.pid, l.host, l.started_ms, l.heartbeat_ms
             FROM (SELECT 1) one
             LEFT JOIN swing_locks l ON l.namespace = $3 AND l.site = $4",
        )?;
        let r = s.client.query_one(&st, &[&hi, &lo, &ns, &site])?;
        let held: bool = r.get(0);
        let row = r.get::<_, Option<String>>(1).map(|_| r);
        let holder = row.map(|r| {
            let (started, beat): (i64, i64) = (r.get(4), r.get(5));
            LockHolder {
                holder: r.get(1),
                pid: u32::try_from(r.get::<_, i64>(2)).unwrap_or(0),
                host: r.get(3),
                started: swing_engine::time::rfc3339_ms(started),
                heartbeat: swing_engine::time::rfc3339_ms(beat),
                heartbeat_ms: beat,
            }
        });
        Ok((holder, held))
    })
}

impl Store for PgStore {
    fn describe(&self) -> String {
        format!("{} (namespace {})", self.at, self.namespace)
    }

    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn records(&self, site: &str, change: &str) -> Result<Vec<Record>, JournalError> {
        let (ns, site, change) = self.key_of(site, change);
        let rows = self
            .conn
            .call(move |s| {
                let st = s.prepared(
                    "SELECT record FROM swing_journal
                     WHERE namespace = $1 AND site = $2 AND change = $3 AND generation =
                       (SELECT max(generation) FROM swing_journal
                        WHERE namespace = $1 AND site = $2 AND change = $3)
                     ORDER BY seq",
                )?;
                s.client.query(&st, &[&ns, &site, &change])
            })
            .map_err(self.read_err())?;
        parse_records(rows).map_err(self.read_err())
    }

    fn journal(&self, site: &str, change: &str, fresh: bool) -> Result<Journal, JournalError> {
        let key = self.key_of(site, change);
        let (generation, next) = match current(&self.conn, &key).map_err(self.read_err())? {
            None => (0, 0),
            Some((g, _)) if fresh => (g + 1, 0),
            Some((g, n)) => (g, n),
        };
        let at = format!(
            "{} (namespace {}, site {site}, change {change}, journal {generation})",
            self.at, self.namespace
        );
        Ok(Journal::with_sink(
            at.clone(),
            Box::new(PgJournal {
                conn: self.conn.clone(),
                key,
                generation,
                next: Mutex::new(next),
                at,
            }),
        ))
    }

    fn retire_abandoned(&self, site: &str, change: &str) -> Result<String, JournalError> {
        // The abandoned journal stays as it is; the next apply writes the next generation.
        let key = self.key_of(site, change);
        let generation = current(&self.conn, &key)
            .map_err(self.read_err())?
            .map_or(0, |(g, _)| g);
        Ok(format!(
            "{} (namespace {}, site {site}, change {change}, journal {generation})",
            self.at, self.namespace
        ))
    }

    fn lock(&self, site: &str, change: &str, _opts: LockOptions) -> Result<LockGuard, LockError> {
        let key = self.lock_key(site);
        let at = format!("{} (namespace {}, site {site})", self.at, self.namespace);
        let store_err = |message| LockError::Store {
            at: at.clone(),
            message,
        };
        let me = LockHolder::this_process(change);
        let (ns, st, h) = (self.namespace.clone(), site.to_owned(), me.clone());
        let taken = self
            .conn
            .call(move |s| {
                // Advisory locks are reentrant within a session: this store holding the site
                // already is a second holder, refused like any other.
                if s.held.iter().any(|(n, st_, _, _)| n == &ns && st_ == &st) {
                    return Ok(None);
                }
                let got: bool = s
                    .client
                    .query_one("SELECT pg_try_advisory_lock($1)", &[&key])?
                    .get(0);
                if !got {
                    return Ok(None);
                }
                let prev = s.client.query_opt(
                    "SELECT change, pid, host, started_ms, heartbeat_ms FROM swing_locks
                     WHERE namespace = $1 AND site = $2",
                    &[&ns, &st],
                )?;
                let pid = i64::from(h.pid);
                s.client.execute(
                    "INSERT INTO swing_locks
                     (namespace, site, change, pid, host, started_ms, heartbeat_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $6)
                     ON CONFLICT (namespace, site) DO UPDATE SET change = $3, pid = $4,
                     host = $5, started_ms = $6, heartbeat_ms = $6",
                    &[&ns, &st, &h.holder, &pid, &h.host, &h.heartbeat_ms],
                )?;
                s.held.push((ns, st, pid, h.host.clone()));
                Ok(Some(prev.map(|r| {
                    let (started, beat): (i64, i64) = (r.get(3), r.get(4));
                    LockHolder {
                        holder: r.get(0),
                        pid: u32::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                        host: r.get(2),
                        started: swing_engine::time::rfc3339_ms(started),
                        heartbeat: swing_engine::time::rfc3339_ms(beat),
                        heartbeat_ms: beat,
                    }
                })))
            })
            .map_err(store_err)?;
        match taken {
            Some(took_over) => Ok(LockGuard::in_store(
                at,
                me.clone(),
                took_over,
                Box::new(Release {
                    conn: self.conn.clone(),
                    namespace: self.namespace.clone(),
                    site: site.to_owned(),
                    key,
                    pid: i64::from(me.pid),
                    host: me.host,
                }),
            )),
            None => match holder_row(&self.conn, &self.namespace, site, key) {
                Ok((Some(holder), _)) => Err(LockError::Held {
                    at,
                    holder: Box::new(holder),
                }),
                Ok((None, _)) => Err(LockError::HeldUnknown { at }),
                Err(message) => Err(LockError::Store { at, message }),
            },
        }
    }

    fn holder(&self, site: &str) -> Option<LockHolder> {
        match holder_row(&self.conn, &self.namespace, site, self.lock_key(site)) {
            Ok((holder, true)) => holder,
            _ => None,
        }
    }

    fn force_unlock(&self, site: &str) -> Result<Option<LockHolder>, LockError> {
        let key = self.lock_key(site);
        let at = format!("{} (namespace {}, site {site})", self.at, self.namespace);
        let (holder, held) =
            holder_row(&self.conn, &self.namespace, site, key).map_err(|message| {
                LockError::Store {
                    at: at.clone(),
                    message,
                }
            })?;
        if held {
            return Err(match holder {
                Some(h) => LockError::Held {
                    at,
                    holder: Box::new(h),
                },
                None => LockError::HeldUnknown { at },
            });
        }
        let (ns, st) = (self.namespace.clone(), site.to_owned());
        self.conn
            .call(move |s| {
                s.client.execute(
                    "DELETE FROM swing_locks WHERE namespace = $1 AND site = $2",
                    &[&ns, &st],
                )
            })
            .map_err(|message| LockError::Store { at, message })?;
        Ok(holder)
    }

    fn unfinished(&self) -> Result<Vec<(String, Option<String>)>, JournalError> {
        let ns = self.namespace.clone();
        let changes = self
            .conn
            .call(move |s| {
                s.client.query(
                    "SELECT DISTINCT site, change FROM swing_journal WHERE namespace = $1
                     ORDER BY change, site",
                    &[&ns],
                )
            })
            .map_err(self.read_err())?;
        let mut out = Vec::new();
        for row in changes {
            let (site, change): (String, String) = (row.get(0), row.get(1));
            let h = History::fold(&self.records(&site, &change)?);
            if h.unfinished() {
                out.push((change, h.last_source.flatten()));
            }
        }
        Ok(out)
    }

    fn record_saved_plan(&self, site: &str, saved: &SavedPlanRecord) -> Result<(), JournalError> {
        let (ns, st, rec) = (self.namespace.clone(), site.to_owned(), saved.clone());
        let now = swing_engine::time::now_ms();
        self.conn
            .call(move |s| {
                s.client.execute(
                    "INSERT INTO swing_saved_plans
                     (namespace, site, change, digest, signer, recorded_ms)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    &[&ns, &st, &rec.change, &rec.digest, &rec.signer, &now],
                )
            })
            .map(|_| ())
            .map_err(|message| JournalError::Store {
                doing: "write",
                at: self.at.clone(),
                message,
            })
    }

    fn saved_plans(&self, site: &str, change: &str) -> Result<Vec<SavedPlanRecord>, JournalError> {
        let (ns, st, ch) = (self.namespace.clone(), site.to_owned(), change.to_owned());
        let rows = self
            .conn
            .call(move |s| {
                s.client.query(
                    "SELECT change, digest, signer FROM swing_saved_plans
                     WHERE namespace = $1 AND site = $2 AND change = $3 ORDER BY recorded_ms",
                    &[&ns, &st, &ch],
                )
            })
            .map_err(self.read_err())?;
        Ok(rows
            .into_iter()
            .map(|r| SavedPlanRecord {
                change: r.get(0),
                digest: r.get(1),
                signer: r.get(2),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_sockets_may_go_plain_nothing_else() {
        assert!(is_loopback(&Host::Tcp("127.0.0.1".into())));
        assert!(is_loopback(&Host::Tcp("::1".into())));
        assert!(is_loopback(&Host::Tcp("localhost".into())));
        assert!(is_loopback(&Host::Unix("/run/postgresql".into())));
        assert!(!is_loopback(&Host::Tcp("db.example.com".into())));
        assert!(!is_loopback(&Host::Tcp("10.0.0.5".into())));
    }

    #[test]
    fn messages_name_the_server_never_the_password() {
        let c: Config = "postgres://swing:hunter2-canary@db.example.com:6543/state"
            .parse()
            .unwrap();
        let d = describe(&c);
        assert_eq!(d, "postgres db.example.com:6543/state");
        assert!(!d.contains("hunter2"));
    }

    #[test]
    fn a_bad_url_is_refused_without_echoing_it() {
        let e = PgStore::connect(
            &SecretValue::new("postgres://u:hunter2-canary@[::1"),
            "default",
            None,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
