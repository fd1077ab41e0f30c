//! kftray's relay: the pod it runs in a cluster for what port-forward cannot carry (UDP, hosts
//! only the cluster reaches, a service's ClusterIP), and the client side of its protocol.
//!
//! One relay pod serves every forward of a `kftray up` run in a (cluster, namespace): the
//! first forward that needs it creates it ([`Relays::acquire`]), the last one to stop deletes
//! it. A keeper task per relay creates the pod from its manifest ([`Template`]), waits for it,
//! holds a heartbeat session through the same port-forward transport as TCP forwards, keeps
//! its heartbeat annotation fresh, and makes a new pod when the old one dies. Leftovers of
//! owners that are gone ([`owner::leftover`]) are deleted when a relay starts. Each relayed
//! connection opens a stream to the pod and speaks `kftray_relay::protocol` on it.

mod destination;
mod dial;
mod handshake;
mod health;
mod keeper;
mod owner;
mod relays;
mod session;
mod template;

pub use destination::{DestinationState, follow_destination};
pub use dial::RelayDialer;
pub use owner::{Owner, SELECTOR, leftover};
pub use relays::{RelayKey, RelayLease, Relays};
pub use session::RelayState;
pub use template::{DEFAULT_IMAGE, POD_LABEL, Template};

/// What to tell a user the cluster refused: the verb and resource kftray needs, where, and
/// the server's own words. The server names what it refused (`cannot list resource "pods"`),
/// and that is what to grant: one call can need several verbs (a watch lists first; a
/// WebSocket port-forward is a `get` as well as a `create`).
fn forbidden(verb: &str, resource: &str, namespace: &str, server: &str) -> String {
    let (verb, resource) = refused_rule(server).unwrap_or((verb, resource));
    format!(
        "the cluster refused to let kftray {verb} {resource} in namespace {namespace:?}, which \
         its relay needs: grant `{verb}` on `{resource}` there (examples/relay-rbac.yaml has \
         the whole Role). The server said: {server}"
    )
}

/// The verb and resource in an RBAC refusal: `… cannot VERB resource "RESOURCE" …`.
fn refused_rule(server: &str) -> Option<(&str, &str)> {
    let rest = &server[server.find("cannot ")? + "cannot ".len()..];
    let (verb, rest) = rest.split_once(" resource \"")?;
    let (resource, _) = rest.split_once('"')?;
    (!verb.contains(' ')).then_some((verb, resource))
}

/// The server's status when a kube call was refused with 403.
fn refused(error: &kube::Error) -> Option<&kube::core::Status> {
    match error {
        kube::Error::Api(status) if status.code == 403 => Some(status),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_what_the_server_refused() {
        let server = "pods \"kftray-relay-x\" is forbidden: User \"dev\" cannot get resource \"pods/portforward\" in API group \"\" in the namespace \"shop\"";
        let message = forbidden("create", "pods/portforward", "shop", server);
        assert!(
            message.contains("kftray get pods/portforward in namespace \"shop\""),
            "{message}"
        );
        assert!(
            message.contains("grant `get` on `pods/portforward`"),
            "{message}"
        );
        // Words it cannot read leave kftray's own guess.
        let message = forbidden("watch", "pods", "shop", "403 Forbidden");
        assert!(message.contains("grant `watch` on `pods`"), "{message}");
    }
}
