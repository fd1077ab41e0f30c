//! kftray: Kubernetes port-forwards declared in `kftray.toml`.
