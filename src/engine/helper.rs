//! The run's connection to kftray-helper, made when something first needs it (a host name, a
//! low port, a loopback alias) and held until the run stops: the helper keeps the run's hosts
//! entries exactly as long as this connection is open, so even a crashed run leaves none.

use crate::hosts::{Entry, HelperClient, HelperError};
use std::net::SocketAddr;
use std::path::PathBuf;

pub(super) struct Helper {
    socket: PathBuf,
    client: Option<HelperClient>,
    /// What the helper was last told, so that an unchanged set is not sent again.
    entries: Vec<Entry>,
}

impl Helper {
    pub(super) fn new(socket: PathBuf) -> Helper {
        Helper {
            socket,
            client: None,
            entries: Vec::new(),
        }
    }

    async fn client(&mut self) -> Result<&mut HelperClient, HelperError> {
        if self.client.is_none() {
            self.client = Some(HelperClient::connect(&self.socket).await?);
        }
        // Set just above.
        self.client.as_mut().ok_or(HelperError::NotRunning {
            socket: self.socket.clone(),
        })
    }

    /// Runs `call` on the connection; a connection that broke (the helper restarted) is made
    /// again once, and the run's entries sent again first, since a new helper starts empty.
    async fn with_client<T>(
        &mut self,
        call: impl AsyncFn(&mut HelperClient) -> Result<T, HelperError>,
    ) -> Result<T, HelperError> {
        let first = call(self.client().await?).await;
        match first {
            Err(HelperError::Io { .. }) => {
                self.client = None;
                let entries = self.entries.clone();
                let client = self.client().await?;
                if !entries.is_empty() {
                    client.set_entries(entries).await?;
                }
                call(client).await
            }
            other => other,
        }
    }

    /// Makes the run's hosts entries exactly `entries`.
    pub(super) async fn set_entries(&mut self, mut entries: Vec<Entry>) -> Result<(), HelperError> {
        entries.sort();
        if entries == self.entries && (self.client.is_some() || entries.is_empty()) {
            return Ok(());
        }
        let sent = entries.clone();
        self.with_client(async |c| c.set_entries(sent.clone()).await)
            .await?;
        self.entries = entries;
        Ok(())
    }

    pub(super) async fn bind_tcp(
        &mut self,
        address: SocketAddr,
    ) -> Result<std::net::TcpListener, HelperError> {
        self.with_client(async |c| c.bind_tcp(address).await).await
    }

    pub(super) async fn bind_udp(
        &mut self,
        address: SocketAddr,
    ) -> Result<std::net::UdpSocket, HelperError> {
        self.with_client(async |c| c.bind_udp(address).await).await
    }

    pub(super) async fn add_alias(&mut self, address: std::net::IpAddr) -> Result<(), HelperError> {
        self.with_client(async |c| c.add_alias(address).await).await
    }

    /// Takes the run's entries out now rather than when the connection closes.
    pub(super) async fn close(&mut self) {
        if let Some(mut client) = self.client.take()
            && !self.entries.is_empty()
            && let Err(e) = client.set_entries(Vec::new()).await
        {
            tracing::warn!("kftray-helper: {e}");
        }
        self.entries.clear();
    }
}
