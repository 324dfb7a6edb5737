//! SCRAM credentials (RFC 5802, RFC 7677), kept as Kafka keeps them: per user and mechanism, the salt, the
//! iteration count, the stored key `H(HMAC(SaltedPassword, "Client Key"))` and the server key
//! `HMAC(SaltedPassword, "Server Key")`. The salted password a client sends (AlterUserScramCredentials) is
//! turned into these keys on the broker that receives it and is never stored or passed on; the two keys are
//! what a SCRAM server needs to check a client's proof and prove itself.

use base64::Engine;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

/// Kafka's bounds on a credential's iteration count (`ScramMechanism`'s min and max).
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism Kafka names `name` (`SCRAM-SHA-256`, `SCRAM-SHA-512`).
    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => mac::<Hmac<Sha256>>(key, data),
            ScramMechanism::Sha512 => mac::<Hmac<Sha512>>(key, data),
        }
    }

    /// `Hi(password, salt, rounds)`: PBKDF2 with the mechanism's HMAC.
    fn salted_password(self, password: &[u8], salt: &[u8], rounds: u32) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => pbkdf2_with::<Hmac<Sha256>>(password, salt, rounds),
            ScramMechanism::Sha512 => pbkdf2_with::<Hmac<Sha512>>(password, salt, rounds),
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// `HMAC(key, data)`. HMAC takes keys of any length, so `new_from_slice` cannot fail.
fn mac<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    <M as Mac>::new_from_slice(key)
        .map(|mut mac| {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        })
        .unwrap_or_default()
}

/// PBKDF2 with the HMAC `M`, as long as one of its outputs.
fn pbkdf2_with<M: Mac + KeyInit + hmac::digest::FixedOutput + Clone + Sync>(
    password: &[u8],
    salt: &[u8],
    rounds: u32,
) -> Vec<u8> {
    let mut salted = vec![0u8; <M as hmac::digest::OutputSizeUser>::output_size()];
    // HMAC takes keys of any length, so this cannot fail either.
    let _ = pbkdf2::pbkdf2::<M>(password, salt, rounds, &mut salted);
    salted
}

/// One user's credential for one mechanism.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub mechanism: ScramMechanism,
    pub iterations: i32,
    #[serde(with = "base64_bytes")]
    pub salt: Vec<u8>,
    #[serde(with = "base64_bytes")]
    pub stored_key: Vec<u8>,
    #[serde(with = "base64_bytes")]
    pub server_key: Vec<u8>,
}

impl ScramCredential {
    /// The credential for a salted password (`Hi(password, salt, iterations)`, computed by the client).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        iterations: i32,
        salt: &[u8],
        salted_password: &[u8],
    ) -> ScramCredential {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        ScramCredential {
            mechanism,
            iterations,
            salt: salt.to_vec(),
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
        }
    }

    /// The credential for a password: `Hi(password, salt, iterations)` (PBKDF2 with the mechanism's HMAC), as
    /// a client computes it, then the keys. For credentials a node adds itself (`sluice serve --add-scram`).
    pub fn from_password(mechanism: ScramMechanism, iterations: i32, salt: &[u8], password: &str) -> ScramCredential {
        let rounds = u32::try_from(iterations.max(1)).unwrap_or(1);
        let salted = mechanism.salted_password(password.as_bytes(), salt, rounds);
        ScramCredential::from_salted_password(mechanism, iterations, salt, &salted)
    }
}

/// Why a credential cannot be stored: Kafka's UNACCEPTABLE_CREDENTIAL reasons.
pub fn validate(user: &str, credential: &ScramCredential) -> Result<(), String> {
    validate_parameters(user, credential.iterations, &credential.salt)
}

/// [`validate`]'s checks, for a credential before it is derived: the keys play no part in them.
pub fn validate_parameters(user: &str, iterations: i32, salt: &[u8]) -> Result<(), String> {
    if user.is_empty() {
        return Err("the user name must not be empty".into());
    }
    if iterations < MIN_ITERATIONS {
        return Err(format!("too few iterations: {iterations} < {MIN_ITERATIONS}"));
    }
    if iterations > MAX_ITERATIONS {
        return Err(format!("too many iterations: {iterations} > {MAX_ITERATIONS}"));
    }
    if salt.is_empty() {
        return Err("the salt must not be empty".into());
    }
    Ok(())
}

/// Why a SCRAM exchange failed. The client is told only that authentication failed; the reason is logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("channel binding is not supported")]
    ChannelBinding,
    #[error("no {mechanism} credential for user {user:?}")]
    UnknownUser { user: String, mechanism: &'static str },
    #[error("the client's nonce does not continue the server's")]
    NonceMismatch,
    #[error("wrong proof for user {0:?}")]
    WrongProof(String),
}

/// The server side of one SCRAM exchange (RFC 5802 §3): the client's first message answered, waiting for its
/// final one.
#[derive(Debug, Clone)]
pub struct ServerExchange {
    user: String,
    credential: ScramCredential,
    nonce: String,
    /// `client-first-message-bare "," server-first-message`, the first two parts of the AuthMessage.
    first_messages: String,
}

impl ServerExchange {
    /// Reads the client's first message and writes the server's: the combined nonce, the salt and the
    /// iteration count of the user's credential (`lookup`). `server_nonce` must be fresh and random.
    pub fn start(
        mechanism: ScramMechanism,
        client_first: &[u8],
        server_nonce: &str,
        lookup: impl Fn(&str) -> Option<ScramCredential>,
    ) -> Result<(ServerExchange, Vec<u8>), ScramError> {
        let text = std::str::from_utf8(client_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        // gs2-header: "n,," (no channel binding) or "y,," (client could, thinks the server cannot), with an
        // optional authzid "a=..." that must name the user itself.
        let mut parts = text.splitn(3, ',');
        let binding = parts.next().ok_or(ScramError::Malformed("no gs2 header"))?;
        let authzid = parts.next().ok_or(ScramError::Malformed("no gs2 header"))?;
        let bare = parts.next().ok_or(ScramError::Malformed("no client-first-message-bare"))?;
        match binding {
            "n" | "y" => {}
            _ if binding.starts_with("p=") => return Err(ScramError::ChannelBinding),
            _ => return Err(ScramError::Malformed("bad gs2 channel binding flag")),
        }
        let mut user = None;
        let mut client_nonce = None;
        for attribute in bare.split(',') {
            match attribute.split_once('=') {
                Some(("n", value)) => user = Some(unescape(value)?),
                Some(("r", value)) if !value.is_empty() => client_nonce = Some(value),
                Some(("m", _)) => return Err(ScramError::Malformed("mandatory extensions are not supported")),
                _ => {} // Kafka's own extensions (tokenauth) and unknown optional ones.
            }
        }
        let user = user.ok_or(ScramError::Malformed("no user name"))?;
        let client_nonce = client_nonce.ok_or(ScramError::Malformed("no nonce"))?;
        if let Some(authzid) = authzid.strip_prefix("a=") {
            if unescape(authzid)? != user {
                return Err(ScramError::Malformed("an authorization id other than the user"));
            }
        }
        let credential = lookup(&user)
            .filter(|c| c.mechanism == mechanism)
            .ok_or_else(|| ScramError::UnknownUser { user: user.clone(), mechanism: mechanism.name() })?;
        let nonce = format!("{client_nonce}{server_nonce}");
        let salt = base64::engine::general_purpose::STANDARD.encode(&credential.salt);
        let server_first = format!("r={nonce},s={salt},i={}", credential.iterations);
        let first_messages = format!("{bare},{server_first}");
        Ok((ServerExchange { user, credential, nonce, first_messages }, server_first.into_bytes()))
    }

    /// Checks the client's final message (its proof) and returns the user and the server's final message (the
    /// server's signature).
    pub fn finish(self, client_final: &[u8]) -> Result<(String, Vec<u8>), ScramError> {
        let text = std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or(ScramError::Malformed("no proof"))?;
        let mut binding = None;
        let mut nonce = None;
        for attribute in without_proof.split(',') {
            match attribute.split_once('=') {
                Some(("c", value)) => binding = Some(value),
                Some(("r", value)) => nonce = Some(value),
                _ => {}
            }
        }
        let engine = &base64::engine::general_purpose::STANDARD;
        // "biws" is "n,,", "eSws" is "y,,": the gs2 header without channel binding data.
        if !matches!(binding, Some("biws" | "eSws")) {
            return Err(ScramError::ChannelBinding);
        }
        if nonce != Some(self.nonce.as_str()) {
            return Err(ScramError::NonceMismatch);
        }
        let proof = engine.decode(proof).map_err(|_| ScramError::Malformed("proof is not base64"))?;
        let mechanism = self.credential.mechanism;
        let auth_message = format!("{},{without_proof}", self.first_messages);
        let client_signature = mechanism.hmac(&self.credential.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(ScramError::WrongProof(self.user));
        }
        let client_key: Vec<u8> = proof.iter().zip(&client_signature).map(|(p, s)| p ^ s).collect();
        let stored_key = mechanism.hash(&client_key);
        // Compared without an early exit, so the time taken says nothing about where the keys differ.
        let difference = stored_key.iter().zip(&self.credential.stored_key).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if difference != 0 || stored_key.len() != self.credential.stored_key.len() {
            return Err(ScramError::WrongProof(self.user));
        }
        let server_signature = mechanism.hmac(&self.credential.server_key, auth_message.as_bytes());
        Ok((self.user, format!("v={}", engine.encode(server_signature)).into_bytes()))
    }
}

/// A SCRAM `saslname`: `=2C` is a comma and `=3D` an equals sign; any other `=` is malformed.
fn unescape(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in a user name")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use base64::Engine;

    use super::*;

    fn b64(text: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(text).unwrap()
    }

    /// RFC 7677's example: user "user", password "pencil", salt `W22ZaJ0SNY7soEsUEjb6gQ==`, 4096 iterations.
    /// Its client proof and server signature follow from exactly these two keys.
    #[test]
    fn keys_match_rfc_7677() {
        let salt = b64("W22ZaJ0SNY7soEsUEjb6gQ==");
        // Hi("pencil", salt, 4096) with HMAC-SHA-256, as the client computes it.
        let salted = hex("c4a49510323ab4f952cac1fa99441939e78ea74d6be81ddf7096e87513dc615d");
        let credential = ScramCredential::from_salted_password(ScramMechanism::Sha256, 4096, &salt, &salted);
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let server_signature = ScramMechanism::Sha256.hmac(&credential.server_key, auth_message.as_bytes());
        assert_eq!(server_signature, b64("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
        let client_signature = ScramMechanism::Sha256.hmac(&credential.stored_key, auth_message.as_bytes());
        let proof = b64("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        let client_key: Vec<u8> = proof.iter().zip(&client_signature).map(|(p, s)| p ^ s).collect();
        assert_eq!(ScramMechanism::Sha256.hash(&client_key), credential.stored_key);
    }

    #[test]
    fn a_password_salts_to_rfc_7677s_salted_password() {
        let salt = b64("W22ZaJ0SNY7soEsUEjb6gQ==");
        let from_password = ScramCredential::from_password(ScramMechanism::Sha256, 4096, &salt, "pencil");
        let salted = hex("c4a49510323ab4f952cac1fa99441939e78ea74d6be81ddf7096e87513dc615d");
        assert_eq!(from_password, ScramCredential::from_salted_password(ScramMechanism::Sha256, 4096, &salt, &salted));
    }

    #[test]
    fn credentials_round_trip_and_bad_ones_are_refused() {
        let credential = ScramCredential::from_salted_password(ScramMechanism::Sha512, 8192, b"salt", b"salted");
        assert_eq!(credential.stored_key.len(), 64);
        let text = serde_json::to_string(&credential).unwrap();
        assert_eq!(serde_json::from_str::<ScramCredential>(&text).unwrap(), credential);
        assert!(validate("alice", &credential).is_ok());
        assert!(validate("", &credential).is_err());
        assert!(validate("alice", &ScramCredential { iterations: 4095, ..credential.clone() }).is_err());
        assert!(validate("alice", &ScramCredential { iterations: 16385, ..credential }).is_err());
    }

    /// RFC 7677's whole exchange, played against the server side.
    #[test]
    fn the_rfc_7677_exchange_authenticates_and_a_wrong_proof_does_not() {
        let salted = hex("c4a49510323ab4f952cac1fa99441939e78ea74d6be81ddf7096e87513dc615d");
        let credential = ScramCredential::from_salted_password(
            ScramMechanism::Sha256,
            4096,
            &b64("W22ZaJ0SNY7soEsUEjb6gQ=="),
            &salted,
        );
        let lookup = |user: &str| (user == "user").then(|| credential.clone());
        let (exchange, server_first) = ServerExchange::start(
            ScramMechanism::Sha256,
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            lookup,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(server_first).unwrap(),
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let (user, server_final) = exchange.clone().finish(client_final.as_bytes()).unwrap();
        assert_eq!(user, "user");
        assert_eq!(String::from_utf8(server_final).unwrap(), "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        let wrong = client_final.replace("p=dH", "p=dI");
        assert!(matches!(exchange.clone().finish(wrong.as_bytes()), Err(ScramError::WrongProof(_))));
        let other_nonce = client_final.replace("k0,", "k1,");
        assert_eq!(exchange.finish(other_nonce.as_bytes()).unwrap_err(), ScramError::NonceMismatch);
        assert!(matches!(
            ServerExchange::start(ScramMechanism::Sha256, b"n,,n=bob,r=x", "y", lookup),
            Err(ScramError::UnknownUser { .. })
        ));
        assert!(matches!(
            ServerExchange::start(ScramMechanism::Sha512, b"n,,n=user,r=x", "y", lookup),
            Err(ScramError::UnknownUser { .. })
        ));
        assert_eq!(
            ServerExchange::start(ScramMechanism::Sha256, b"p=tls-unique,,n=user,r=x", "y", lookup).unwrap_err(),
            ScramError::ChannelBinding
        );
        assert_eq!(unescape("a=2Cb=3Dc").unwrap(), "a,b=c");
        assert!(unescape("a=4").is_err());
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
    }
}
