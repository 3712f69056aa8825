//! TLS serving: rustls (ring provider), TLS 1.2 and 1.3, ALPN `h2` and `http/1.1`, optional
//! client certificates (`[tls] client_ca`, mTLS), and reload without dropping connections.
//!
//! [`TlsAcceptor`] holds the current `rustls::ServerConfig`; [`TlsAcceptor::reload`] rebuilds it
//! from the files and swaps it, so the next handshake uses the new certificate, key and client
//! CAs while established connections keep theirs. It works on any `AsyncRead + AsyncWrite`
//! stream ([`TlsAcceptor::accept`]), for a serving loop generic over the stream type;
//! [`TlsListener`] is an `axum::serve::Listener` doing the handshakes off the accept path (a
//! client that never finishes its handshake holds only its own task, for at most
//! [`HANDSHAKE_TIMEOUT`]).
//!
//! May call: `berth_config`. Called by: `main`.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use berth_config::registry::TlsConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;

/// Longest a client may take to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("cannot use `{path}`: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the certificate, key or CA set.
    #[error("TLS configuration refused")]
    Rustls(#[source] rustls::Error),
}

/// Builds the server configuration from the files of `cfg`.
///
/// # Errors
/// When a file is unreadable or the key does not match the certificate.
pub fn server_config(cfg: &TlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs(&cfg.cert)?;
    let key = PrivateKeyDer::from_pem_file(&cfg.key).map_err(|e| TlsError::File {
        path: cfg.key.clone(),
        reason: format!("no usable PEM private key ({e})"),
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Rustls)?;
    let builder = match &cfg.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in read_certs(ca)? {
                roots.add(c).map_err(TlsError::Rustls)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::File {
                    path: ca.clone(),
                    reason: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(TlsError::Rustls)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::File {
            path: path.to_owned(),
            reason: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::File {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::File {
            path: path.to_owned(),
            reason: "no PEM certificate in the file".into(),
        });
    }
    Ok(certs)
}

/// The current TLS configuration, swapped on reload.
pub struct TlsAcceptor {
    cfg: RwLock<TlsConfig>,
    current: RwLock<tokio_rustls::TlsAcceptor>,
}

impl TlsAcceptor {
    /// Loads `cfg`.
    ///
    /// # Errors
    /// As [`server_config`].
    pub fn new(cfg: &TlsConfig) -> Result<Self, TlsError> {
        Ok(Self {
            current: RwLock::new(tokio_rustls::TlsAcceptor::from(server_config(cfg)?)),
            cfg: RwLock::new(cfg.clone()),
        })
    }

    /// Re-reads the files (of `cfg` when given, else the current ones) and swaps the
    /// configuration; on error the previous one stays.
    ///
    /// # Errors
    /// As [`server_config`].
    pub fn reload(&self, cfg: Option<&TlsConfig>) -> Result<(), TlsError> {
        let cfg = cfg
            .cloned()
            .unwrap_or_else(|| self.cfg.read().expect("tls lock").clone());
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config(&cfg)?);
        *self.current.write().expect("tls lock") = acceptor;
        *self.cfg.write().expect("tls lock") = cfg;
        Ok(())
    }

    /// Files whose change should trigger a reload.
    #[must_use]
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let c = self.cfg.read().expect("tls lock");
        let mut v = vec![c.cert.clone(), c.key.clone()];
        v.extend(c.client_ca.iter().cloned());
        v
    }

    /// Runs the server side of a handshake on `io` with the current configuration.
    ///
    /// # Errors
    /// When the handshake fails or takes longer than [`HANDSHAKE_TIMEOUT`].
    pub async fn accept<IO>(&self, io: IO) -> io::Result<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let acceptor = self.current.read().expect("tls lock").clone();
        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
    }
}

/// An `axum::serve::Listener` yielding TLS streams; handshakes run in their own tasks.
pub struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Accepts on `tcp` and hands out connections whose handshake with `acceptor` finished.
    ///
    /// # Errors
    /// When the listener's address cannot be read.
    pub fn new(tcp: TcpListener, acceptor: Arc<TlsAcceptor>) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let task = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    break;
                }
                let (tx, acceptor) = (tx.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    match acceptor.accept(stream).await {
                        Ok(tls) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    }
                });
            }
        });
        Ok(Self { rx, local, task })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            // The accept task ended (it only does when this listener is dropped).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
