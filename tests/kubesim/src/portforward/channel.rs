//! Port-forward over `v4.channel.k8s.io`: ports fixed by the query, one WebSocket carrying
//! one connection per port. Message = `[channel] ++ payload`; port i has data channel 2i and
//! error channel 2i+1, each opened by `[channel, port_lo, port_hi]`.

use super::Target;
use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// `ports` from the query, as kube-rs (`?&ports=8080%2C9090`) and others send it.
pub(super) fn ports(query: &str) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key != "ports" {
            continue;
        }
        for part in value.split(',').filter(|p| !p.is_empty()) {
            match part.trim().parse::<u16>() {
                Ok(port) if port > 0 => ports.push(port),
                _ => {
                    return Err(format!(
                        "unable to parse \"{part}\" as a port: invalid port"
                    ));
                }
            }
        }
    }
    if ports.is_empty() {
        return Err("query parameter \"port\" is required".into());
    }
    Ok(ports)
}

pub(super) async fn serve<S>(ws: WebSocketStream<S>, ports: Vec<u16>, target: Target)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut source) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(64);
    let mut to_pods = Vec::new();
    let mut open = 0usize;
    for (index, port) in ports.iter().enumerate() {
        let data = (2 * index) as u8;
        let error = data + 1;
        for channel in [data, error] {
            let mut init = BytesMut::with_capacity(3);
            init.put_u8(channel);
            init.put_u16_le(*port);
            if sink.send(Message::binary(init.freeze())).await.is_err() {
                return;
            }
        }
        match target.dial(*port).await {
            Ok(backend) => {
                let (mut from_pod, to_pod) = backend.into_split();
                to_pods.push(Some(to_pod));
                open += 1;
                let out = out_tx.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        match from_pod.read(&mut buf[1..]).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                buf[0] = data;
                                if out
                                    .send(Message::binary(Bytes::copy_from_slice(&buf[..=n])))
                                    .await
                                    .is_err()
                                {
                                    break;
                                }
                            }
                        }
                    }
                    // An empty message marks this port's end for the writer below.
                    let _ = out.send(Message::binary(Bytes::from(vec![data]))).await;
                });
            }
            Err(message) => {
                to_pods.push(None);
                let mut frame = vec![error];
                frame.extend_from_slice(message.as_bytes());
                if sink.send(Message::binary(frame)).await.is_err() {
                    return;
                }
            }
        }
    }
    drop(out_tx);
    if open == 0 {
        let _ = sink.close().await;
        return;
    }
    loop {
        tokio::select! {
            message = source.next() => match message {
                Some(Ok(Message::Binary(frame))) => {
                    let Some((&channel, payload)) = frame.split_first() else { continue };
                    let index = usize::from(channel / 2);
                    if channel % 2 == 0
                        && let Some(Some(to_pod)) = to_pods.get_mut(index)
                        && to_pod.write_all(payload).await.is_err()
                    {
                        to_pods[index] = None;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            out = out_rx.recv() => match out {
                Some(message) if message.len() == 1 => {
                    open -= 1;
                    if open == 0 {
                        break;
                    }
                }
                Some(message) => {
                    if sink.send(message).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            () = target.kill.cancelled() => break,
        }
    }
    for to_pod in to_pods.iter_mut().flatten() {
        let _ = to_pod.shutdown().await;
    }
    let _ = sink.close().await;
}
