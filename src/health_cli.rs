//! `mist-otel health`: asks the admin listener of a running server whether it is alive (or
//! ready), for container HEALTHCHECKs and exec probes in images that have no curl.

use anyhow::{Context, Result, bail};
use mist_otel::app::Config;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// The URL to probe: `--url` if given, else the configured admin listener (an unspecified
/// address such as `0.0.0.0` is reached through loopback).
pub fn probe_url(cfg: &Config, ready: bool) -> String {
    let mut addr: SocketAddr = cfg.admin.listen;
    if addr.ip().is_unspecified() {
        let lo = match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        };
        addr.set_ip(lo);
    }
    format!("http://{addr}{}", if ready { "/readyz" } else { "/healthz" })
}

/// Probes `url`; `Ok` on a 2xx answer within `timeout`.
pub async fn run(url: &str, timeout: Duration) -> Result<()> {
    let client =
        reqwest::Client::builder().timeout(timeout).build().context("cannot build the HTTP client")?;
    let resp = client.get(url).send().await.with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("GET {url} → {}: {}", status.as_u16(), body.trim());
    }
    println!("{}", body.trim());
    Ok(())
}
