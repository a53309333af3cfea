//! TLS for the wire client, with the driver's two settings (see [`ClientTls`]): verify the
//! server's certificate and name against a CA file, or accept any certificate (only for
//! servers with self-generated certificates, as the driver's `danger_accept_invalid_certs`).
//! One rustls provider, ring, like the rest of the binary.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::TlsConnector;

#[cfg(doc)]
use super::ClientTls;
use super::WireError;

/// A connector for `host`, verifying against the PEM certificates in `ca`, or accepting
/// any certificate without one.
pub(super) fn connector(
    ca: Option<&Path>,
    host: &str,
) -> Result<(TlsConnector, ServerName<'static>), WireError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| WireError::Tls(e.to_string()))?;
    let config = match ca {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            let certificates = CertificateDer::pem_file_iter(path)
                .map_err(|e| WireError::Tls(format!("{}: {e}", path.display())))?;
            for certificate in certificates {
                let certificate =
                    certificate.map_err(|e| WireError::Tls(format!("{}: {e}", path.display())))?;
                roots
                    .add(certificate)
                    .map_err(|e| WireError::Tls(format!("{}: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(WireError::Tls(format!(
                    "{}: no certificate in the CA file",
                    path.display()
                )));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
    };
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| WireError::Tls(format!("{host}: {e}")))?;
    Ok((TlsConnector::from(Arc::new(config)), name))
}

/// Accepts any certificate, but still checks that the server holds its key: the
/// handshake's signatures are verified as usual.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
