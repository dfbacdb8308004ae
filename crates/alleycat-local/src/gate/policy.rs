//! What each caller may do on the broker: IoT Core's policies for the embedded stack, as the
//! trust contract states them. Pure decisions over decoded packets; [`super::session`] acts on
//! them.

use alleycat_domain::views::{PUBLISH_TOPIC, SUBSCRIBE_TOPIC_PREFIX};
use rumqttc::mqttbytes::v4::{Connect, ConnectReturnCode, Publish};
use rumqttc::mqttbytes::{Protocol, QoS};

use crate::identity::{Identities, OPERATOR_USERNAME, OperatorSecret};

/// The largest payload a client may publish: IoT Core's limit, 128 KB. Anything larger closes
/// the connection, as on IoT Core.
pub const MAX_PAYLOAD: usize = 128 * 1024;

/// Who a connection is, once its CONNECT has been checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// A rider's identity (`local:<32 hex>`), proven by its token.
    Identity(String),
    /// The trusted producer (the simulator, tests), proven by the operator secret.
    Operator,
    /// No user name: may only listen to the standings.
    Anonymous,
}

/// Checks a CONNECT: the caller's role, or the CONNACK code that refuses it.
///
/// - MQTT 3.1.1 only (protocol level 4), as the broker behind speaks no other;
/// - no will message: a will is a publish the broker would make on the client's behalf after it
///   is gone, outside the publish checks, so it is refused as "not authorized";
/// - no user name: anonymous; `operator` with the operator secret: the operator; an identity id
///   with its token, and the client id equal to it: that identity. A wrong secret or token, or
///   any other user name, is "bad user name or password"; an identity connecting under another
///   client id is "not authorized" (IoT Core's `iot:Connect` on `client/${identity}`).
pub fn authenticate(
    connect: &Connect,
    identities: &Identities,
    operator: &OperatorSecret,
) -> Result<Role, ConnectReturnCode> {
    if connect.protocol != Protocol::V4 {
        return Err(ConnectReturnCode::RefusedProtocolVersion);
    }
    if connect.last_will.is_some() {
        return Err(ConnectReturnCode::NotAuthorized);
    }
    let Some(login) = &connect.login else {
        return Ok(Role::Anonymous);
    };
    if login.username == OPERATOR_USERNAME {
        return if operator.verify(login.password.as_bytes()) {
            Ok(Role::Operator)
        } else {
            Err(ConnectReturnCode::BadUserNamePassword)
        };
    }
    if !identities.verify(&login.username, &login.password) {
        return Err(ConnectReturnCode::BadUserNamePassword);
    }
    if connect.client_id != login.username {
        return Err(ConnectReturnCode::NotAuthorized);
    }
    Ok(Role::Identity(login.username.clone()))
}

/// The client id the broker behind sees: an identity keeps its id (it is unique, and the only
/// way to take it over is to hold its token); the operator's and anonymous clients' ids are
/// put in their own namespaces, so that no client can take over another role's session (or the
/// stack's in-process links) by picking its client id. `None` when the id is empty and a
/// persistent session is asked for, which MQTT refuses ("identifier rejected"); an empty id with
/// a clean session gets a random one, as MQTT has the server do.
pub fn upstream_client_id(role: &Role, connect: &Connect) -> Option<String> {
    let id = if connect.client_id.is_empty() {
        if !connect.clean_session {
            return None;
        }
        format!("gate-{:016x}", fastrand::u64(..))
    } else {
        connect.client_id.clone()
    };
    Some(match role {
        Role::Identity(identity) => identity.clone(),
        Role::Operator => format!("operator:{id}"),
        Role::Anonymous => format!("anonymous:{id}"),
    })
}

/// Why a publish closes the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Anonymous clients may not publish at all.
    Anonymous,
    /// Only `alleycat-publish` takes publishes.
    Topic,
    /// Retained messages are not allowed.
    Retain,
    /// QoS 2 is not supported (IoT Core has no QoS 2 either).
    Qos,
    /// The payload is over [`MAX_PAYLOAD`].
    TooLarge,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Anonymous => "anonymous clients may not publish",
            Self::Topic => "publishing to a topic other than alleycat-publish",
            Self::Retain => "a retained publish",
            Self::Qos => "a QoS 2 publish",
            Self::TooLarge => "a payload over 128 KB",
        })
    }
}

/// Whether a publish may go to the ingest rule, and who to stamp it with: an identity's publish
/// to exactly `alleycat-publish` is stamped with its identity id, the operator's with nothing
/// (`None`: the trusted producer); anything else is a [`Refusal`], which closes the connection.
pub fn check_publish<'r>(role: &'r Role, publish: &Publish) -> Result<Option<&'r str>, Refusal> {
    if *role == Role::Anonymous {
        return Err(Refusal::Anonymous);
    }
    if publish.topic != PUBLISH_TOPIC {
        return Err(Refusal::Topic);
    }
    if publish.retain {
        return Err(Refusal::Retain);
    }
    if publish.qos == QoS::ExactlyOnce {
        return Err(Refusal::Qos);
    }
    if publish.payload.len() > MAX_PAYLOAD {
        return Err(Refusal::TooLarge);
    }
    Ok(match role {
        Role::Identity(identity) => Some(identity),
        Role::Operator | Role::Anonymous => None,
    })
}

/// Whether a client may subscribe to `filter`: one class's standings
/// (`alleycat-subscribe/class-<1..6>`) or every class's (`alleycat-subscribe/+`; the contract's
/// `alleycat-subscribe/class-+` is not a valid MQTT filter, since `+` must fill a whole level).
/// The same for every role.
pub fn allowed_filter(filter: &str) -> bool {
    let Some(level) = filter.strip_prefix(SUBSCRIBE_TOPIC_PREFIX) else {
        return false;
    };
    level == "+"
        || matches!(
            level.strip_prefix("class-"),
            Some("1" | "2" | "3" | "4" | "5" | "6")
        )
}
