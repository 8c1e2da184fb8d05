//! A client's trust in a server: its key, pinned, checked in every handshake before anything
//! is sent. imgtool pins each device's key on first contact (its `known_devices` keeps the
//! pins); a device following a channel (admind's `follow`) pins the channel server's key
//! its settings name. The server side of TLS, and the crypto provider both sides use, are
//! [`crate::tls`].

use crate::cert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error, SignatureScheme};
use std::sync::{Arc, Mutex};

/// The key a client trusts: the one pinned on first contact, or on first contact itself any
/// key that proves itself in the handshake (what the client then remembers, as OpenSSH's
/// known_hosts does). Shared by every connection of one client.
#[derive(Debug, Default)]
pub struct KeyPin(Mutex<Pins>);

#[derive(Debug, Default, Clone, Copy)]
struct Pins {
    expected: Option<[u8; 32]>,
    presented: Option<[u8; 32]>,
}

impl KeyPin {
    /// Trusts the key whose pin (`cert::pin`) is `expected`; `None`: first contact.
    pub fn new(expected: Option<[u8; 32]>) -> Arc<KeyPin> {
        Arc::new(KeyPin(Mutex::new(Pins {
            expected,
            presented: None,
        })))
    }

    fn pins(&self) -> Pins {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pin of the key the device presented in the last handshake, proved or not (for
    /// messages; what a finished handshake proved is in its peer certificates).
    pub fn presented(&self) -> Option<[u8; 32]> {
        self.pins().presented
    }

    /// The pin the device must present, if one is expected.
    pub fn expected(&self) -> Option<[u8; 32]> {
        self.pins().expected
    }

    /// From now on, trusts only the key whose pin is `pin`.
    pub fn expect(&self, pin: [u8; 32]) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).expected = Some(pin);
    }
}

/// Client settings that trust the key `pin` holds (none but it once one is expected).
pub fn pinned_client_config(pin: Arc<KeyPin>) -> Result<rustls::ClientConfig, String> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(crate::tls::provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned(pin)))
        .with_no_client_auth();
    // A resumed session skips the verifier: every connection shows and proves its key.
    let mut config = config;
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

#[derive(Debug)]
struct Pinned(Arc<KeyPin>);

/// The P-256 key of a certificate, as p256 checks signatures with it.
fn certificate_key<'a>(
    cert: &'a CertificateDer<'_>,
) -> Result<(&'a [u8], p256::ecdsa::VerifyingKey), Error> {
    cert::public_key(cert.as_ref())
        .and_then(|(spki, point)| {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).ok()?;
            Some((spki, key))
        })
        .ok_or_else(|| Error::General("the server's certificate carries no P-256 key".into()))
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let (spki, _) = certificate_key(end_entity)?;
        let got = cert::pin(spki);
        let mut pins = self.0 .0.lock().unwrap_or_else(|e| e.into_inner());
        pins.presented = Some(got);
        match pins.expected {
            Some(want) if want != got => Err(Error::General(format!(
                "the server presented key {} but {} is pinned: refusing to talk to it",
                cert::Pin(&got),
                cert::Pin(&want)
            ))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::General("TLS 1.2 is not used".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        use p256::ecdsa::signature::Verifier;
        if dss.scheme != SignatureScheme::ECDSA_NISTP256_SHA256 {
            return Err(Error::General(format!(
                "unexpected signature scheme {:?}",
                dss.scheme
            )));
        }
        let sig = p256::ecdsa::Signature::from_der(dss.signature())
            .map_err(|_| Error::General("malformed ECDSA signature".into()))?;
        certificate_key(cert)?
            .1
            .verify(message, &sig)
            .map(|_| HandshakeSignatureValid::assertion())
            .map_err(|_| Error::General("the handshake signature does not verify".into()))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ECDSA_NISTP256_SHA256]
    }
}
