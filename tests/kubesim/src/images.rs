//! `--image PREFIX=PROGRAM` and `--image-env PREFIX=NAME=VALUE`, as kubesim and the real
//! control plane's kubelet take them.

use std::path::PathBuf;

pub fn parse_image(arg: &str) -> anyhow::Result<(String, PathBuf)> {
    let (prefix, program) = arg
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("--image wants PREFIX=PROGRAM, got {arg:?}"))?;
    Ok((prefix.to_string(), PathBuf::from(program)))
}

pub fn parse_image_env(arg: &str) -> anyhow::Result<(String, String, String)> {
    let mut parts = arg.splitn(3, '=');
    let (Some(prefix), Some(name), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        anyhow::bail!("--image-env wants PREFIX=NAME=VALUE, got {arg:?}");
    };
    Ok((prefix.to_string(), name.to_string(), value.to_string()))
}
