//! The simulator's certificate authority and leaf certificates.
//!
//! Owns: loading or creating `DIR/ca.pem` + `DIR/ca.key` (key mode 0600, written atomically;
//! concurrent simulators serialise creation with an `O_EXCL` lock file so they end up sharing
//! one CA), issuing leaf certificates with the site hostname and addresses as SANs and a
//! chosen validity, and turning them into rustls [`CertifiedKey`]s.
//!
//! Must not: log or return private key material except through the explicit certificate
//! export of the automation API; disable or weaken verification anywhere.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

use crate::SimError;

const CA_CN: &str = "swing-sim test CA";

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_CN);
    dn.push(DnType::OrganizationName, "swing simulator");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(3650);
    p
}

/// The CA a simulator signs its leaf certificates with.
pub(crate) struct Ca {
    pub pem: String,
    pub pem_path: PathBuf,
    der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> SimError {
    SimError::Ca(format!("{what} {}: {e}", path.display()))
}

/// Write `contents` to `path` atomically (temp file in the same directory + rename) with `mode`.
fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), SimError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        fastrand::u64(..)
    ));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| io_err("cannot create", &tmp, e))?;
    f.write_all(contents)
        .map_err(|e| io_err("cannot write", &tmp, e))?;
    f.sync_all().map_err(|e| io_err("cannot sync", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err("cannot rename into", path, e)
    })
}

/// Removes the creation lock file when dropped.
struct LockGuard(PathBuf);
impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

impl Ca {
    /// Reuse `dir/ca.pem` + `dir/ca.key`, or create them. Safe against concurrent callers
    /// (other threads or processes) using the same directory.
    pub(crate) fn load_or_create(dir: &Path) -> Result<Ca, SimError> {
        fs::create_dir_all(dir).map_err(|e| io_err("cannot create", dir, e))?;
        let pem_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        let lock_path = dir.join(".ca.lock");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // ca.pem is written last, so its presence means the pair is complete.
            if pem_path.exists() {
                return Self::load(&pem_path, &key_path);
            }
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&lock_path)
            {
                Ok(_) => {
                    let _guard = LockGuard(lock_path.clone());
                    if pem_path.exists() {
                        return Self::load(&pem_path, &key_path);
                    }
                    return Self::create(&pem_path, &key_path);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // Someone else is creating it. A lock older than 30 s is stale.
                    let stale = fs::metadata(&lock_path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok())
                        .is_some_and(|age| age > Duration::from_secs(30));
                    if stale {
                        let _ = fs::remove_file(&lock_path);
                        continue;
                    }
                    if Instant::now() > deadline {
                        return Err(SimError::Ca(format!(
                            "timed out waiting for another simulator to create {}",
                            pem_path.display()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(io_err("cannot create", &lock_path, e)),
            }
        }
    }

    fn create(pem_path: &Path, key_path: &Path) -> Result<Ca, SimError> {
        let key = KeyPair::generate().map_err(|e| SimError::Ca(format!("key generation: {e}")))?;
        let params = ca_params();
        let cert = params
            .self_signed(&key)
            .map_err(|e| SimError::Ca(format!("CA certificate: {e}")))?;
        write_atomic(key_path, key.serialize_pem().as_bytes(), 0o600)?;
        let pem = cert.pem();
        write_atomic(pem_path, pem.as_bytes(), 0o644)?;
        Ok(Ca {
            pem,
            pem_path: pem_path.to_path_buf(),
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    fn load(pem_path: &Path, key_path: &Path) -> Result<Ca, SimError> {
        let pem = fs::read_to_string(pem_path).map_err(|e| io_err("cannot read", pem_path, e))?;
        let key_pem =
            fs::read_to_string(key_path).map_err(|e| io_err("cannot read", key_path, e))?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| {
            SimError::Ca(format!(
                "{}: not a usable private key: {e}",
                key_path.display()
            ))
        })?;
        let der = pem_to_der(&pem)
            .ok_or_else(|| SimError::Ca(format!("{}: no certificate in it", pem_path.display())))?;
        // The issuer is rebuilt from the fixed CA name and the stored key: leaf certificates
        // name the CA's subject and carry the key's identifier, so they chain to ca.pem.
        Ok(Ca {
            pem,
            pem_path: pem_path.to_path_buf(),
            der,
            issuer: Issuer::new(ca_params(), key),
        })
    }

    /// Issue a leaf for `site` and `ips`, valid `valid_days` from now (negative: already expired).
    pub(crate) fn issue_leaf(
        &self,
        site: &str,
        ips: &[IpAddr],
        valid_days: i64,
    ) -> Result<Leaf, SimError> {
        let key = KeyPair::generate().map_err(|e| SimError::Ca(format!("key generation: {e}")))?;
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, site);
        p.distinguished_name = dn;
        let mut sans =
            vec![SanType::DnsName(site.try_into().map_err(|e| {
                SimError::Invalid(format!("site {site:?}: {e}"))
            })?)];
        let mut san_text = vec![site.to_string()];
        for ip in ips {
            if !san_text.contains(&ip.to_string()) {
                sans.push(SanType::IpAddress(*ip));
                san_text.push(ip.to_string());
            }
        }
        p.subject_alt_names = sans;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let now = time::OffsetDateTime::now_utc();
        // Clamped to ±100 years so no input can overflow the date arithmetic.
        let not_after = now + time::Duration::days(valid_days.clamp(-36_500, 36_500));
        p.not_after = not_after;
        p.not_before = std::cmp::min(
            now - time::Duration::days(1),
            not_after - time::Duration::days(30),
        );
        p.serial_number = Some(rcgen::SerialNumber::from_slice(
            &fastrand::u64(1..).to_be_bytes(),
        ));
        let cert = p
            .signed_by(&key, &self.issuer)
            .map_err(|e| SimError::Ca(format!("leaf certificate: {e}")))?;
        let not_after_unix = not_after.unix_timestamp();
        Ok(Leaf {
            chain: vec![cert.der().clone(), self.der.clone()],
            chain_pem: format!("{}{}", cert.pem(), self.pem),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
            sans: san_text,
            not_after_unix,
        })
    }
}

/// A leaf certificate with its chain and key.
#[derive(Clone)]
pub(crate) struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub chain_pem: String,
    pub key_pem: String,
    key_der: Vec<u8>,
    pub sans: Vec<String>,
    pub not_after_unix: i64,
}

impl Leaf {
    /// SHA-256 of the leaf certificate (DER), lowercase hex.
    pub fn leaf_sha256(&self) -> String {
        self.chain
            .first()
            .map(|c| hex(&Sha256::digest(c.as_ref())))
            .unwrap_or_default()
    }

    pub fn certified_key(&self) -> Result<Arc<CertifiedKey>, SimError> {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        CertifiedKey::from_der(self.chain.clone(), key, &provider)
            .map(Arc::new)
            .map_err(|e| SimError::Ca(format!("certificate and key do not fit: {e}")))
    }

    /// Rebuild a leaf from a PEM bundle: the certificate chain (leaf first) and exactly one
    /// private key, the blocks in any order, text between them ignored (what exports and
    /// `openssl pkcs12 -nodes` write). Errors never quote the bundle.
    pub fn from_bundle(bundle: &str) -> Result<Leaf, SimError> {
        use rustls::pki_types::pem::SectionKind;
        let bad = |m: &str| SimError::Invalid(format!("certificate bundle: {m}"));
        let mut chain: Vec<CertificateDer<'static>> = Vec::new();
        let mut keys: Vec<PrivateKeyDer<'static>> = Vec::new();
        for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(bundle.as_bytes()) {
            let (kind, der) = section.map_err(|e| bad(&format!("unreadable PEM: {e}")))?;
            match kind {
                SectionKind::Certificate => chain.push(CertificateDer::from(der)),
                SectionKind::PrivateKey => keys.push(PrivateKeyDer::Pkcs8(der.into())),
                SectionKind::EcPrivateKey => keys.push(PrivateKeyDer::Sec1(der.into())),
                SectionKind::RsaPrivateKey => keys.push(PrivateKeyDer::Pkcs1(der.into())),
                // Public keys, CRLs, CSRs: not part of a certificate installation.
                _ => {}
            }
        }
        let first = chain.first().ok_or_else(|| bad("no CERTIFICATE block"))?;
        let key = match keys.as_slice() {
            [] => return Err(bad("no PRIVATE KEY block")),
            [k] => k,
            _ => return Err(bad("more than one PRIVATE KEY block")),
        };
        let key = KeyPair::try_from(key)
            .map_err(|e| bad(&format!("private key: {e} (a PKCS#8 key is expected)")))?;
        let (sans, not_after_unix) = inspect_leaf(first.as_ref())?;
        let chain_pem = chain
            .iter()
            .map(|c| pem_encode("CERTIFICATE", c.as_ref()))
            .collect::<String>();
        let leaf = Leaf {
            chain,
            chain_pem,
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
            sans,
            not_after_unix,
        };
        leaf.certified_key()?; // checks that key and certificate belong together
        Ok(leaf)
    }
}

/// SANs (DNS names and IPs as text) and notAfter (UNIX seconds) of a DER certificate.
pub(crate) fn inspect_leaf(der: &[u8]) -> Result<(Vec<String>, i64), SimError> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| SimError::Invalid(format!("not an X.509 certificate: {e}")))?;
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => sans.push((*d).to_string()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => sans.push(
                        IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default()).to_string(),
                    ),
                    16 => sans.push(
                        IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default()).to_string(),
                    ),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Ok((sans, cert.validity().not_after.timestamp()))
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn pem_to_der(pem: &str) -> Option<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .and_then(Result::ok)
}
