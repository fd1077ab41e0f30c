//! A simulated Kubernetes cluster that kubectl and kube-rs accept.
