//! One control plane for all the tests of a test binary: started on first use on a thread
//! of its own (its processes die with the test process), never stopped.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::{ControlPlane, Options, Version};

/// What a test needs to reach the shared cluster.
#[derive(Clone, Debug)]
pub struct Shared {
    pub version: Version,
    pub server: String,
    pub kubeconfig: PathBuf,
    pub restricted_kubeconfig: PathBuf,
    pub kubectl: PathBuf,
}

static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();

/// The test binary's control plane, started with `options()` by the first caller.
pub fn shared(options: impl FnOnce() -> Options) -> &'static Shared {
    let result = SHARED.get_or_init(|| {
        let opts = options();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("controlplane".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                rt.block_on(async move {
                    match ControlPlane::start(opts).await {
                        Ok(cp) => {
                            let _ = tx.send(Ok(Shared {
                                version: cp.version,
                                server: cp.server.clone(),
                                kubeconfig: cp.kubeconfig().to_path_buf(),
                                restricted_kubeconfig: cp.restricted_kubeconfig().to_path_buf(),
                                kubectl: cp.kubectl(),
                            }));
                            // Serves until the test process exits.
                            std::future::pending::<()>().await;
                            drop(cp);
                        }
                        Err(e) => {
                            let _ = tx.send(Err(format!("{e:#}")));
                        }
                    }
                });
            })
            .map_err(|e| e.to_string())
            .and_then(|_| rx.recv().map_err(|e| e.to_string()))
            .and_then(|r| r)
    });
    match result {
        Ok(s) => s,
        Err(e) => panic!("the test control plane did not start: {e}"),
    }
}
