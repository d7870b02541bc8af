//! Network namespaces, nftables and iptables for the NAT tests: namespaces the test process
//! creates itself, commands run inside them, loading and reading back a gateway's `ip swing`
//! table (nft) or its `nat` table (iptables-restore / iptables-save) and its conntrack entries (used by every NAT harness: this module's provider-test network,
//! [`crate::nat_net`] and [`crate::nat_gateway`]), and the provider tests' small network with
//! real TCP traffic through it.
//!
//! Owns: namespace lifecycle (unique names `swt-<pid>-<n>-<role>`, deleted on Drop even when
//! the test panics), the topology (client → gateway with the DNAT rule → appliance A or B),
//! tiny HTTP servers that answer with their own name (threads that `setns` into an appliance
//! namespace), `curl` run inside the client namespace, and an `nft monitor` tap on the gateway.
//!
//! Must not: send traffic anywhere but inside its own namespaces (the 10.213.x.y addresses
//! exist only there), touch the root namespace's network configuration, or skip silently when
//! not root — it fails with a clear message instead.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The virtual IP:port clients use; it exists only as a DNAT match inside the gateway.
pub const VIP: &str = "10.213.0.10:443";
/// Appliance A and B as the DNAT targets.
pub const A: &str = "10.213.2.2:8080";
pub const B: &str = "10.213.3.2:8080";

/// Fails the test with a clear message unless running as root with the tools installed.
pub fn require_root_and_tools(tools: &[&str]) {
    // SAFETY: geteuid has no preconditions and touches no memory.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test needs root (it creates network namespaces and nftables rules); CI runs as root — \
         run it as root, e.g. `sudo -E cargo test -p swing-providers --test nat_nftables`"
    );
    for t in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            found,
            "this test needs `{t}` (scripts/test installs nftables, iptables, iproute2, conntrack, curl as root)"
        );
    }
}

/// Runs a command; panics with its stderr when it fails. Returns stdout.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command inside namespace `ns`; returns (success, stdout, stderr).
pub fn in_ns(ns: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip netns exec {ns} {args:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Loads an nft script (`nft -f -`) inside namespace `ns`; panics with nft's stderr on failure.
pub fn nft_load(ns: &str, script: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nft");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write nft script");
    let out = child.wait_with_output().expect("nft");
    assert!(
        out.status.success(),
        "nft -f failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Loads an `iptables-restore --noflush` batch inside namespace `ns` (one transaction); panics
/// with its stderr on failure.
pub fn iptables_load(ns: &str, batch: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "iptables-restore", "--noflush"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run iptables-restore");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(batch.as_bytes())
        .expect("write iptables batch");
    let out = child.wait_with_output().expect("iptables-restore");
    assert!(
        out.status.success(),
        "iptables-restore failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `-A …` lines of `iptables-save -t TABLE` in namespace `ns` (no comments, no counters,
/// no timestamps: comparable before and after); panics when iptables cannot list the table.
pub fn iptables_rules(ns: &str, table: &str) -> Vec<String> {
    let (ok, out, err) = in_ns(ns, &["iptables-save", "-t", table]);
    assert!(ok, "iptables-save -t {table} in {ns}: {err}");
    out.lines()
        .filter(|l| l.starts_with("-A "))
        .map(str::to_owned)
        .collect()
}

/// The rule objects of `nft -j list chain ip swing prerouting` in namespace `ns`; `Err` with
/// nft's stderr when the listing fails (the table or the namespace is gone).
pub fn prerouting_rules(ns: &str) -> Result<Vec<serde_json::Value>, String> {
    let (ok, out, err) = in_ns(
        ns,
        &["nft", "-j", "list", "chain", "ip", "swing", "prerouting"],
    );
    if !ok {
        return Err(err);
    }
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| format!("nft JSON: {e}"))?;
    Ok(v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("rule").cloned())
        .collect())
}

/// The DNAT target (`ip:port`) of a rule object, if it has one.
pub fn dnat_target(rule: &serde_json::Value) -> Option<String> {
    rule["expr"].as_array()?.iter().find_map(|e| {
        let d = e.get("dnat")?;
        Some(format!(
            "{}:{}",
            d["addr"].as_str().unwrap_or("?"),
            d["port"]
        ))
    })
}

/// How many TCP conntrack entries in namespace `ns` match `filter` (`conntrack -L` options).
pub fn conntrack_count(ns: &str, filter: &[&str]) -> u64 {
    let mut args = vec!["conntrack", "-L", "-p", "tcp"];
    args.extend_from_slice(filter);
    let (_, _, err) = in_ns(ns, &args);
    let idx = err
        .find(" flow entries have been shown")
        .unwrap_or_else(|| panic!("conntrack -L said: {err}"));
    err[..idx]
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .expect("count")
}

/// Polls `f` every 10 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Namespaces deleted on Drop (also during a panic's unwinding).
#[derive(Default)]
pub struct Namespaces {
    pub names: Vec<String>,
}

impl Namespaces {
    pub fn new() -> Self {
        Namespaces { names: Vec::new() }
    }
    /// Creates `swt-<pid>-<n>-<role>` with loopback up.
    pub fn add(&mut self, role: &str) -> String {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("swt-{}-{n}-{role}", std::process::id());
        sh(&["ip", "netns", "add", &name]);
        self.names.push(name.clone());
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        name
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in self.names.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", n])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Runs `f` on a thread that has entered namespace `ns` (sockets it creates live there).
pub fn in_netns_thread<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: setns on a valid namespace fd changes only this thread's network namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "setns into {path} failed: {}",
            std::io::Error::last_os_error()
        );
        f()
    })
}

/// A TCP server inside a namespace answering every HTTP request with its name.
pub struct NameServer {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl NameServer {
    pub fn start(ns: &str, port: u16, name: &'static str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let stop2 = stop.clone();
        let thread = in_netns_thread(ns, move || {
            let listener = match TcpListener::bind(("0.0.0.0", port)).and_then(|l| {
                l.set_nonblocking(true)?;
                Ok(l)
            }) {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = tx.send(Ok(()));
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        thread::spawn(move || serve(s, name));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => break,
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("server {name} in {ns} could not bind: {e}"),
            Err(_) => panic!("server {name} in {ns} did not start"),
        }
        NameServer {
            stop,
            thread: Some(thread),
        }
    }
}

fn serve(mut s: TcpStream, name: &str) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}",
        name.len()
    );
    let _ = s.write_all(resp.as_bytes());
}

impl Drop for NameServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// client ⇄ gw ⇄ {a, b}; the gateway forwards and holds the site's DNAT rule `VIP → A` (no
/// comment, as a rule predating swing) among unrelated rules: in `table ip swing` written with
/// nft ([`Lab::new`]), or in iptables' `nat PREROUTING` written with iptables
/// ([`Lab::with_iptables`]).
pub struct Lab {
    // Field order = drop order: servers stop before the namespaces go.
    servers: Vec<NameServer>,
    pub ns: Namespaces,
    pub client: String,
    pub gw: String,
    pub a: String,
    pub b: String,
}

/// The gateway's ruleset: the site's rule for the VIP plus neighbours swing must not touch.
pub const GATEWAY_RULESET: &str = "table ip swing {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr 10.213.0.10 tcp dport 22 counter dnat to 10.213.3.2:22
    ip daddr 10.213.0.10 tcp dport 443 counter dnat to 10.213.2.2:8080
    ip daddr 10.213.0.11 tcp dport 443 dnat to 10.213.3.2:8080 comment \"another service\"
  }
}
";

/// The same rules as [`GATEWAY_RULESET`], written by iptables (`iptables-restore` batch).
pub const GATEWAY_IPTABLES: &str = "*nat
-A PREROUTING -d 10.213.0.10/32 -p tcp -m tcp --dport 22 -j DNAT --to-destination 10.213.3.2:22
-A PREROUTING -d 10.213.0.10/32 -p tcp -m tcp --dport 443 -j DNAT --to-destination 10.213.2.2:8080
-A PREROUTING -d 10.213.0.11/32 -p tcp -m tcp --dport 443 -m comment --comment \"another service\" -j DNAT --to-destination 10.213.3.2:8080
COMMIT
";

impl Lab {
    /// Builds the topology with the rules in nft's `table ip swing`; with `traffic`, also
    /// starts the two appliance servers.
    pub fn new(traffic: bool) -> Self {
        let lab = Self::topology(traffic);
        lab.nft_script(GATEWAY_RULESET);
        lab
    }

    /// Builds the topology with the rules written by iptables ([`GATEWAY_IPTABLES`]).
    pub fn with_iptables(traffic: bool) -> Self {
        let lab = Self::topology(traffic);
        iptables_load(&lab.gw, GATEWAY_IPTABLES);
        lab
    }

    /// The gateway's `iptables-save -t nat` rules (`-A …` lines).
    pub fn iptables_rules(&self) -> Vec<String> {
        iptables_rules(&self.gw, "nat")
    }

    fn topology(traffic: bool) -> Self {
        let mut ns = Namespaces::new();
        let client = ns.add("cl");
        let gw = ns.add("gw");
        let a = ns.add("a");
        let b = ns.add("b");
        let mut lab = Lab {
            servers: Vec::new(),
            ns,
            client,
            gw,
            a,
            b,
        };
        let gw = lab.gw.clone();
        for (peer, gw_if, peer_if, net) in [
            (&lab.client, "gc", "c0", "1"),
            (&lab.a, "ga", "a0", "2"),
            (&lab.b, "gb", "b0", "3"),
        ] {
            sh(&[
                "ip", "-n", &gw, "link", "add", gw_if, "type", "veth", "peer", "name", peer_if,
                "netns", peer,
            ]);
            sh(&[
                "ip",
                "-n",
                &gw,
                "addr",
                "add",
                &format!("10.213.{net}.1/24"),
                "dev",
                gw_if,
            ]);
            sh(&["ip", "-n", &gw, "link", "set", gw_if, "up"]);
            sh(&[
                "ip",
                "-n",
                peer,
                "addr",
                "add",
                &format!("10.213.{net}.2/24"),
                "dev",
                peer_if,
            ]);
            sh(&["ip", "-n", peer, "link", "set", peer_if, "up"]);
            sh(&[
                "ip",
                "-n",
                peer,
                "route",
                "add",
                "default",
                "via",
                &format!("10.213.{net}.1"),
            ]);
        }
        let (ok, _, err) = in_ns(&gw, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        assert!(ok, "enable forwarding in {gw}: {err}");
        if traffic {
            lab.servers
                .push(NameServer::start(&lab.a, 8080, "appliance-a"));
            lab.servers
                .push(NameServer::start(&lab.b, 8080, "appliance-b"));
        }
        lab
    }

    /// Loads an nft script into the gateway.
    pub fn nft_script(&self, script: &str) {
        nft_load(&self.gw, script);
    }

    /// `nft -j list chain ip swing prerouting` → the rule objects.
    pub fn rules(&self) -> Vec<serde_json::Value> {
        prerouting_rules(&self.gw).unwrap_or_else(|e| panic!("nft list: {e}"))
    }

    /// An HTTP GET to the VIP from the client namespace with curl; the body.
    pub fn curl_vip(&self) -> String {
        let url = format!("http://{VIP}/");
        let (ok, out, err) = in_ns(&self.client, &["curl", "-sS", "--max-time", "5", &url]);
        assert!(ok, "curl {url} from {} failed: {err}", self.client);
        out
    }

    /// A TCP connection to the VIP opened from the client namespace (kept open by the caller).
    pub fn connect_vip(&self) -> TcpStream {
        let vip: SocketAddr = VIP.parse().expect("VIP");
        in_netns_thread(&self.client, move || {
            TcpStream::connect_timeout(&vip, Duration::from_secs(5))
        })
        .join()
        .expect("connect thread")
        .expect("connect to VIP")
    }

    /// Conntrack entries in the gateway whose reply comes from `addr` (`ip:port`).
    pub fn conntrack_count_from(&self, addr: &str) -> u64 {
        let (ip, port) = addr.split_once(':').expect("ip:port");
        conntrack_count(&self.gw, &["--reply-src", ip, "--reply-port-src", port])
    }
}

/// `nft monitor` running in a namespace; lines collected by a reader thread.
pub struct Monitor {
    child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
    ns: String,
}

impl Monitor {
    /// Starts the monitor and returns once it provably sees events (a probe table).
    pub fn start(ns: &str) -> Self {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "monitor"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nft monitor");
        let out = child.stdout.take().expect("monitor stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                match line {
                    Ok(l) => l2.lock().expect("lines").push(l),
                    Err(_) => break,
                }
            }
        });
        let m = Monitor {
            child,
            lines,
            ns: ns.to_owned(),
        };
        wait_for(
            "nft monitor to see a probe",
            Duration::from_secs(10),
            || {
                m.marker("swt_probe");
                let t = Instant::now();
                while t.elapsed() < Duration::from_millis(200) {
                    if m.position_after("delete table ip swt_probe").is_some() {
                        return Some(());
                    }
                    thread::sleep(Duration::from_millis(10));
                }
                None
            },
        );
        m
    }

    /// One transaction that adds and deletes table `name` — visible as a marker in the stream.
    pub fn marker(&self, name: &str) {
        let (ok, _, err) = in_ns(
            &self.ns,
            &[
                "nft",
                &format!("add table ip {name}; delete table ip {name}"),
            ],
        );
        assert!(ok, "marker {name}: {err}");
    }

    /// Index just past the generation line that follows the last line containing `needle`.
    pub fn position_after(&self, needle: &str) -> Option<usize> {
        let lines = self.lines.lock().expect("lines");
        let at = lines.iter().rposition(|l| l.contains(needle))?;
        let gen_at = lines[at..]
            .iter()
            .position(|l| l.starts_with("# new generation"))?;
        Some(at + gen_at + 1)
    }

    pub fn snapshot(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
