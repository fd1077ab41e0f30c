//! The `[relay]` section.

use super::inherited::{expand_path, namespace_name};
use crate::config::diagnostic::Issue;
use crate::config::effective::Relay;
use crate::config::model::RelaySpec;
use crate::config::relay_manifest::RelayManifest;
use crate::config::source::SourceMap;
use std::path::Path;

/// The `[relay]` table: an image reference, a manifest kftray can read and parse, a namespace.
pub(super) fn section(spec: &RelaySpec, map: &SourceMap, issues: &mut Vec<Issue>) -> Relay {
    crate::config::trust::relay_pod(spec, map, issues);
    let image = spec.image.as_ref().and_then(|image| {
        let value = image.value.trim();
        if value.is_empty() || value.contains(char::is_whitespace) {
            issues.push(
                Issue::new(
                    "kftray::relay",
                    format!("`{}` is not an image reference", image.value),
                )
                .label(image.span.clone(), "not an image")
                .help("write a reference such as \"registry.example.com/kftray-relay:0.1.0\""),
            );
            return None;
        }
        Some(value.to_owned())
    });
    let manifest = spec.manifest.as_ref().and_then(|manifest| {
        let declared_in = map
            .file(map.file_of(manifest.span.start))
            .and_then(|f| f.path.parent().map(Path::to_path_buf))
            .unwrap_or_default();
        let path = expand_path(manifest.value.trim(), &declared_in);
        let problem = if manifest.value.trim().is_empty() {
            Some("the relay manifest path is empty".to_owned())
        } else {
            RelayManifest::read(&path).err().map(|e| e.to_string())
        };
        match problem {
            Some(problem) => {
                issues.push(
                    Issue::new("kftray::relay-manifest", problem)
                        .label(manifest.span.clone(), "this manifest")
                        .help(
                            "a Pod manifest in YAML with at least one container; remove the key \
                             to use the built-in one",
                        ),
                );
                None
            }
            None => Some(path),
        }
    });
    let namespace = spec
        .namespace
        .as_ref()
        .and_then(|ns| namespace_name(ns, issues));
    Relay {
        image,
        manifest,
        namespace,
    }
}
