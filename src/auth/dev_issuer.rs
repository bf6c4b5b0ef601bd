//! The development issuer: an OpenID Connect issuer built into Marquee so that `marquee demo`
//! signs in with nothing installed. Its RSA key is generated on first start and kept in
//! `<data-dir>/dev-issuer.json`; the server publishes it (discovery + JWKS) and validates the
//! tokens signed with it exactly like an external provider's — over HTTP, through
//! `TokenValidator`. This module holds the keys, mints tokens and keeps the short-lived
//! authorization codes; `api::auth` serves the endpoints.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::caller::Role;
use crate::clock::Clock;
use crate::domain::AccountId;

pub const KEY_FILE: &str = "dev-issuer.json";
/// How long a development access token lives.
pub const TOKEN_TTL: Duration = Duration::from_secs(8 * 3600);
/// How long an authorization code may wait for its exchange.
const CODE_TTL: Duration = Duration::from_secs(120);
/// Codes waiting at once; more are refused (a bounded map, not a memory leak).
const MAX_PENDING_CODES: usize = 10_000;

/// Accounts the sign-in page offers. MovieLens user N is account N; the roles are what the
/// development issuer puts in their tokens.
pub const DEMO_ACCOUNTS: &[(&str, Role, &str)] = &[
    (
        "1",
        Role::Viewer,
        "Viewer — account 1 (profiles 1 and 1-kids when it exists)",
    ),
    ("2", Role::Viewer, "Viewer — account 2"),
    (
        "3",
        Role::Pm,
        "Product manager — account 3 (experiment reports, previews)",
    ),
    ("4", Role::Admin, "Admin — account 4 (models)"),
];

#[derive(Serialize, Deserialize)]
struct KeyFile {
    /// Newest first; the first one signs, all of them verify (rotation keeps old tokens valid).
    keys: Vec<StoredKey>,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    /// PKCS#8 DER, base64.
    pkcs8: String,
}

struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    encoding: EncodingKey,
    n: String,
    e: String,
}

impl SigningKey {
    fn from_pkcs8(kid: String, pkcs8: Vec<u8>) -> Result<Self> {
        let pair = KeyPair::from_pkcs8(&pkcs8).map_err(|e| anyhow!("RSA key: {e}"))?;
        let public = pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD
                .encode(&pkcs8)
                .as_bytes()
                .chunks(64)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("\n")
        );
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).context("RSA key")?;
        Ok(SigningKey {
            kid,
            pkcs8,
            encoding,
            n,
            e,
        })
    }

    fn generate() -> Result<Self> {
        let pair = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| anyhow!("RSA key generation failed"))?;
        let der = pair
            .as_der()
            .map_err(|_| anyhow!("RSA key encoding failed"))?
            .as_ref()
            .to_vec();
        let mut id = [0u8; 12];
        aws_lc_rs::rand::fill(&mut id).map_err(|_| anyhow!("no randomness"))?;
        Self::from_pkcs8(URL_SAFE_NO_PAD.encode(id), der)
    }
}

/// The development issuer's keys.
pub struct DevIssuer {
    keys: Vec<SigningKey>,
}

impl DevIssuer {
    /// A fresh issuer with one new key (tests; `load_or_create` for servers).
    pub fn generate() -> Result<Self> {
        Ok(DevIssuer {
            keys: vec![SigningKey::generate()?],
        })
    }

    pub fn key_file(data_dir: &Path) -> PathBuf {
        data_dir.join(KEY_FILE)
    }

    /// The issuer of `data_dir`, reading its key file.
    pub fn load(data_dir: &Path) -> Result<Self> {
        let path = Self::key_file(data_dir);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {} (the development issuer creates it on first start of `marquee demo` or `serve --mode development`)",
                path.display()
            )
        })?;
        let file: KeyFile =
            serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
        let keys = file
            .keys
            .into_iter()
            .map(|k| {
                let der = STANDARD.decode(&k.pkcs8).context("key is not base64")?;
                SigningKey::from_pkcs8(k.kid, der)
            })
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("{}", path.display()))?;
        if keys.is_empty() {
            anyhow::bail!("{}: no keys", path.display());
        }
        Ok(DevIssuer { keys })
    }

    /// Loads the key file, creating it (with a new key, readable by its owner only) when
    /// there is none.
    pub fn load_or_create(data_dir: &Path) -> Result<Self> {
        if Self::key_file(data_dir).exists() {
            return Self::load(data_dir);
        }
        let issuer = Self::generate()?;
        issuer.save(data_dir)?;
        Ok(issuer)
    }

    /// Writes the key file (write, then rename: a crash never leaves half a key).
    pub fn save(&self, data_dir: &Path) -> Result<()> {
        let file = KeyFile {
            keys: self
                .keys
                .iter()
                .map(|k| StoredKey {
                    kid: k.kid.clone(),
                    pkcs8: STANDARD.encode(&k.pkcs8),
                })
                .collect(),
        };
        let path = Self::key_file(data_dir);
        let tmp = path.with_extension("json.tmp");
        {
            use std::io::Write as _;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts
                .open(&tmp)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            f.write_all(serde_json::to_string_pretty(&file)?.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    /// Starts signing with a new key; the old ones stay published so tokens already issued
    /// keep working until they expire.
    pub fn rotate(&mut self) -> Result<()> {
        self.keys.insert(0, SigningKey::generate()?);
        self.keys.truncate(3);
        Ok(())
    }

    /// The id of the key that signs.
    pub fn kid(&self) -> &str {
        &self.keys[0].kid
    }

    /// The published keys (JWKS).
    pub fn jwks(&self) -> Value {
        json!({
            "keys": self.keys.iter().map(|k| json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": k.kid, "n": k.n, "e": k.e,
            })).collect::<Vec<_>>()
        })
    }

    /// Signs `claims` with the current key (RS256, `kid` in the header).
    pub fn sign(&self, claims: &Value) -> Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.keys[0].kid.clone());
        jsonwebtoken::encode(&header, claims, &self.keys[0].encoding).context("signing a token")
    }

    /// The PKCS#8 DER of the signing key (tests forge tokens with it).
    pub fn signing_key_pkcs8(&self) -> &[u8] {
        &self.keys[0].pkcs8
    }

    /// An access token for `account` with `role`, valid from now for `TOKEN_TTL`.
    pub fn token(
        &self,
        issuer: &str,
        audience: &str,
        account: &AccountId,
        role: Role,
    ) -> Result<String> {
        let now = Clock::System.now() / 1000;
        let roles: Vec<&str> = match role {
            Role::Viewer => vec![],
            r => vec![r.as_str()],
        };
        self.sign(&json!({
            "iss": issuer,
            "sub": account.as_str(),
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_TTL.as_secs() as i64,
            "roles": roles,
        }))
    }
}

/// The discovery document of the development issuer at `issuer`.
pub fn discovery_document(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
        "scopes_supported": ["openid"],
    })
}

/// An authorization code waiting for its exchange.
pub struct PendingCode {
    pub account: AccountId,
    pub role: Role,
    pub redirect_uri: String,
    pub code_challenge: String,
    issued: Instant,
}

/// Authorization codes issued by the sign-in page: single use, short-lived, bounded.
#[derive(Default)]
pub struct CodeStore {
    codes: Mutex<HashMap<String, PendingCode>>,
}

impl CodeStore {
    /// A new code for a sign-in; `None` when too many are pending.
    pub fn issue(
        &self,
        account: AccountId,
        role: Role,
        redirect_uri: String,
        code_challenge: String,
    ) -> Option<String> {
        let mut codes = self.codes.lock().unwrap_or_else(|p| p.into_inner());
        codes.retain(|_, c| c.issued.elapsed() < CODE_TTL);
        if codes.len() >= MAX_PENDING_CODES {
            return None;
        }
        let code = random_token()?;
        codes.insert(
            code.clone(),
            PendingCode {
                account,
                role,
                redirect_uri,
                code_challenge,
                issued: Instant::now(),
            },
        );
        Some(code)
    }

    /// Takes the code (once) if it is still fresh and `verifier` matches its PKCE challenge.
    pub fn redeem(&self, code: &str, redirect_uri: &str, verifier: &str) -> Option<PendingCode> {
        let mut codes = self.codes.lock().unwrap_or_else(|p| p.into_inner());
        let pending = codes.remove(code)?;
        let fresh = pending.issued.elapsed() < CODE_TTL;
        (fresh
            && pending.redirect_uri == redirect_uri
            && pkce_s256(verifier) == pending.code_challenge)
            .then_some(pending)
    }
}

/// RFC 7636 S256: base64url(SHA-256(verifier)).
pub fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// 32 random bytes, base64url: session ids, codes.
pub fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256 of a secret, hex: what the database keeps instead of a session id.
pub fn secret_hash(secret: &str) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_issuer_loads_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let a = DevIssuer::load_or_create(dir.path()).unwrap();
        let b = DevIssuer::load_or_create(dir.path()).unwrap();
        assert_eq!(a.kid(), b.kid());
        assert_eq!(a.jwks(), b.jwks());
    }

    #[test]
    fn pkce_matches_the_rfc_example() {
        // Computed independently: base64url(sha256(v)) with Python's hashlib.
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWXOEjXk"),
            "ixTXRNjcs2t268cvWnWX5VszIOQVHn11amyq8l3uFfA"
        );
    }
}
