//! kftray's relay: the pod it runs in a cluster for what port-forward cannot carry (UDP, hosts
//! only the cluster reaches, a service's ClusterIP), and the client side of its protocol.
//!
//! One relay pod serves every forward of a `kftray up` run in a (cluster, namespace): the
//! first forward that needs it creates it ([`Relays::acquire`]), the last one to stop deletes
//! it. A keeper task per relay creates the pod from its manifest ([`Template`]), waits for it,
//! holds a heartbeat session through the same port-forward transport as TCP forwards, keeps
//! its heartbeat annotation fresh, and makes a new pod when the old one dies. Leftovers of
//! owners that are gone ([`owner::leftover`]) are deleted when a relay starts. Each relayed
//! connection opens a stream to the pod and speaks `relay_server::protocol` on it.

mod destination;
mod dial;
mod keeper;
mod owner;
mod relays;
mod template;

pub use destination::{DestinationState, follow_destination};
pub use dial::RelayDialer;
pub use owner::{Owner, SELECTOR, leftover};
pub use relays::{RelayKey, RelayLease, RelayState, Relays};
pub use template::{DEFAULT_IMAGE, Template, TemplateError};

/// What to tell a user the cluster refused: the verb and resource kftray needs, where, and
/// the server's own words.
fn forbidden(verb: &str, resource: &str, namespace: &str, server: &str) -> String {
    format!(
        "the cluster refused to let kftray {verb} {resource} in namespace {namespace:?}, which \
         its relay needs: grant `{verb}` on `{resource}` there (examples/relay-rbac.yaml has \
         the whole Role). The server said: {server}"
    )
}

/// The server's status when a kube call was refused with 403.
fn refused(error: &kube::Error) -> Option<&kube::core::Status> {
    match error {
        kube::Error::Api(status) if status.code == 403 => Some(status),
        _ => None,
    }
}
