// Helpers write some modules in parallel; until each lands, a stand-in keeps the crate
// building (src/standin.rs). Delete this file and the stand-ins once all have landed.
fn main() {
    println!("cargo::rerun-if-changed=src");
    for m in [
        "addr",
        "backend",
        "dns",
        "service_proxy",
        "process",
        "portforward",
    ] {
        let cfg = format!("kubesim_has_{m}");
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        let file = format!("src/{m}.rs");
        let dir = format!("src/{m}/mod.rs");
        println!("cargo::rerun-if-changed={file}");
        println!("cargo::rerun-if-changed={dir}");
        if std::path::Path::new(&file).exists() || std::path::Path::new(&dir).exists() {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
