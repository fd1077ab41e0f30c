//! Every parser kftray runs on outside input, on hostile input: kftray.toml with its overlay
//! (the team's file comes from someone else's repository), kftray's JSON (`import`), and the
//! kubeconfig reading kftray relies on. The inputs are the committed examples and fixtures,
//! mutated (bytes and lines replaced, cut short, grown), and random text; each must end in a
//! result or a diagnostic: never a panic, never a hang. The SPDY and WebSocket framing are
//! fuzzed in `spdy` (src/fuzz.rs), the relay protocol in `relay-server` (tests and
//! cargo-fuzz targets). proptest keeps every failure it finds in `proptest-regressions/`,
//! replayed first on every run.

use kftray::config::{self, Layer};
use kftray::interop::kftray_json;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &str, ext: &str) -> Vec<String> {
    let mut texts: Vec<String> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    texts.sort();
    assert!(!texts.is_empty(), "no {ext} files in {dir}");
    texts
}

fn toml_seeds() -> Vec<String> {
    let mut seeds = files("examples", "toml");
    seeds.extend(files("tests/fixtures", "toml"));
    seeds
}

fn json_seeds() -> Vec<String> {
    files("tests/fixtures", "json")
}

const KUBECONFIG: &str = "apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev
  cluster:
    server: https://127.0.0.1:6443
    insecure-skip-tls-verify: true
contexts:
- name: dev
  context: {cluster: dev, user: dev, namespace: shop}
users:
- name: dev
  user:
    token: t0k3n
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: /bin/false
";

/// Runs `work` on a thread of its own and fails the case if it panics or takes longer than
/// five seconds (a debug build on a busy machine): a parser that loops forever is a bug as
/// much as one that panics.
fn ends(input: &str, work: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        work();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("panicked on {input:?}"),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("hangs on {input:?}"),
    }
}

/// A seed with lines swapped for others (from any seed), characters replaced, cut at some
/// point, and random text appended: mostly still TOML or JSON, so the checks behind the
/// parser are reached too.
fn mutated(seeds: Vec<String>) -> impl Strategy<Value = String> {
    let pool: Vec<String> = seeds
        .iter()
        .flat_map(|s| s.lines().map(str::to_owned))
        .collect();
    (
        0..seeds.len(),
        prop::collection::vec(
            (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
            0..4,
        ),
        prop::collection::vec((any::<prop::sample::Index>(), any::<char>()), 0..4),
        any::<prop::sample::Index>(),
        "\\PC{0,12}",
    )
        .prop_map(move |(which, lines, chars, cut, tail)| {
            let mut text: Vec<String> = seeds[which].lines().map(str::to_owned).collect();
            for (at, from) in lines {
                if !text.is_empty() {
                    let i = at.index(text.len());
                    text[i] = pool[from.index(pool.len())].clone();
                }
            }
            let mut chars_of: Vec<char> = text.join("\n").chars().collect();
            for (at, c) in chars {
                if !chars_of.is_empty() {
                    let i = at.index(chars_of.len());
                    chars_of[i] = c;
                }
            }
            chars_of.truncate(cut.index(chars_of.len() + 1));
            let mut out: String = chars_of.into_iter().collect();
            out.push_str(&tail);
            out
        })
}

fn input(seeds: Vec<String>) -> impl Strategy<Value = String> {
    prop_oneof![4 => mutated(seeds), 1 => "\\PC{0,300}"]
}

fn load_team_and_local(team: String, local: String) {
    let _ = config::load_layers(vec![
        Layer::remote(
            "git:https://git.example/team.git@1a2b3c4:kftray.toml",
            team,
            "/project".into(),
        ),
        Layer::local("/project/kftray.local.toml", local),
    ]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn kftray_toml_never_panics_or_hangs(text in input(toml_seeds())) {
        let t = text.clone();
        ends(&text, move || {
            if let Err(d) = config::load_str("kftray.toml", &t) {
                // The report is what the user sees: rendering it must not fail either.
                let _ = d.render(false, 80);
            }
        });
    }

    #[test]
    fn a_team_file_under_a_local_overlay_never_panics_or_hangs(
        team in input(toml_seeds()),
        local in input(toml_seeds()),
    ) {
        let label = format!("{team}\n--- local ---\n{local}");
        ends(&label, move || load_team_and_local(team, local));
    }

    #[test]
    fn kftray_json_never_panics_or_hangs(text in input(json_seeds())) {
        let t = text.clone();
        ends(&text, move || {
            let _ = kftray_json::parse(Path::new("configs.json"), &t);
        });
    }

    #[test]
    fn kubeconfigs_never_panic_or_hang(text in input(vec![KUBECONFIG.to_owned()])) {
        let t = text.clone();
        ends(&text, move || {
            if let Ok(kubeconfig) = kube::config::Kubeconfig::from_yaml(&t) {
                let options = kube::config::KubeConfigOptions::default();
                let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
                let _ = runtime.block_on(kube::Config::from_custom_kubeconfig(kubeconfig, &options));
            }
        });
    }
}

#[test]
fn the_seeds_load() {
    // Mutations start from files that reach deep into validation, not from noise.
    let examples = files("examples", "toml");
    // All but the overlay, which is only a layer.
    let loaded = examples
        .iter()
        .filter(|seed| config::load_str("kftray.toml", seed).is_ok())
        .count();
    assert_eq!(loaded, examples.len() - 1);
    assert!(kftray_json::parse(Path::new("x.json"), &json_seeds()[0]).is_ok());
    kube::config::Kubeconfig::from_yaml(KUBECONFIG).unwrap();
}

/// Memory this process holds now (VmRSS), for the sizes below.
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024
}

#[test]
fn deeply_nested_toml_is_an_error_not_a_crash() {
    for depth in [100, 10_000, 1_000_000] {
        let arrays = format!("x = {}{}\n", "[".repeat(depth), "]".repeat(depth));
        let tables = format!("x = {}{}\n", "{ a = ".repeat(depth), "}".repeat(depth));
        for text in [arrays, tables] {
            let label = format!("{depth} levels");
            ends(&label, move || {
                let d = config::load_str("kftray.toml", &text).expect_err("nesting accepted");
                assert!(!d.is_empty());
            });
        }
    }
}

#[test]
fn ten_thousand_forwards_load_and_a_hundred_megabytes_is_refused_by_size() {
    let mut text = String::from("version = 1\n[defaults]\nnamespace = \"shop\"\n");
    for i in 0..10_000 {
        text.push_str(&format!(
            "[forwards.svc-{i}]\nservice = \"svc-{i}\"\nremote_port = 80\nlocal_port = \"any\"\n"
        ));
    }
    let before = rss_mib();
    let started = Instant::now();
    let effective = config::load_str("kftray.toml", &text).unwrap();
    assert_eq!(effective.forwards.len(), 10_000);
    eprintln!(
        "RELIABILITY\t10,000 forwards ({} KiB of TOML)\tloaded in {} ms\tRSS +{} MiB",
        text.len() / 1024,
        started.elapsed().as_millis(),
        rss_mib().saturating_sub(before)
    );

    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("kftray.toml");
    let file = std::fs::File::create(&huge).unwrap();
    file.set_len(100 << 20).unwrap();
    let before = rss_mib();
    let d = config::read_local(&huge).expect_err("a 100 MB file was read");
    let text = d.render(false, 100);
    assert!(text.contains("too large"), "{text}");
    assert!(rss_mib().saturating_sub(before) < 50, "read it into memory");
}
