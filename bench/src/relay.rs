//! A plain TCP relay: accept, connect onwards, copy both ways. Two of them in series have the
//! hops of client -> API server -> backend with no protocol at all: the honest ceiling of a
//! port-forward.

use std::net::SocketAddr;
use tokio::net::TcpStream;

pub async fn run(listen: SocketAddr, to: SocketAddr) -> anyhow::Result<()> {
    let listener = crate::backend::listen(listen)?;
    // The parent reads where it listens from the first line.
    println!("{}", listener.local_addr()?);
    loop {
        let (mut inbound, _) = listener.accept().await?;
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(to).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional_with_sizes(
                &mut inbound,
                &mut outbound,
                crate::backend::BUF,
                crate::backend::BUF,
            )
            .await;
        });
    }
}
