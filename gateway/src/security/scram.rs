//! SCRAM-SHA-256 (RFC 5802, RFC 7677), server side: the stored credential of a user
//! (salt, iteration count, StoredKey, ServerKey: never the password) and the two-step exchange.
//!
//! The exchange is sans-IO: [`ScramServer::client_first`] parses the client's first message
//! and names the user; the caller looks the credential up and gets the server-first message
//! from [`ScramServer::server_first`]; [`ScramServer::client_final`] checks the proof and
//! returns the server-final message (the server signature the client verifies).
//!
//! Credentials are written `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64,
//! PostgreSQL's spelling), as `gateway hash-password --scram` prints them for `[[users]]
//! scram_sha256`. An argon2 hash cannot give SCRAM keys, which is why they are stored apart.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};
use std::fmt;
use std::num::NonZeroU32;

/// Iterations of a credential made by [`ScramCredential::generate`] (Kafka's minimum and
/// RFC 7677's recommendation).
pub const DEFAULT_ITERATIONS: u32 = 4096;
/// Fewest iterations a configured credential may have (Kafka's minimum for SCRAM-SHA-256).
pub const MIN_ITERATIONS: u32 = 4096;
/// Most iterations accepted (a credential is checked on every login).
pub const MAX_ITERATIONS: u32 = 1_000_000;
/// The mechanism name.
pub const MECHANISM: &str = "SCRAM-SHA-256";
/// The prefix of a stored credential.
const PREFIX: &str = "SCRAM-SHA-256$";
/// Longest client message accepted (a user name and a nonce; Kafka clients send ~100 bytes).
const MAX_MESSAGE: usize = 4096;

/// A user's SCRAM-SHA-256 credential.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    salt: Vec<u8>,
    iterations: u32,
    stored_key: [u8; 32],
    server_key: [u8; 32],
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys stay out of logs.
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Why a stored credential could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SCRAM-SHA-256 credential (expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, as `gateway hash-password --scram` prints): {0}")]
pub struct ScramCredentialError(&'static str);

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Compares two keys in time independent of where they differ.
fn same_keys(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn key32(text: &str) -> Result<[u8; 32], ScramCredentialError> {
    let bytes = B64
        .decode(text)
        .map_err(|_| ScramCredentialError("a key is not base64"))?;
    bytes
        .try_into()
        .map_err(|_| ScramCredentialError("a key is not 32 bytes"))
}

impl ScramCredential {
    /// The credential of `password` with this salt and iteration count.
    pub fn from_password(password: &[u8], salt: &[u8], iterations: u32) -> Self {
        let mut salted = [0u8; 32];
        let rounds = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            rounds,
            salt,
            password,
            &mut salted,
        );
        let client_key = hmac_sha256(&salted, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            iterations,
            stored_key: sha256(&client_key),
            server_key: hmac_sha256(&salted, b"Server Key"),
        }
    }

    /// A credential for `password` with a random 16-byte salt and [`DEFAULT_ITERATIONS`].
    pub fn generate(password: &[u8]) -> Result<Self, ring::error::Unspecified> {
        let mut salt = [0u8; 16];
        ring::rand::SystemRandom::new().fill(&mut salt)?;
        Ok(Self::from_password(password, &salt, DEFAULT_ITERATIONS))
    }

    /// Reads `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
    pub fn parse(text: &str) -> Result<Self, ScramCredentialError> {
        let rest = text
            .strip_prefix(PREFIX)
            .ok_or(ScramCredentialError("missing the SCRAM-SHA-256$ prefix"))?;
        let (params, keys) = rest
            .split_once('$')
            .ok_or(ScramCredentialError("missing the keys"))?;
        let (iterations, salt) = params
            .split_once(':')
            .ok_or(ScramCredentialError("missing the salt"))?;
        let (stored, server) = keys
            .split_once(':')
            .ok_or(ScramCredentialError("missing the ServerKey"))?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| ScramCredentialError("the iteration count is not a number"))?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramCredentialError(
                "the iteration count must be 4096 to 1000000",
            ));
        }
        let salt = B64
            .decode(salt)
            .map_err(|_| ScramCredentialError("the salt is not base64"))?;
        if salt.is_empty() {
            return Err(ScramCredentialError("the salt is empty"));
        }
        Ok(ScramCredential {
            salt,
            iterations,
            stored_key: key32(stored)?,
            server_key: key32(server)?,
        })
    }

    /// Whether `password` is the one this credential was made from (for PLAIN logins of a
    /// user that has only a SCRAM credential).
    pub fn verify_password(&self, password: &[u8]) -> bool {
        let other = Self::from_password(password, &self.salt, self.iterations);
        same_keys(&other.stored_key, &self.stored_key)
    }
}

impl fmt::Display for ScramCredential {
    /// The stored form, for `[[users]] scram_sha256`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}{}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }
}

/// Why an exchange failed. `Display` is for logs and the client; it never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScramError {
    /// A message that does not follow RFC 5802.
    #[error("invalid SCRAM message: {0}")]
    Malformed(&'static str),
    /// The client asked for channel binding, which this server does not offer.
    #[error("channel binding is not supported")]
    ChannelBinding,
    /// The proof does not match the credential (wrong password or unknown user).
    #[error("invalid credentials")]
    InvalidProof,
    /// A message out of turn.
    #[error("unexpected SCRAM message")]
    OutOfOrder,
}

/// Where the exchange is.
#[derive(Debug, Default)]
enum Step {
    /// Waiting for the client-first message.
    #[default]
    Start,
    /// The client-first message is read; the credential is to be looked up.
    ClientFirst {
        gs2_header: String,
        client_first_bare: String,
        client_nonce: String,
    },
    /// The server-first message is sent; waiting for the client-final message.
    ServerFirst {
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
        credential: ScramCredential,
    },
    /// Finished (successfully or not).
    Done,
}

/// The server side of one SCRAM-SHA-256 exchange.
///
/// ### Invariants
/// - Messages are accepted only in RFC 5802 order; any other is [`ScramError::OutOfOrder`].
/// - The password never reaches the server; the proof is compared in constant time.
#[derive(Debug, Default)]
pub struct ScramServer {
    step: Step,
}

/// Decodes a `saslname` (`=2C` is `,`, `=3D` is `=`; any other `=` is an error).
fn decode_saslname(s: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(rest.get(..i).unwrap_or_default());
        let esc = rest.get(i..i + 3);
        match esc {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in the user name")),
        }
        rest = rest.get(i + 3..).unwrap_or_default();
    }
    out.push_str(rest);
    Ok(out)
}

fn printable_nonce(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

impl ScramServer {
    /// A new exchange.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the client-first message (`n,,n=user,r=nonce`); returns the user name to look
    /// the credential up for.
    pub fn client_first(&mut self, message: &[u8]) -> Result<String, ScramError> {
        if !matches!(self.step, Step::Start) {
            return Err(ScramError::OutOfOrder);
        }
        self.step = Step::Done;
        if message.len() > MAX_MESSAGE {
            return Err(ScramError::Malformed("message too long"));
        }
        let text = std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        // gs2-header: cbind-flag "," [authzid] ","
        let mut parts = text.splitn(3, ',');
        let (Some(flag), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ScramError::Malformed("missing the GS2 header"));
        };
        match flag {
            "n" | "y" => {}
            f if f.starts_with("p=") => return Err(ScramError::ChannelBinding),
            _ => return Err(ScramError::Malformed("bad channel binding flag")),
        }
        let authzid = if authzid.is_empty() {
            None
        } else {
            Some(decode_saslname(
                authzid
                    .strip_prefix("a=")
                    .ok_or(ScramError::Malformed("bad authorization id"))?,
            )?)
        };
        let mut attrs = bare.split(',');
        let user = attrs
            .next()
            .and_then(|a| a.strip_prefix("n="))
            .ok_or(ScramError::Malformed("missing the user name"))?;
        let user = decode_saslname(user)?;
        if user.is_empty() {
            return Err(ScramError::Malformed("empty user name"));
        }
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .filter(|n| printable_nonce(n))
            .ok_or(ScramError::Malformed("missing the client nonce"))?;
        // Extensions (Kafka's `tokenauth=true`, ...) are not supported: delegation tokens
        // are not credentials here.
        if attrs.next().is_some() {
            return Err(ScramError::Malformed("SCRAM extensions are not supported"));
        }
        if authzid.as_ref().is_some_and(|a| *a != user) {
            return Err(ScramError::Malformed(
                "the authorization id differs from the user name",
            ));
        }
        let gs2_len = flag.len() + 1 + authzid_len(text, flag) + 1;
        self.step = Step::ClientFirst {
            gs2_header: text.get(..gs2_len).unwrap_or_default().to_owned(),
            client_first_bare: bare.to_owned(),
            client_nonce: nonce.to_owned(),
        };
        Ok(user)
    }

    /// The server-first message for `credential` (`r=nonce,s=salt,i=iterations`), with a
    /// fresh server nonce.
    pub fn server_first(&mut self, credential: ScramCredential) -> Result<Vec<u8>, ScramError> {
        let Step::ClientFirst {
            gs2_header,
            client_first_bare,
            client_nonce,
        } = std::mem::take(&mut self.step)
        else {
            self.step = Step::Done;
            return Err(ScramError::OutOfOrder);
        };
        let mut server_nonce = [0u8; 18];
        if ring::rand::SystemRandom::new()
            .fill(&mut server_nonce)
            .is_err()
        {
            self.step = Step::Done;
            return Err(ScramError::Malformed("no randomness for a nonce"));
        }
        let nonce = format!("{client_nonce}{}", B64.encode(server_nonce));
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        self.step = Step::ServerFirst {
            gs2_header,
            client_first_bare,
            server_first: server_first.clone(),
            nonce,
            credential,
        };
        Ok(server_first.into_bytes())
    }

    /// Checks the client-final message (`c=biws,r=nonce,p=proof`); returns the server-final
    /// message (`v=signature`) when the proof is right.
    pub fn client_final(&mut self, message: &[u8]) -> Result<Vec<u8>, ScramError> {
        let Step::ServerFirst {
            gs2_header,
            client_first_bare,
            server_first,
            nonce,
            credential,
        } = std::mem::replace(&mut self.step, Step::Done)
        else {
            return Err(ScramError::OutOfOrder);
        };
        if message.len() > MAX_MESSAGE {
            return Err(ScramError::Malformed("message too long"));
        }
        let text = std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("missing the proof"))?;
        let mut attrs = without_proof.split(',');
        let binding = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(ScramError::Malformed("missing the channel binding"))?;
        if B64.decode(binding).ok().as_deref() != Some(gs2_header.as_bytes()) {
            return Err(ScramError::Malformed(
                "the channel binding does not repeat the GS2 header",
            ));
        }
        // As Kafka's ScramSaslServer: the nonce must *end with* the combined nonce. librdkafka
        // before 2.2 sends the client nonce twice (`r=<client><client><server>`), and Kafka
        // brokers accept it; the proof covers the message as sent either way.
        let echoed = attrs.next().and_then(|a| a.strip_prefix("r="));
        if !echoed.is_some_and(|r| r.ends_with(nonce.as_str())) {
            return Err(ScramError::Malformed("the nonce does not match"));
        }
        let proof: [u8; 32] = B64
            .decode(proof)
            .ok()
            .and_then(|p| p.try_into().ok())
            .ok_or(ScramError::Malformed("the proof is not 32 bytes of base64"))?;
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = hmac_sha256(&credential.stored_key, auth_message.as_bytes());
        let mut client_key = [0u8; 32];
        for (k, (p, s)) in client_key
            .iter_mut()
            .zip(proof.iter().zip(client_signature.iter()))
        {
            *k = p ^ s;
        }
        if !same_keys(&sha256(&client_key), &credential.stored_key) {
            return Err(ScramError::InvalidProof);
        }
        let server_signature = hmac_sha256(&credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

/// Length of the authzid field of the GS2 header `text` that starts with `flag,`.
fn authzid_len(text: &str, flag: &str) -> usize {
    text.get(flag.len() + 1..)
        .and_then(|rest| rest.find(','))
        .unwrap_or(0)
}

/// A credential that no proof matches, stable per user name for this process, so that an
/// unknown user goes through the same exchange as a known one with a wrong password (the
/// salt does not tell which users exist).
pub fn decoy_credential(user: &str) -> ScramCredential {
    static SECRET: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let secret = SECRET.get_or_init(|| {
        let mut s = [0u8; 32];
        let _ = ring::rand::SystemRandom::new().fill(&mut s);
        s
    });
    let mac = hmac_sha256(secret, user.as_bytes());
    ScramCredential {
        salt: mac.get(..16).unwrap_or_default().to_vec(),
        iterations: DEFAULT_ITERATIONS,
        // No client key hashes to this (it is not a SHA-256 output anyone can invert).
        stored_key: hmac_sha256(secret, b"stored"),
        server_key: hmac_sha256(secret, b"server"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The client side of RFC 7677's example, computed independently of the server code.
    fn client_final(
        password: &str,
        salt: &[u8],
        i: u32,
        auth_message: &str,
        header: &str,
    ) -> String {
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            NonZeroU32::new(i).unwrap(),
            salt,
            password.as_bytes(),
            &mut salted,
        );
        let client_key = hmac_sha256(&salted, b"Client Key");
        let sig = hmac_sha256(&sha256(&client_key), auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(sig).map(|(a, b)| a ^ b).collect();
        format!("{header},p={}", B64.encode(proof))
    }

    #[test]
    fn rfc7677_example_proof_and_signature() {
        // RFC 7677 section 3: user "user", password "pencil".
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let cred = ScramCredential::from_password(b"pencil", &salt, 4096);
        let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
                    r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                    s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
                    c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let server_sig = hmac_sha256(&cred.server_key, auth.as_bytes());
        assert_eq!(
            B64.encode(server_sig),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let final_msg = client_final(
            "pencil",
            &salt,
            4096,
            auth,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        );
        assert!(final_msg.ends_with("p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="));
    }

    fn exchange(cred: ScramCredential, password: &str) -> Result<Vec<u8>, ScramError> {
        let mut server = ScramServer::new();
        let user = server.client_first(b"n,,n=us=3Der,r=abc")?;
        assert_eq!(user, "us=er");
        let first = String::from_utf8(server.server_first(cred.clone())?).unwrap();
        let nonce = first
            .split(',')
            .next()
            .and_then(|r| r.strip_prefix("r="))
            .unwrap();
        assert!(nonce.starts_with("abc") && nonce.len() > 3);
        let without = format!("c=biws,r={nonce}");
        let auth = format!("n=us=3Der,r=abc,{first},{without}");
        let msg = client_final(password, &cred.salt, cred.iterations, &auth, &without);
        server.client_final(msg.as_bytes())
    }

    #[test]
    fn right_password_passes_wrong_one_fails() {
        let cred = ScramCredential::generate(b"s3cret").unwrap();
        let v = exchange(cred.clone(), "s3cret").unwrap();
        assert!(v.starts_with(b"v="));
        assert_eq!(exchange(cred, "wrong"), Err(ScramError::InvalidProof));
        assert_eq!(
            exchange(decoy_credential("nobody"), "anything"),
            Err(ScramError::InvalidProof)
        );
    }

    #[test]
    fn a_doubled_client_nonce_is_accepted_as_kafka_does() {
        // librdkafka 2.0 echoes `r=<client nonce><combined nonce>`; Kafka accepts any nonce
        // that ends with the combined one, and the proof covers what was sent.
        let cred = ScramCredential::generate(b"pw").unwrap();
        let mut server = ScramServer::new();
        server.client_first(b"n,,n=u,r=abc").unwrap();
        let first = String::from_utf8(server.server_first(cred.clone()).unwrap()).unwrap();
        let nonce = first.split(',').next().unwrap().strip_prefix("r=").unwrap();
        let without = format!("c=biws,r=abc{nonce}");
        let auth = format!("n=u,r=abc,{first},{without}");
        let msg = client_final("pw", &cred.salt, cred.iterations, &auth, &without);
        assert!(server.client_final(msg.as_bytes()).is_ok());
        // A nonce that does not end with the combined one is refused.
        let mut server = ScramServer::new();
        server.client_first(b"n,,n=u,r=abc").unwrap();
        server.server_first(cred).unwrap();
        assert!(matches!(
            server.client_final(b"c=biws,r=abcX,p=AAAA"),
            Err(ScramError::Malformed(_))
        ));
    }

    #[test]
    fn stored_form_round_trips_and_checks_passwords() {
        let cred = ScramCredential::generate(b"pw").unwrap();
        let text = cred.to_string();
        assert!(text.starts_with("SCRAM-SHA-256$4096:"));
        let back = ScramCredential::parse(&text).unwrap();
        assert_eq!(back, cred);
        assert!(back.verify_password(b"pw"));
        assert!(!back.verify_password(b"pw2"));
        assert!(!format!("{back:?}").contains(&B64.encode(back.stored_key)));
        for bad in [
            "",
            "SCRAM-SHA-256$",
            "SCRAM-SHA-256$100:c2FsdA==$AAAA:AAAA",
            "SCRAM-SHA-1$4096:c2FsdA==$x:y",
            "SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA",
        ] {
            assert!(ScramCredential::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_and_out_of_order_messages_are_refused() {
        let mut s = ScramServer::new();
        assert_eq!(
            s.client_final(b"c=biws,r=x,p=AA=="),
            Err(ScramError::OutOfOrder)
        );
        for bad in [
            &b""[..],
            b"n,,",
            b"x,,n=a,r=b",
            b"n,,n=a",
            b"n,,n=a=ZZ,r=b",
            b"n,,n=,r=b",
            b"n,a=b,n=a,r=b",
            b"n,,n=a,r=b,tokenauth=true",
            b"\xff\xfe",
        ] {
            let mut s = ScramServer::new();
            assert!(s.client_first(bad).is_err(), "{bad:?}");
        }
        let mut s = ScramServer::new();
        assert_eq!(
            s.client_first(b"p=tls-unique,,n=a,r=b"),
            Err(ScramError::ChannelBinding)
        );
        let mut s = ScramServer::new();
        s.client_first(b"n,a=a,n=a,r=b").unwrap();
        s.server_first(decoy_credential("a")).unwrap();
        // Channel binding must repeat "n,a=a," (not "n,,").
        assert!(matches!(
            s.client_final(b"c=biws,r=b,p=AA=="),
            Err(ScramError::Malformed(_))
        ));
    }
}
