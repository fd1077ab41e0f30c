//! SPDY/3.1 as Kubernetes port-forward uses it.
