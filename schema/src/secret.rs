//! Secrets: references in the plan (`${env:NAME}`, `${file:PATH}`) and resolved values.
//!
//! Owns the reference syntax and the one type that may hold a resolved secret,
//! [`SecretValue`], which implements neither `Debug`-with-content, `Display`, nor `Serialize`.
//! Must not: read environment variables or files (resolution is the engine's job, done only
//! when a provider needs the value), or ever put a resolved value into a `String` it returns.

use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// JSON-schema pattern of a secret reference.
pub const SECRET_REF_PATTERN: &str = r"^\$\{(env|file):[^}]+\}$";

/// Where a secret comes from. The reference text is not secret and may be shown.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum SecretRef {
    /// `${env:NAME}`
    Env(String),
    /// `${file:PATH}` (relative paths are relative to the plan file)
    File(String),
}

impl SecretRef {
    /// Parses a reference. The error never contains the input (it may be a literal secret).
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let inner = s
            .strip_prefix("${")
            .and_then(|r| r.strip_suffix('}'))
            .ok_or("a secret must be a reference like ${env:NAME} or ${file:PATH}, not a literal value")?;
        if let Some(name) = inner.strip_prefix("env:") {
            if !name.is_empty() && !name.contains('}') {
                return Ok(SecretRef::Env(name.to_owned()));
            }
        } else if let Some(path) = inner.strip_prefix("file:")
            && !path.is_empty()
            && !path.contains('}')
        {
            return Ok(SecretRef::File(path.to_owned()));
        }
        Err("a secret reference must be ${env:NAME} or ${file:PATH}")
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(n) => write!(f, "${{env:{n}}}"),
            SecretRef::File(p) => write!(f, "${{file:{p}}}"),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretRef({self})")
    }
}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SecretRef::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for SecretRef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretRef".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": SECRET_REF_PATTERN,
            "description": "A secret reference: ${env:NAME} or ${file:PATH}. Literal secrets are refused.",
            "examples": ["${env:SWING_BACKUP_PASSWORD}", "${file:./secrets/tsig.key}"]
        })
    }
}

/// A resolved secret. Cannot be printed, formatted with content, cloned into a `String`
/// implicitly, or serialized. Use [`SecretValue::expose`] at the single point of use.
pub struct SecretValue(Box<str>);

impl SecretValue {
    pub fn new(v: impl Into<Box<str>>) -> Self {
        SecretValue(v.into())
    }
    /// The secret text, for the one call that sends it (HTTP auth, TSIG key, backup password).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Clone for SecretValue {
    fn clone(&self) -> Self {
        SecretValue(self.0.clone())
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        // Best effort: overwrite the bytes before the allocation is freed.
        // SAFETY: writing zero bytes keeps the str valid UTF-8.
        unsafe {
            for b in self.0.as_bytes_mut() {
                std::ptr::write_volatile(b, 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        assert_eq!(SecretRef::parse("${env:X}"), Ok(SecretRef::Env("X".into())));
        assert_eq!(
            SecretRef::parse("${file:./k}"),
            Ok(SecretRef::File("./k".into()))
        );
        assert!(SecretRef::parse("hunter2").is_err());
        assert!(SecretRef::parse("${env:}").is_err());
        assert!(SecretRef::parse("${vault:x}").is_err());
    }

    #[test]
    fn value_is_redacted() {
        let v = SecretValue::new("hunter2");
        assert_eq!(format!("{v:?}"), "SecretValue(<redacted>)");
        assert_eq!(v.expose(), "hunter2");
    }
}
