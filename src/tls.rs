//! TLS to the databases firedrill reads: the sources it dumps and a PostgreSQL catalog.
//!
//! One vocabulary for both engine families: libpq's `sslmode` (disable, prefer, require,
//! verify-ca, verify-full) and MySQL's `ssl-mode` (DISABLED … VERIFY_IDENTITY) name the
//! same five modes, read into one [`TlsMode`]. The certificates are checked with rustls
//! (the TLS stack the rest of firedrill already uses: the API, the mail and webhook
//! clients), against the system's CAs plus the CA file the drill names. A handshake that
//! fails is explained from the typed rustls error ([`explain`]), never from its text.
//!
//! The dump tools (pg_dump, mariadb-dump, mysqldump) get the same settings through their
//! environment or option file, never their argv ([`libpq_env`], [`mysql_options`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use serde::Serialize;

use crate::error::{Error, Result};

/// How much TLS a connection insists on. The modes are libpq's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, without checking its certificate; plain otherwise.
    #[default]
    Prefer,
    /// TLS or nothing; the certificate is checked only when a CA file is given (then as
    /// verify-ca: libpq's rule).
    Require,
    /// TLS, the certificate signed by a trusted CA, whatever name it is for.
    VerifyCa,
    /// TLS, the certificate signed by a trusted CA and issued for the host connected to.
    VerifyFull,
}

/// Which family of settings a [`TlsSpec`] came from: decides the field names in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Naming {
    /// A PostgreSQL source: `source.sslmode`, `source.sslrootcert`, …
    #[default]
    Libpq,
    /// A MySQL or MariaDB source: `source.ssl_mode`, `source.ssl_ca`, …
    Mysql,
    /// The PostgreSQL catalog: `?sslmode=` in `catalog`, `catalog_ca`, …
    Catalog,
}

/// A field of a [`TlsSpec`], for messages.
#[derive(Debug, Clone, Copy)]
pub enum Field {
    Mode,
    Ca,
    Cert,
    Key,
    Host,
}

impl Naming {
    /// The name a user wrote the field under.
    pub fn field(self, f: Field) -> &'static str {
        match (self, f) {
            (Naming::Libpq, Field::Mode) => "source.sslmode",
            (Naming::Libpq, Field::Ca) => "source.sslrootcert",
            (Naming::Libpq, Field::Cert) => "source.sslcert",
            (Naming::Libpq, Field::Key) => "source.sslkey",
            (Naming::Mysql, Field::Mode) => "source.ssl_mode",
            (Naming::Mysql, Field::Ca) => "source.ssl_ca",
            (Naming::Mysql, Field::Cert) => "source.ssl_cert",
            (Naming::Mysql, Field::Key) => "source.ssl_key",
            (Naming::Catalog, Field::Mode) => "sslmode in catalog",
            (Naming::Catalog, Field::Ca) => "catalog_ca",
            (Naming::Catalog, Field::Cert) => "sslcert in catalog",
            (Naming::Catalog, Field::Key) => "sslkey in catalog",
            (Naming::Catalog, Field::Host) => "the host in catalog",
            (_, Field::Host) => "source.host",
        }
    }

    /// How a mode is written in this family's settings.
    pub fn mode_name(self, m: TlsMode) -> &'static str {
        match self {
            Naming::Mysql => match m {
                TlsMode::Disable => "disabled",
                TlsMode::Prefer => "preferred",
                TlsMode::Require => "required",
                TlsMode::VerifyCa => "verify_ca",
                TlsMode::VerifyFull => "verify_identity",
            },
            _ => m.as_str(),
        }
    }
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyFull => "verify-full",
        }
    }

    /// Reads libpq's names (`verify-full`); `allow` is not offered (it prefers plain TCP).
    pub fn parse_libpq(s: &str) -> Option<TlsMode> {
        Some(match s {
            "disable" => TlsMode::Disable,
            "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            _ => return None,
        })
    }

    /// Reads MySQL's names in either case (`VERIFY_IDENTITY`, `verify_identity`).
    pub fn parse_mysql(s: &str) -> Option<TlsMode> {
        Some(match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "disabled" => TlsMode::Disable,
            "preferred" => TlsMode::Prefer,
            "required" => TlsMode::Require,
            "verify_ca" => TlsMode::VerifyCa,
            "verify_identity" => TlsMode::VerifyFull,
            _ => return None,
        })
    }

    /// Whether a connection without TLS is refused.
    pub fn requires_tls(self) -> bool {
        !matches!(self, TlsMode::Disable | TlsMode::Prefer)
    }
}

/// A connection's TLS settings, validated (pure: the files are read when connecting).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TlsSpec {
    pub mode: TlsMode,
    /// CA certificates (PEM) trusted besides the system's.
    pub ca: Option<PathBuf>,
    /// A client certificate (PEM) and its key, for servers that ask for one.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub naming: Naming,
}

/// What the server's certificate was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Checked {
    /// Not checked: the connection is encrypted but could be intercepted.
    Nothing,
    /// Signed by a trusted CA; the host name was not compared.
    Ca,
    /// Signed by a trusted CA and issued for the host connected to.
    CaAndHost,
}

impl TlsSpec {
    /// What a successful TLS handshake under this spec proves about the certificate.
    pub fn checked(&self) -> Checked {
        match self.mode {
            TlsMode::VerifyFull => Checked::CaAndHost,
            TlsMode::VerifyCa => Checked::Ca,
            TlsMode::Require if self.ca.is_some() => Checked::Ca,
            _ => Checked::Nothing,
        }
    }

    fn field(&self, f: Field) -> &'static str {
        self.naming.field(f)
    }

    /// The rustls client configuration for this spec: the roots, the verifier its mode
    /// asks for and the client certificate.
    pub fn client_config(&self) -> Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::internal(format!("TLS: {e}")))?;
        let roots = Arc::new(self.roots()?);
        let verifier: Arc<dyn ServerCertVerifier> = {
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| Error::internal(format!("TLS verifier: {e}")))?;
            match self.checked() {
                Checked::CaAndHost => webpki,
                Checked::Ca => Arc::new(AnyName(webpki)),
                Checked::Nothing => Arc::new(Unchecked(provider)),
            }
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = self.certs(cert, Field::Cert)?;
                let pem = read(key, self.field(Field::Key))?;
                let key = rustls_pemfile::private_key(&mut pem.as_slice())
                    .ok()
                    .flatten()
                    .ok_or_else(|| {
                        Error::config(format!(
                            "{} {} holds no private key",
                            self.field(Field::Key),
                            key.display()
                        ))
                        .with_hint("give the client certificate's private key as PEM (-----BEGIN PRIVATE KEY-----)")
                    })?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    Error::config(format!(
                        "{} and {}: {e}",
                        self.field(Field::Cert),
                        self.field(Field::Key)
                    ))
                    .with_hint("give a client certificate and the private key that belongs to it")
                })
            }
            _ => Ok(builder.with_no_client_auth()),
        }
    }

    fn roots(&self) -> Result<rustls::RootCertStore> {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(c);
        }
        if let Some(ca) = &self.ca {
            for c in self.certs(ca, Field::Ca)? {
                roots.add(c).map_err(|e| {
                    Error::config(format!("{} {}: {e}", self.field(Field::Ca), ca.display()))
                })?;
            }
        }
        Ok(roots)
    }

    fn certs(&self, path: &Path, f: Field) -> Result<Vec<CertificateDer<'static>>> {
        let name = self.field(f);
        let pem = read(path, name)?;
        let certs = rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::config(format!("{name} {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(Error::config(format!(
                "{name} {} holds no PEM certificate",
                path.display()
            ))
            .with_hint("give the certificate as PEM (-----BEGIN CERTIFICATE-----)"));
        }
        Ok(certs)
    }

    /// Explains a failed connection to `host` when its cause is the TLS handshake: a
    /// certificate from an unknown CA, for another name, expired, or a server that
    /// offers no TLS. `None` when TLS had nothing to do with it.
    pub fn explain(&self, host: &str, cause: &(dyn std::error::Error + 'static)) -> Option<Error> {
        let tls = find_rustls(cause)?;
        let ca = self.field(Field::Ca);
        let ca_given = self
            .ca
            .as_ref()
            .map(|p| format!("the CA in {ca} ({})", p.display()))
            .unwrap_or_else(|| format!("the system's CAs ({ca} is not set)"));
        let e = match tls {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                    Error::config(format!(
                        "the TLS certificate of {host} is not signed by {ca_given}"
                    ))
                    .with_hint(format!(
                        "give in {ca} the PEM file of the CA that signed the server's certificate"
                    ))
                }
                CertificateError::NotValidForName => Error::config(format!(
                    "the TLS certificate of {host} is not issued for `{host}`"
                ))
                .with_hint(self.name_hint()),
                CertificateError::NotValidForNameContext { presented, .. } => {
                    Error::config(format!(
                        "the TLS certificate of {host} is issued for {}, not for `{host}`",
                        if presented.is_empty() {
                            "no name (it has no subjectAltName)".to_string()
                        } else {
                            presented.iter().map(|p| plain_name(p)).collect::<Vec<_>>().join(", ")
                        }
                    ))
                    .with_hint(self.name_hint())
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    Error::infra(format!("the TLS certificate of {host} has expired"))
                        .with_hint("renew the server's certificate")
                        .retryable(false)
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    Error::infra(format!("the TLS certificate of {host} is not valid yet"))
                        .with_hint("check the clocks of this host and the server")
                        .retryable(false)
                }
                other => Error::config(format!(
                    "the TLS certificate of {host} was not accepted: {other}"
                ))
                .with_hint(format!(
                    "check the server's certificate, {ca} and {}",
                    self.field(Field::Mode)
                )),
            },
            rustls::Error::AlertReceived(alert) => Error::config(format!(
                "the server at {host} ended the TLS handshake ({alert:?})"
            ))
            .with_hint(format!(
                "the server may want a client certificate ({} and {}) or a TLS version it shares with firedrill (1.2 or 1.3)",
                self.field(Field::Cert),
                self.field(Field::Key)
            )),
            other => Error::infra(format!("TLS with {host} failed: {other}"))
                .with_hint(format!("check the server's TLS setup and {}", self.field(Field::Mode))),
        };
        Some(e.retryable(false))
    }

    fn name_hint(&self) -> String {
        format!(
            "connect by a name the certificate is issued for ({}), or set {} = \"{}\" to check only the CA",
            self.field(Field::Host),
            self.field(Field::Mode),
            self.naming.mode_name(TlsMode::VerifyCa)
        )
    }

    /// The hint for a server that refused plain TCP.
    pub fn plain_refused_hint(&self) -> String {
        format!(
            "the server accepts only TLS connections: set {} = \"{}\" and {} to the CA that signed its certificate",
            self.field(Field::Mode),
            self.naming.mode_name(TlsMode::VerifyFull),
            self.field(Field::Ca)
        )
    }

    /// The error for a server that offers no TLS when the mode requires it.
    pub fn no_tls_on_server(&self, host: &str) -> Error {
        Error::config(format!(
            "{host} offers no TLS, and {} = \"{}\" requires it",
            self.field(Field::Mode),
            self.naming.mode_name(self.mode)
        ))
        .with_hint(format!(
            "enable TLS on the server, or set {} = \"{}\" to allow plain TCP",
            self.field(Field::Mode),
            self.naming.mode_name(TlsMode::Prefer)
        ))
    }
}

fn read(path: &Path, field: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::config(format!("{field} {}: {e}", path.display()))
            .with_hint(format!("give in {field} a PEM file this user can read"))
    })
}

/// Makes ring the process's rustls provider, for clients that build their configuration
/// with the process default (mysql_async, the API's server); idempotent.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl TlsSpec {
    /// tokio-postgres's mode and connector for this spec (it knows only disable, prefer
    /// and require; the verifying modes are the connector's verifier).
    pub fn postgres(
        &self,
    ) -> Result<(
        tokio_postgres::config::SslMode,
        tokio_postgres_rustls::MakeRustlsConnect,
    )> {
        use tokio_postgres::config::SslMode;
        let mode = match self.mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        };
        Ok((
            mode,
            tokio_postgres_rustls::MakeRustlsConnect::new(self.client_config()?),
        ))
    }

    /// The doctor's finding on a source connection's TLS, as negotiated: a warning when
    /// it is plain or unchecked to a server off this host.
    pub fn finding(&self, host: &str, negotiated: Result<Negotiated>) -> crate::finding::Finding {
        use crate::finding::Finding;
        const CHECK: &str = "TLS to the source";
        match negotiated {
            Ok(n) if n.is_weak(host) => Finding::warn(
                CHECK,
                n.describe(self),
                &format!(
                    "set {} = \"{}\" and {} to the CA that signed the server's certificate",
                    self.field(Field::Mode),
                    self.naming.mode_name(TlsMode::VerifyFull),
                    self.field(Field::Ca)
                ),
            ),
            Ok(n) => Finding::ok(CHECK, n.describe(self)),
            Err(e) => Finding::from_error(CHECK, &e),
        }
    }
}

/// The first rustls error among `e` and its causes, looking into `io::Error`s too (whose
/// `source` skips the error they wrap).
pub fn find_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(r) = find_rustls(inner) {
                return Some(r);
            }
        }
        next = e.source();
    }
    None
}

/// The names a certificate that failed only on its name is issued for, when rustls said.
pub fn presented_names(cause: &(dyn std::error::Error + 'static)) -> Option<Vec<String>> {
    match find_rustls(cause)? {
        rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            presented,
            ..
        }) => Some(presented.iter().map(|p| plain_name(p)).collect()),
        _ => None,
    }
}

/// A name as rustls presents it (`DnsName("db.internal")`), as a person writes it.
fn plain_name(presented: &str) -> String {
    match (presented.find("(\""), presented.rfind("\")")) {
        (Some(a), Some(b)) if b > a + 2 => presented[a + 2..b].to_string(),
        _ => presented.to_string(),
    }
}

/// verify-ca: the chain must verify; the name may be any.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// prefer and require without a CA: encrypted, the certificate not checked (libpq's
/// behaviour); the handshake's signatures are still verified.
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The CA bundle libpq is pointed at when a verifying mode names no CA file: libpq 15
/// reads only `~/.postgresql/root.crt`, where firedrill's own connection trusts the
/// system's CAs.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The environment that gives pg_dump (libpq) this spec: never argv.
pub fn libpq_env(spec: &TlsSpec) -> Vec<(&'static str, std::ffi::OsString)> {
    let mut env = vec![("PGSSLMODE", spec.mode.as_str().into())];
    let ca = spec.ca.clone().or_else(|| {
        (spec.checked() != Checked::Nothing)
            .then(|| {
                SYSTEM_BUNDLES
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| p.is_file())
            })
            .flatten()
    });
    if let Some(ca) = ca {
        env.push(("PGSSLROOTCERT", absolute(&ca).into_os_string()));
    }
    if let (Some(cert), Some(key)) = (&spec.cert, &spec.key) {
        env.push(("PGSSLCERT", absolute(cert).into_os_string()));
        env.push(("PGSSLKEY", absolute(key).into_os_string()));
    }
    env
}

/// `p` from the root: the dump tool may run in a container whose working directory is not
/// firedrill's, with the file mounted at this same path.
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

impl TlsSpec {
    /// The files the dump tool reads (CA, client certificate and key), from the root.
    pub fn files(&self) -> Vec<PathBuf> {
        [&self.ca, &self.cert, &self.key]
            .into_iter()
            .flatten()
            .map(|p| absolute(p))
            .collect()
    }
}

/// The `[client]` option-file lines that give mariadb-dump or mysqldump this spec.
///
/// `encrypted` is what firedrill's own connection to the same server negotiated (it
/// decides `prefer`). MariaDB's client has no CA-only check: under verify-ca its dump
/// connects with TLS required and the CA given, the chain having been checked by
/// firedrill's own connection just before.
pub fn mysql_options(spec: &TlsSpec, mariadb: bool, encrypted: bool) -> String {
    let mut out = String::new();
    let line = |out: &mut String, k: &str, v: Option<&Path>| {
        if let Some(v) = v {
            out.push_str(&format!(
                "{k}=\"{}\"\n",
                escape_option(&absolute(v).display().to_string())
            ));
        }
    };
    if mariadb {
        match spec.mode {
            TlsMode::Disable => out.push_str("skip-ssl\n"),
            TlsMode::Prefer if !encrypted => out.push_str("skip-ssl\n"),
            TlsMode::Prefer | TlsMode::Require | TlsMode::VerifyCa => {
                out.push_str("ssl\n");
                out.push_str("skip-ssl-verify-server-cert\n");
            }
            TlsMode::VerifyFull => {
                out.push_str("ssl\n");
                out.push_str("ssl-verify-server-cert\n");
            }
        }
    } else {
        let mode = match spec.mode {
            TlsMode::Prefer if !encrypted => "DISABLED",
            TlsMode::Disable => "DISABLED",
            TlsMode::Prefer | TlsMode::Require => "REQUIRED",
            TlsMode::VerifyCa => "VERIFY_CA",
            TlsMode::VerifyFull => "VERIFY_IDENTITY",
        };
        out.push_str(&format!("ssl-mode={mode}\n"));
    }
    if spec.mode != TlsMode::Disable {
        line(&mut out, "ssl-ca", spec.ca.as_deref());
        line(&mut out, "ssl-cert", spec.cert.as_deref());
        line(&mut out, "ssl-key", spec.key.as_deref());
    }
    out
}

/// A value for a double-quoted option-file line.
pub fn escape_option(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A negotiated connection, as the server reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Negotiated {
    /// e.g. `TLSv1.3`; `None` for plain TCP.
    pub protocol: Option<String>,
    pub cipher: Option<String>,
    pub checked: Checked,
}

impl Negotiated {
    /// One line for `doctor`: the protocol and what the certificate was checked against.
    pub fn describe(&self, spec: &TlsSpec) -> String {
        match &self.protocol {
            None => format!(
                "plain TCP, not encrypted ({} = \"{}\")",
                spec.field(Field::Mode),
                spec.naming.mode_name(spec.mode)
            ),
            Some(p) => {
                let cipher = self
                    .cipher
                    .as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default();
                let checked = match self.checked {
                    Checked::CaAndHost => "certificate verified: trusted CA and host name",
                    Checked::Ca => "certificate verified: trusted CA (host name not compared)",
                    Checked::Nothing => "certificate NOT verified",
                };
                format!("{p}{cipher}, {checked}")
            }
        }
    }

    /// The finding's weight: plain or unchecked TLS to a server off this host is worth a
    /// warning; on loopback it is not.
    pub fn is_weak(&self, host: &str) -> bool {
        let loopback = host == "localhost"
            || host.starts_with('/')
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        !loopback && (self.protocol.is_none() || self.checked == Checked::Nothing)
    }
}

/// Splits libpq's TLS parameters (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`) out of a
/// `postgres://` URL's query: tokio-postgres knows only disable, prefer and require.
/// Returns the URL without them and the spec (mode `prefer` when the URL names none).
pub fn split_url(url: &str) -> std::result::Result<(String, TlsSpec), String> {
    let mut spec = TlsSpec {
        naming: Naming::Catalog,
        ..TlsSpec::default()
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), spec));
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "sslmode" => {
                spec.mode = TlsMode::parse_libpq(&v).ok_or_else(|| {
                    format!(
                    "sslmode `{v}` is not one of disable, prefer, require, verify-ca, verify-full"
                )
                })?
            }
            "sslrootcert" => spec.ca = Some(PathBuf::from(v)),
            "sslcert" => spec.cert = Some(PathBuf::from(v)),
            "sslkey" => spec.key = Some(PathBuf::from(v)),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, spec))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_shown_as_written() {
        assert_eq!(plain_name("DnsName(\"db.internal\")"), "db.internal");
        assert_eq!(plain_name("10.0.0.1"), "10.0.0.1");
    }

    #[test]
    fn both_families_name_the_same_modes() {
        for m in [
            TlsMode::Disable,
            TlsMode::Prefer,
            TlsMode::Require,
            TlsMode::VerifyCa,
            TlsMode::VerifyFull,
        ] {
            assert_eq!(TlsMode::parse_libpq(m.as_str()), Some(m));
            assert_eq!(TlsMode::parse_mysql(Naming::Mysql.mode_name(m)), Some(m));
            assert_eq!(
                TlsMode::parse_mysql(&Naming::Mysql.mode_name(m).to_uppercase()),
                Some(m)
            );
        }
        assert_eq!(TlsMode::parse_libpq("allow"), None);
        assert_eq!(TlsMode::parse_mysql("verify-full"), None);
    }

    #[test]
    fn a_catalog_url_gives_up_its_tls_parameters() {
        let (url, spec) = split_url(
            "postgres://fd@db:5432/cat?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(url, "postgres://fd@db:5432/cat?application_name=x");
        assert_eq!(spec.mode, TlsMode::VerifyFull);
        assert_eq!(spec.ca, Some(PathBuf::from("/etc/ca.pem")));
        let (url, spec) = split_url("postgres://fd@db/cat").unwrap();
        assert_eq!(
            (url.as_str(), spec.mode),
            ("postgres://fd@db/cat", TlsMode::Prefer)
        );
        assert!(split_url("postgres://fd@db/cat?sslmode=verify").is_err());
    }

    #[test]
    fn require_with_a_ca_checks_the_ca_as_libpq_does() {
        let mut s = TlsSpec {
            mode: TlsMode::Require,
            ..TlsSpec::default()
        };
        assert_eq!(s.checked(), Checked::Nothing);
        s.ca = Some("/ca.pem".into());
        assert_eq!(s.checked(), Checked::Ca);
        s.mode = TlsMode::VerifyFull;
        assert_eq!(s.checked(), Checked::CaAndHost);
    }

    #[test]
    fn the_dump_tools_get_the_mode_without_argv() {
        let spec = TlsSpec {
            mode: TlsMode::VerifyFull,
            ca: Some("/etc/fd/ca \"x\".pem".into()),
            naming: Naming::Mysql,
            ..TlsSpec::default()
        };
        let maria = mysql_options(&spec, true, true);
        assert!(maria.contains("ssl-verify-server-cert\n"), "{maria}");
        assert!(
            maria.contains(r#"ssl-ca="/etc/fd/ca \"x\".pem""#),
            "{maria}"
        );
        assert!(mysql_options(&spec, false, true).contains("ssl-mode=VERIFY_IDENTITY"));
        let prefer = TlsSpec::default();
        assert!(mysql_options(&prefer, true, false).contains("skip-ssl"));
        assert!(mysql_options(&prefer, true, true).starts_with("ssl\n"));
        let env = libpq_env(&TlsSpec {
            mode: TlsMode::VerifyCa,
            ca: Some("/ca.pem".into()),
            ..TlsSpec::default()
        });
        assert!(env.contains(&("PGSSLMODE", "verify-ca".into())));
        assert!(env.contains(&("PGSSLROOTCERT", "/ca.pem".into())));
    }
}
