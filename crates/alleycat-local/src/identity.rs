//! Who is calling: the embedded stack's stand-in for Cognito identities and IAM credentials.
//!
//! On AWS a browser gets a Cognito identity id and temporary credentials; API Gateway's IAM
//! authorizer and IoT Core's policies then know the caller for sure. The embedded stack has no
//! Cognito, so it mints its own identities ([`Identities`]): an identity id `local:<32 hex>` and
//! a token that is `hex(HMAC-SHA256(stack secret, identity id))`. Nothing is stored per identity:
//! whoever holds a valid token holds the identity, and only the stack (the holder of the secret)
//! can mint one. The secret is persisted in the data directory, so identities survive restarts
//! (a rider keeps their claims), and is never sent anywhere.
//!
//! The operator ([`OperatorSecret`]) is the trusted producer, like an IAM principal putting to
//! Kinesis on AWS: the simulator and tests publish as it, and its messages carry no
//! `identityId`. Its secret is a file readable by whoever owns the data directory, which is
//! exactly who may run the stack.
//!
//! Both files are created with mode 0600 from the operating system's random source (not
//! `fastrand`, which is not meant for secrets), and every comparison is constant-time.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::error::LocalError;

/// The file, in the data directory, holding the stack secret identity tokens are signed with.
pub const STACK_SECRET_FILE: &str = "stack-secret";
/// The file, in the data directory, holding the operator's MQTT password.
pub const OPERATOR_SECRET_FILE: &str = "operator-secret";
/// The MQTT user name of the operator.
pub const OPERATOR_USERNAME: &str = "operator";
/// The prefix of every identity id the stack mints.
pub const IDENTITY_PREFIX: &str = "local:";
/// The identity pool id the HTTP layer reports for local identities.
pub const IDENTITY_POOL_ID: &str = "local";

/// Bytes of randomness in a secret (and in an identity id's suffix, half of it).
const SECRET_BYTES: usize = 32;

/// One identity: its id and the token that proves it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// `local:<32 hex>`.
    pub identity_id: String,
    /// `hex(HMAC-SHA256(stack secret, identity id))`, 64 hex digits.
    pub token: String,
}

/// Mints and verifies identities with the stack secret.
#[derive(Clone)]
pub struct Identities {
    key: [u8; SECRET_BYTES],
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities").finish_non_exhaustive()
    }
}

impl Identities {
    /// Identities signed with `key` (tests; the stack uses [`Identities::open`]).
    pub fn with_key(key: [u8; SECRET_BYTES]) -> Self {
        Self { key }
    }

    /// The stack's identities: the secret in `<data_dir>/stack-secret`, created if missing.
    pub fn open(data_dir: &Path) -> Result<Self, LocalError> {
        let key = load_or_create_secret(&data_dir.join(STACK_SECRET_FILE))?;
        Ok(Self { key })
    }

    fn mac(&self, identity_id: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(identity_id.as_bytes());
        mac
    }

    /// A new identity, with a random id.
    pub fn issue(&self) -> Result<Identity, LocalError> {
        let suffix = random::<{ SECRET_BYTES / 2 }>()?;
        let identity_id = format!("{IDENTITY_PREFIX}{}", hex::encode(suffix));
        let token = hex::encode(self.mac(&identity_id).finalize().into_bytes());
        Ok(Identity { identity_id, token })
    }

    /// Whether `token` proves `identity_id`: the id is one the stack mints (which also keeps it a
    /// single MQTT topic level) and the HMAC matches, compared in constant time.
    pub fn verify(&self, identity_id: &str, token: &str) -> bool {
        if !is_identity_id(identity_id) {
            return false;
        }
        let Ok(tag) = hex::decode(token) else {
            return false;
        };
        self.mac(identity_id).verify_slice(&tag).is_ok()
    }
}

/// Whether `id` has the shape of an identity the stack mints: `local:` and 32 lower-case hex
/// digits.
pub fn is_identity_id(id: &str) -> bool {
    id.strip_prefix(IDENTITY_PREFIX).is_some_and(|hex| {
        hex.len() == SECRET_BYTES && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// The operator's password.
#[derive(Clone)]
pub struct OperatorSecret(String);

impl std::fmt::Debug for OperatorSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorSecret(..)")
    }
}

impl OperatorSecret {
    /// A given secret (tests).
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The stack's operator secret: `<data_dir>/operator-secret`, created if missing.
    pub fn open(data_dir: &Path) -> Result<Self, LocalError> {
        let secret = load_or_create_secret(&data_dir.join(OPERATOR_SECRET_FILE))?;
        Ok(Self(hex::encode(secret)))
    }

    /// The password, to hand to a trusted producer.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `password` is the secret, compared in constant time.
    pub fn verify(&self, password: &[u8]) -> bool {
        constant_time_eq(self.0.as_bytes(), password)
    }
}

/// Equality whose time depends only on the lengths (which are no secret: 64 hex digits).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// `N` bytes from the operating system's random source.
fn random<const N: usize>() -> Result<[u8; N], LocalError> {
    let mut bytes = [0; N];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| LocalError::Config(format!("the operating system's random source: {e}")))?;
    Ok(bytes)
}

/// Reads the 32-byte secret (64 hex digits) at `path`, or creates the file with a new one,
/// readable by its owner only.
fn load_or_create_secret(path: &Path) -> Result<[u8; SECRET_BYTES], LocalError> {
    let io = |source| LocalError::Io {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => parse_secret(path, &text),
        Err(error) if error.kind() == ErrorKind::NotFound => {
            let secret = random::<SECRET_BYTES>()?;
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).map_err(io)?;
            writeln!(file, "{}", hex::encode(secret)).map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok(secret)
        }
        Err(error) => Err(io(error)),
    }
}

fn parse_secret(path: &Path, text: &str) -> Result<[u8; SECRET_BYTES], LocalError> {
    let invalid = || {
        LocalError::Config(format!(
            "{} is not a secret of {SECRET_BYTES} bytes in hex: delete it to make a new one",
            PathBuf::from(path).display()
        ))
    };
    let bytes = hex::decode(text.trim()).map_err(|_| invalid())?;
    bytes.try_into().map_err(|_| invalid())
}

/// The scheme of the HTTP `Authorization` header the embedded stack verifies:
/// `Authorization: Alleycat <identityId>:<token>`.
pub const AUTHORIZATION_SCHEME: &str = "Alleycat";

/// A request whose `Authorization` header does not prove an identity: API Gateway's IAM
/// authorizer answers 403 `{"message":"Forbidden"}` without invoking the function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Forbidden")]
pub struct Forbidden;

impl Identities {
    /// The caller of an HTTP request with `authorization` (the header's value, if any): no
    /// header, no identity; `Alleycat <identityId>:<token>` with a valid token, that identity;
    /// anything else is [`Forbidden`].
    pub fn caller(&self, authorization: Option<&[u8]>) -> Result<Option<String>, Forbidden> {
        let Some(value) = authorization else {
            return Ok(None);
        };
        let value = std::str::from_utf8(value).map_err(|_| Forbidden)?;
        let (scheme, credentials) = value.trim().split_once(' ').ok_or(Forbidden)?;
        if !scheme.eq_ignore_ascii_case(AUTHORIZATION_SCHEME) {
            return Err(Forbidden);
        }
        // The id is `local:<hex>`: the token follows its last colon.
        let (identity_id, token) = credentials.trim().rsplit_once(':').ok_or(Forbidden)?;
        if self.verify(identity_id, token) {
            Ok(Some(identity_id.to_owned()))
        } else {
            Err(Forbidden)
        }
    }
}

/// What API Gateway's IAM authorizer puts in a payload-v2 event for a Cognito identity:
/// `requestContext.authorizer.iam.cognitoIdentity.{identityId, identityPoolId}`.
pub fn authorizer(identity_id: &str) -> aws_lambda_events::apigw::ApiGatewayRequestAuthorizer {
    use aws_lambda_events::apigw::{
        ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerCognitoIdentity,
        ApiGatewayRequestAuthorizerIamDescription,
    };
    let mut cognito = ApiGatewayRequestAuthorizerCognitoIdentity::default();
    cognito.identity_id = Some(identity_id.to_owned());
    cognito.identity_pool_id = Some(IDENTITY_POOL_ID.to_owned());
    // As Cognito says of a guest identity, which is what a local identity stands for.
    cognito.amr = vec!["unauthenticated".to_owned()];
    let mut iam = ApiGatewayRequestAuthorizerIamDescription::default();
    iam.cognito_identity = Some(cognito);
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.iam = Some(iam);
    authorizer
}
