//! Choosing the pod and the container port a forward reaches, as kubectl does.
//!
//! kubectl resolves `svc/web 8080:http` in two steps: the service's selector gives candidate
//! pods, of which the most "active" one is used, and the service port (by number or name) is
//! translated to the container port through `targetPort`, a name there being looked up among
//! the chosen pod's container ports. We follow the same rules so that a forward written for
//! kubectl lands on the same place with kftray, but we keep ranking on every change instead of
//! choosing once.

mod declared;
mod follow;
mod ports;
mod ranking;
mod selector;

pub use crate::target::{Endpoint, PortRef, Target, WorkloadKind};
pub use declared::declared_ports;
pub use follow::{Resolution, ServiceStep, each_service_state, follow};
pub use ports::{PortError, container_port, service_target};
pub use ranking::{is_usable, rank_pods};
pub use selector::label_selector_string;
